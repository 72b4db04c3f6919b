"""deploy/check_image.py reads the Debian mirror apt uses, never one named in a comment."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

CHECK_IMAGE = Path(__file__).resolve().parents[2] / "deploy" / "check_image.py"


def check_image() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_image", CHECK_IMAGE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
"""


def test_the_mirror_is_the_uris_field_not_a_comment() -> None:
    """This machine's debian.sources names snapshot.debian.org in a comment above its URIs (not
    resolvable here): the mirror is the field's."""
    assert check_image().mirror_in(DEB822) == "http://deb.debian.org/debian"


def test_one_line_style_sources_and_security_only_files() -> None:
    module = check_image()
    assert module.mirror_in("deb [arch=amd64] http://ftp.de.debian.org/debian/ bookworm main\n") == (
        "http://ftp.de.debian.org/debian"
    )
    assert module.mirror_in("URIs: http://deb.debian.org/debian-security\n") is None
