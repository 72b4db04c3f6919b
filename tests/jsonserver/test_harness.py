"""json-server 0.17.4 as our harness runs it: the REST conventions the BFF relies on, and clean stops."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bff_chinook.demo.chinook import SERVICES, load_chinook
from bff_chinook.demo.jsonserver import (
    JSON_SERVER_BIN_ENV,
    JsonServerError,
    find_json_server,
    json_server_version,
    run_json_servers,
    write_db_files,
    write_dbs,
)
from tests.support.jsonserver import JSON_SERVER_VERSION, require_json_server
from tests.support.tools import missing

TRACKS = load_chinook()["tracks"]


def ids(response: httpx.Response) -> list[int]:
    """Return the ids of a list response, in order."""
    assert response.status_code == 200, response.text
    return [record["id"] for record in response.json()]


def processes_mentioning(directory: Path) -> list[int]:
    """Return the pids of live processes whose command line mentions ``directory`` (Linux /proc)."""
    marker = f"{directory}/".encode()  # the slash: /tmp/x0 must not match /tmp/x01
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            if marker in cmdline:
                pids.append(int(entry.name))
    return pids


def port_open(url: str) -> bool:
    """Return whether something accepts TCP connections at ``url``'s host and port."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    assert port is not None
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture
async def catalog(json_servers: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the catalog service's json-server."""
    async with httpx.AsyncClient(base_url=json_servers["catalog"], trust_env=False) as client:
        yield client


def test_find_json_server_prefers_the_environment(tmp_path: Path) -> None:
    """``$BFFTEST_JSON_SERVER_BIN`` wins when it names a file, and is ignored when it does not."""
    bin_path = tmp_path / "json-server"
    bin_path.write_text("#!/usr/bin/env node\n")
    assert find_json_server({JSON_SERVER_BIN_ENV: str(bin_path)}) == bin_path
    assert find_json_server({JSON_SERVER_BIN_ENV: str(tmp_path / "missing")}) != tmp_path / "missing"


def test_write_db_files_writes_one_db_per_service(tmp_path: Path) -> None:
    """Each service gets its own ``db.json`` holding exactly the resources it owns."""
    data = load_chinook()
    files = write_db_files(tmp_path, data)
    assert set(files) == set(SERVICES)
    for service, path in files.items():
        assert path == tmp_path / service / "db.json"
        db = json.loads(path.read_text(encoding="utf-8"))
        assert list(db) == list(SERVICES[service])
        assert all(db[resource] == data[resource] for resource in SERVICES[service])


def test_write_dbs_writes_any_data_as_given(tmp_path: Path) -> None:
    """``write_dbs`` writes each server's resources to its own ``db.json`` unchanged, in order."""
    dbs = {"one": {"things": [{"id": 2}, {"id": 1}], "others": []}, "two": {"items": [{"id": 1, "x": "é"}]}}
    files = write_dbs(tmp_path, dbs)
    assert files == {name: tmp_path / name / "db.json" for name in dbs}
    for name, path in files.items():
        db = json.loads(path.read_text(encoding="utf-8"))
        assert db == dbs[name]
        assert list(db) == list(dbs[name])


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a/", "/abs"])
def test_write_dbs_refuses_names_that_are_not_one_directory(tmp_path: Path, name: str) -> None:
    """A server name that would not give the server a directory of its own raises ``ValueError``."""
    with pytest.raises(ValueError, match="not a plain directory name"):
        write_dbs(tmp_path / "dbs", {name: {"things": []}})
    assert not (tmp_path / "dbs").exists()


async def test_run_json_servers_refuses_dbs_with_chinook_options(tmp_path: Path) -> None:
    """``dbs`` together with ``services`` or ``data`` raises ``ValueError`` before anything starts."""
    # The bin does not exist: had the call gone on, it would have raised JsonServerError instead.
    with pytest.raises(ValueError, match="not both"):
        async with run_json_servers(tmp_path / "missing", tmp_path, dbs={"x": {}}, services=["catalog"]):
            pytest.fail("the block must not run")


async def test_run_json_servers_serves_any_data_with_the_counter(tmp_path: Path) -> None:
    """With ``dbs``, each named server serves its own resources and counts requests at ``/_stats``."""
    bin_path = require_json_server()
    dbs = {"left": {"things": [{"id": 1}, {"id": 2}]}, "right": {"items": [{"id": 7, "name": "seven"}]}}
    async with (
        run_json_servers(bin_path, tmp_path, dbs=dbs) as urls,
        httpx.AsyncClient(trust_env=False) as client,
    ):
        assert set(urls) == {"left", "right"}
        assert (await client.get(f"{urls['left']}/things")).json() == dbs["left"]["things"]
        assert (await client.get(f"{urls['right']}/items/7")).json() == {"id": 7, "name": "seven"}
        assert (await client.get(f"{urls['left']}/items")).status_code == 404
        assert (await client.get(f"{urls['left']}/_stats")).json() == {
            "total": 2,
            "requests": {"GET /things": 1, "GET /items": 1},
        }
        assert (await client.get(f"{urls['right']}/_stats")).json()["total"] == 1


def test_installed_json_server_is_the_pinned_version() -> None:
    """The json-server found is the exact version the BFF is proven against."""
    assert json_server_version(require_json_server()) == JSON_SERVER_VERSION


async def test_every_service_answers_with_its_resources(json_servers: dict[str, str]) -> None:
    """Each service's server lists the records of every resource that service owns."""
    data = load_chinook()
    async with httpx.AsyncClient(trust_env=False) as client:
        for service, resources in SERVICES.items():
            for resource in resources:
                response = await client.get(f"{json_servers[service]}/{resource}", params={"_limit": 1})
                assert int(response.headers["X-Total-Count"]) == len(data[resource])


async def test_repeated_id_filter_returns_those_records(catalog: httpx.AsyncClient) -> None:
    """``?id=3&id=9`` returns exactly tracks 3 and 9: one request fetches a batch by id."""
    assert ids(await catalog.get("/tracks?id=3&id=9")) == [3, 9]


async def test_repeated_foreign_key_filter_is_an_or(catalog: httpx.AsyncClient) -> None:
    """``?albumId=1&albumId=2`` returns the tracks of both albums, in id order."""
    expected = [track["id"] for track in TRACKS if track["albumId"] in (1, 2)]
    assert ids(await catalog.get("/tracks?albumId=1&albumId=2")) == expected


async def test_start_and_limit_slice_and_count(catalog: httpx.AsyncClient) -> None:
    """``_start=5&_limit=2`` returns the 6th and 7th tracks and ``X-Total-Count`` of all of them."""
    response = await catalog.get("/tracks", params={"_start": 5, "_limit": 2})
    assert ids(response) == [TRACKS[5]["id"], TRACKS[6]["id"]]
    assert response.headers["X-Total-Count"] == str(len(TRACKS))


async def test_page_and_limit_paginate_with_count_and_links(catalog: httpx.AsyncClient) -> None:
    """``_page=2&_limit=3`` returns the second page, ``X-Total-Count`` and first/prev/next/last links."""
    response = await catalog.get("/tracks", params={"_page": 2, "_limit": 3})
    assert ids(response) == [track["id"] for track in TRACKS[3:6]]
    assert response.headers["X-Total-Count"] == str(len(TRACKS))
    assert set(response.links) == {"first", "prev", "next", "last"}
    assert response.links["next"]["url"].endswith("_page=3&_limit=3")


async def test_q_searches_every_field_case_insensitively(catalog: httpx.AsyncClient) -> None:
    """``q`` keeps records with the text, in any case, in any field (numbers included, as text)."""
    expected = [t["id"] for t in TRACKS if any("love" in str(v).lower() for v in t.values() if v is not None)]
    assert ids(await catalog.get("/tracks", params={"q": "LoVe"})) == expected


async def test_get_has_weak_etag_and_if_none_match_gives_304(catalog: httpx.AsyncClient) -> None:
    """A GET carries a weak ``ETag``; sending it back in ``If-None-Match`` gives 304 with no body."""
    first = await catalog.get("/tracks/1")
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    again = await catalog.get("/tracks/1", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag


async def test_stats_count_requests_by_method_and_path_and_reset(json_servers: dict[str, str]) -> None:
    """``/_stats`` counts each request once by method and path, not itself, per service; DELETE resets it."""
    async with httpx.AsyncClient(trust_env=False) as client:
        catalog, sales = json_servers["catalog"], json_servers["sales"]
        for url in (catalog, sales):
            reset = await client.delete(f"{url}/_stats")
            assert reset.status_code == 200
            assert reset.json() == {"total": 0, "requests": {}}
        await client.get(f"{catalog}/tracks?id=1&id=2")
        await client.get(f"{catalog}/tracks", params={"albumId": 3})
        await client.get(f"{catalog}/tracks/1")
        await client.get(f"{catalog}/tracks/999999")  # a 404 is a request too
        await client.get(f"{catalog}/_stats")

        stats = await client.get(f"{catalog}/_stats")
        assert stats.status_code == 200
        assert stats.json() == {
            "total": 4,
            "requests": {"GET /tracks": 2, "GET /tracks/1": 1, "GET /tracks/999999": 1},
        }
        assert (await client.get(f"{sales}/_stats")).json() == {"total": 0, "requests": {}}

        assert (await client.delete(f"{catalog}/_stats")).status_code == 200
        assert (await client.get(f"{catalog}/_stats")).json() == {"total": 0, "requests": {}}


async def test_stats_allows_only_get_and_delete(catalog: httpx.AsyncClient) -> None:
    """Other methods on ``/_stats`` get 405 with an ``Allow`` header, and are not counted."""
    await catalog.delete("/_stats")
    response = await catalog.post("/_stats", json={})
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, DELETE"
    assert (await catalog.get("/_stats")).json()["total"] == 0


async def test_servers_are_gone_after_the_block(tmp_path: Path) -> None:
    """Leaving the block stops every server: no process left, no port listening."""
    bin_path = require_json_server()
    async with run_json_servers(bin_path, tmp_path, services=["playlists", "sales"]) as urls:
        running = processes_mentioning(tmp_path)
        assert len(running) == 2
        assert all(port_open(url) for url in urls.values())
    assert processes_mentioning(tmp_path) == []
    assert not any(port_open(url) for url in urls.values())


async def test_servers_are_gone_after_an_error_in_the_block(tmp_path: Path) -> None:
    """An exception inside the block still stops every server before it propagates."""
    bin_path = require_json_server()

    async def fail_inside() -> None:
        async with run_json_servers(bin_path, tmp_path, services=["customers"]):
            assert len(processes_mentioning(tmp_path)) == 1
            raise RuntimeError("a failing test")

    with pytest.raises(RuntimeError, match="a failing test"):
        await fail_inside()
    assert processes_mentioning(tmp_path) == []


async def test_a_server_that_dies_at_start_raises_and_leaves_nothing(tmp_path: Path) -> None:
    """A bin that exits at once raises ``JsonServerError`` with its log, after stopping the others."""
    if shutil.which("node") is None:
        missing("node")
    broken = tmp_path / "broken.js"
    broken.write_text("console.error('broken on purpose'); process.exit(3)\n")
    with pytest.raises(JsonServerError, match="broken on purpose"):
        async with run_json_servers(broken, tmp_path / "dbs"):
            pytest.fail("the block must not run")
    assert processes_mentioning(tmp_path) == []
