"""The schema as a reviewed artifact: each app's SDL is checked in, and changes to it are judged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bff.cli import main
from bff.sdl import compare_schemas

ROOT = Path(__file__).resolve().parents[1]

CHECKED_IN = [
    ("bff_chinook.schema:app", ROOT / "schema" / "schema.graphql"),
    ("examples.jsonplaceholder:app", ROOT / "examples" / "jsonplaceholder" / "schema.graphql"),
]


@pytest.mark.parametrize(("app", "path"), CHECKED_IN, ids=[app for app, _ in CHECKED_IN])
def test_the_checked_in_sdl_is_what_bff_schema_prints(
    app: str, path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema change must come with its SDL: regenerate with `bff schema --app APP > PATH`."""
    for name in [n for n in os.environ if n.startswith("BFF_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)
    assert main(["schema", "--app", app]) == 0
    printed = capsys.readouterr().out
    assert printed == path.read_text(encoding="utf-8"), (
        f"{path.relative_to(ROOT)} differs from `bff schema --app {app}`; regenerate it and review the diff"
    )


BASE = """
type Query {
  track(id: ID!): Track
  tracks(genre: String, first: Int = 20): [Track!]!
}

enum Kind { AUDIO VIDEO OLD @deprecated(reason: "gone soon") }

type Track {
  id: ID!
  name: String!
  kind: Kind!
  bytes: Int
  oldName: String @deprecated(reason: "Use name.")
  legacy: Legacy @deprecated(reason: "Unused.")
}

type Legacy { id: ID! }
"""


def test_an_unchanged_schema_has_no_changes() -> None:
    """The same SDL against itself: nothing breaking, nothing dangerous."""
    changes = compare_schemas(BASE, BASE)
    assert changes.lines() == []


def test_removing_a_field_that_was_not_deprecated_breaks() -> None:
    """A field removed without a deprecation first is breaking (graphql-core's FIELD_REMOVED)."""
    changes = compare_schemas(BASE, BASE.replace("  bytes: Int\n", ""))
    assert [(c.type.name, c.description) for c in changes.breaking] == [
        ("FIELD_REMOVED", "Field Track.bytes was removed.")
    ]


def test_making_a_nullable_field_non_null_in_an_argument_and_a_type_change_break() -> None:
    """An argument made required and a field whose type changes are breaking too."""
    new = BASE.replace("tracks(genre: String,", "tracks(genre: String!,").replace(
        "bytes: Int", "bytes: String"
    )
    kinds = sorted(c.type.name for c in compare_schemas(BASE, new).breaking)
    assert kinds == ["ARG_CHANGED_KIND", "FIELD_CHANGED_KIND"]


def test_removing_what_was_deprecated_is_accepted_and_listed() -> None:
    """Deprecated in the base, then removed (a field, an enum value, and a type only it reached): no break."""
    new = (
        BASE.replace('  oldName: String @deprecated(reason: "Use name.")\n', "")
        .replace('  legacy: Legacy @deprecated(reason: "Unused.")\n', "")
        .replace("type Legacy { id: ID! }\n", "")
        .replace(' OLD @deprecated(reason: "gone soon")', "")
    )
    changes = compare_schemas(BASE, new)
    assert changes.breaking == []
    assert sorted(c.description for c in changes.removed_after_deprecation) == [
        "Enum value Kind.OLD was removed.",
        "Field Track.legacy was removed.",
        "Field Track.oldName was removed.",
        "Legacy was removed.",
    ]


def test_deprecating_is_not_breaking_and_dangerous_changes_are_listed() -> None:
    """Adding @deprecated breaks nothing; an enum value added and a default changed are dangerous."""
    new = BASE.replace("  bytes: Int\n", '  bytes: Int @deprecated(reason: "Use size.")\n  size: Int\n')
    new = new.replace("AUDIO VIDEO", "AUDIO VIDEO PODCAST").replace("first: Int = 20", "first: Int = 10")
    changes = compare_schemas(BASE, new)
    assert changes.breaking == []
    assert sorted(c.type.name for c in changes.dangerous) == [
        "ARG_DEFAULT_VALUE_CHANGE",
        "VALUE_ADDED_TO_ENUM",
    ]


def test_bff_schema_check_exits_1_on_a_breaking_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bff schema check BASE` against a base with a field the app no longer has: exit 1, named."""
    monkeypatch.chdir(ROOT)
    sdl = (ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8")
    base = tmp_path / "base.graphql"
    base.write_text(sdl.replace("  bytes: Int!\n", "  bytes: Int!\n  sizeKb: Int!\n", 1), encoding="utf-8")
    assert main(["schema", "check", str(base)]) == 1
    captured = capsys.readouterr()
    assert "breaking: FIELD_REMOVED: Field Track.sizeKb was removed." in captured.out
    assert "@deprecated(reason:" in captured.err
    base.write_text(sdl, encoding="utf-8")
    assert main(["schema", "check", "--app", "bff_chinook.schema:app", str(base)]) == 0
    assert "0 breaking, 0 dangerous" in capsys.readouterr().out


def test_bff_schema_check_refuses_a_base_that_is_not_sdl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base that does not parse, or is missing, exits 2 with one line."""
    base = tmp_path / "base.graphql"
    base.write_text("type {", encoding="utf-8")
    assert main(["schema", "check", str(base)]) == 2
    assert "is not a schema" in capsys.readouterr().err
    assert main(["schema", "check", str(tmp_path / "missing.graphql")]) == 2
