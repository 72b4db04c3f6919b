"""GraphQL over HTTP conformance: every graphql-http server audit passes against the running BFF."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from tests.e2e.stack import run_bff
from tests.support.tools import missing

ROOT = Path(__file__).resolve().parents[2]
AUDIT_SCRIPT = Path(__file__).with_name("audit.mjs")
GRAPHQL_HTTP = ROOT / ".ci" / "node_modules" / "graphql-http"
AUDIT_COUNT = 61
"""Audits in graphql-http 1.23.1 (pinned in ``.ci/package.json``)."""


def require_audit_tools() -> str:
    """The ``node`` binary; skips without node or graphql-http, or fails when ``CI=true``."""
    node = shutil.which("node")
    if node is None or not (GRAPHQL_HTTP / "lib" / "index.mjs").is_file():
        missing("node and graphql-http (`npm ci --prefix .ci`)")
    return node


async def test_graphql_http_audits_all_pass(demo_services: dict[str, str]) -> None:
    """All 61 graphql-http audits (MUST, SHOULD and MAY, warnings included) pass."""
    node = require_audit_tools()
    async with run_bff("audit", demo_services) as stack:
        process = await asyncio.create_subprocess_exec(
            node,
            str(AUDIT_SCRIPT),
            str(GRAPHQL_HTTP),
            stack.graphql_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    results = json.loads(stdout)
    failed = [result for result in results if result["status"] != "ok"]
    assert failed == []
    assert len(results) == AUDIT_COUNT
