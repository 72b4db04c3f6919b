"""``bff persisted-queries build``: Apollo's manifest from documents that validate, nothing otherwise."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import pytest

from bff.cli import main
from bff.persisted import MemoryQueryStore, PersistedQueries, load_manifest

TRACK_PAGE = """
query TrackPage($after: String) {
  tracks(first: 10, after: $after) { edges { node { ...TrackFields } } }
}
"""
FRAGMENTS = """
fragment TrackFields on Track { id name album { ...AlbumFields } }
fragment AlbumFields on Album { title }
fragment Unused on Genre { name }
"""
CUSTOMER = """
mutation CreatePlaylist($name: String!) {
  createPlaylist(input: {name: $name}) { playlist { id } userErrors { code } }
}
"""


@pytest.fixture(autouse=True)
def no_bff_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("BFF_")]:
        monkeypatch.delenv(name)


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def test_the_manifest_holds_each_operation_with_the_fragments_it_spreads(tmp_path: Path) -> None:
    """One entry per named operation: its body holds the fragments it spreads (from other files
    too), its id is the body's SHA-256, and the safelist loader reads the file back."""
    documents = write(
        tmp_path / "src", {"tracks.graphql": TRACK_PAGE, "fragments.gql": FRAGMENTS, "p.graphql": CUSTOMER}
    )
    output = tmp_path / "persisted-query-manifest.json"
    assert main(["persisted-queries", "build", "--output", str(output), str(documents)]) == 0
    manifest = json.loads(output.read_text(encoding="utf-8"))
    assert manifest["format"] == "apollo-persisted-query-manifest"
    assert manifest["version"] == 1
    operations = {entry["name"]: entry for entry in manifest["operations"]}
    assert sorted(operations) == ["CreatePlaylist", "TrackPage"]
    page = operations["TrackPage"]
    assert page["type"] == "query"
    assert operations["CreatePlaylist"]["type"] == "mutation"
    assert "fragment TrackFields on Track" in page["body"]
    assert "fragment AlbumFields on Album" in page["body"]
    assert "Unused" not in page["body"]
    assert page["id"] == hashlib.sha256(page["body"].encode()).hexdigest()
    safelist = load_manifest(output)
    persisted = PersistedQueries(apq=False, store=MemoryQueryStore(1), safelist=safelist)
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": page["id"]}}
    assert asyncio.run(persisted.resolve(None, extensions)).query == page["body"]


def test_a_document_that_does_not_validate_is_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown field, an anonymous operation and a syntax error: exit 1, each named, no file."""
    documents = write(
        tmp_path / "src",
        {
            "a.graphql": "query Bad { track(id: 1) { nom } }",
            "b.graphql": "{ genres { name } }",
            "c.graphql": "query Broken {",
        },
    )
    output = tmp_path / "manifest.json"
    assert main(["persisted-queries", "build", "--output", str(output), str(documents)]) == 1
    err = capsys.readouterr().err
    assert "a.graphql:1:" in err
    assert "Cannot query field 'nom' on type 'Track'" in err
    assert "b.graphql:1: an operation without a name cannot be persisted" in err
    assert "c.graphql:1:" in err
    assert not output.exists()


def test_documents_are_held_to_the_limits_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With BFF_MAX_DEPTH=3, a deeper document is refused as the server would refuse it."""
    monkeypatch.setenv("BFF_MAX_DEPTH", "3")
    documents = write(
        tmp_path / "src", {"deep.graphql": 'query Deep { track(id: "1") { album { artist { name } } } }'}
    )
    assert main(["persisted-queries", "build", "--output", "-", str(documents)]) == 1
    assert "Operation 'Deep' has depth 4; the limit is 3." in capsys.readouterr().err
    monkeypatch.setenv("BFF_MAX_DEPTH", "4")
    assert main(["persisted-queries", "build", "--output", "-", str(documents)]) == 0
    assert json.loads(capsys.readouterr().out)["operations"][0]["name"] == "Deep"
