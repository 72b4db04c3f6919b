"""Consumer side: the BFF's own client code against Pact's mock server, one pact per service.

Each test replays every interaction with the code the BFF runs in production (the batching
loaders with the resource declarations, ``Resource.page``'s total, the writes' POST and DELETE,
the payments webhook handler) and writes the pact. The pacts checked in under ``contracts/`` must
be the ones these tests write: a changed expectation is a reviewed diff, as the SDL is
(``BFFTEST_UPDATE_CONTRACTS=1 pytest tests/contracts/test_consumer.py`` rewrites them).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pact import Pact

from bff import Resource
from bff.downstream import Call, ServiceClient
from bff.errors import DownstreamError
from bff.loaders import Loaders
from bff.settings import ServiceSettings
from bff_chinook.resolvers import resources
from bff_chinook.resolvers.payments import charge_events
from tests.contracts.pacts import CONSUMER, INTERACTIONS, PROVIDERS, WEBHOOKS

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
UPDATE = os.environ.get("BFFTEST_UPDATE_CONTRACTS") == "1"

Replay = Callable[[ServiceClient], Awaitable[None]]


def resource_at(path: str) -> Resource:
    return next(r for r in vars(resources).values() if isinstance(r, Resource) and r.path == path)


def by_id(path: str, *ids: str) -> Replay:
    async def replay(client: ServiceClient) -> None:
        loader = Loaders(Call("pact")).by_id(client, path, contract=resource_at(path).contract)
        # The mock answers the pact's example records; what counts is that they pass the declaration.
        records = await asyncio.gather(*(loader.load(i) for i in ids))
        assert any(record is not None for record in records)

    return replay


def by_field(path: str, field: str, *values: str) -> Replay:
    async def replay(client: ServiceClient) -> None:
        loader = Loaders(Call("pact")).by_field(client, path, field, contract=resource_at(path).contract)
        groups = await asyncio.gather(*(loader.load(v) for v in values))
        assert all(isinstance(group, list) for group in groups)

    return replay


def page(path: str) -> Replay:
    async def replay(client: ServiceClient) -> None:
        response = await client.get(f"/{path}", call=Call("pact"), params=[("_start", "0"), ("_limit", "2")])
        assert response.headers["X-Total-Count"].isdigit()
        assert resource_at(path).contract.check(response.body, service=client.name, resource=path) is None

    return replay


def post(path: str, body: dict[str, Any], **headers: str) -> Replay:
    async def replay(client: ServiceClient) -> None:
        call = Call("pact", headers=tuple(headers.items()))
        response = await client.request("POST", f"/{path}", call=call, json_body=body)
        assert response.status == 201
        assert resource_at(path).contract.check([response.body], service=client.name, resource=path) is None

    return replay


def delete(path: str) -> Replay:
    async def replay(client: ServiceClient) -> None:
        await client.request("DELETE", path, call=Call("pact"))

    return replay


INVOICE_BODY = {"invoiceDate": "2010-03-11T00:00:00Z", "billingCity": "São José dos Campos",
                "billingCountry": "Brazil", "total": 3.98, "customerId": 1,
                "purchaseKey": "purchaseTracks:anonymous:1:k1"}  # fmt: skip

REPLAYS: dict[str, dict[str, Replay]] = {
    "customers": {
        "read: employees by id, batched": by_id("employees", "2", "3"),
        "read: customers by id, batched": by_id("customers", "1", "10"),
    },
    "catalog": {
        "read: tracks by id, batched": by_id("tracks", "1", "3"),
        "read: tracks of albums, batched": by_field("tracks", "albumId", "1", "4"),
        "read: albums by id, batched": by_id("albums", "1", "2"),
        "read: a page of artists with its total": page("artists"),
    },
    "sales": {
        "read: invoices of customers, batched": by_field("invoices", "customerId", "1", "5"),
        "read: lines of invoices, batched": by_field("invoiceLines", "invoiceId", "1", "2"),
        "write: create an invoice": post("invoices", INVOICE_BODY),
        "write: create an invoice line": post(
            "invoiceLines", {"unitPrice": 0.99, "quantity": 1, "trackId": 2, "invoiceId": 1}
        ),
        "write: delete an invoice line": delete("/invoiceLines/90001"),
    },
    "playlists": {
        "read: entries of playlists, batched": by_field("playlistTracks", "playlistId", "9", "18"),
        "write: create a playlist": post("playlists", {"name": "Road trip"}),
        "write: add a track to a playlist": post("playlistTracks", {"playlistId": 9, "trackId": 1}),
        "write: remove a track from a playlist": delete("/playlistTracks/90001"),
    },
    "payments": {
        "write: charge an invoice": post(
            "charges",
            {"invoiceId": 5, "amount": 3.96, "currency": "USD"},
            **{"Idempotency-Key": "payInvoice:k1"},
        ),
        "read: charges by id": by_id("charges", "1"),
    },
}


def interactions_of(path: Path) -> list[dict[str, Any]]:
    """A pact file's interactions without what varies between runs, by description."""
    interactions = json.loads(path.read_text(encoding="utf-8"))["interactions"]
    for interaction in interactions:
        interaction.pop("key", None)
    return sorted(interactions, key=lambda interaction: interaction["description"])


def settle_pact(pact: Pact, directory: Path, provider: str) -> None:
    """Write the pact, compare it with the checked-in one (or replace it with BFFTEST_UPDATE_CONTRACTS=1)."""
    pact.write_file(directory, overwrite=True)
    written = directory / f"{CONSUMER}-{provider}.json"
    checked_in = CONTRACTS / written.name
    if UPDATE:
        CONTRACTS.mkdir(exist_ok=True)
        checked_in.write_text(written.read_text(encoding="utf-8"), encoding="utf-8")
    assert checked_in.is_file(), f"{checked_in} is missing: run with BFFTEST_UPDATE_CONTRACTS=1"
    assert interactions_of(written) == interactions_of(checked_in), (
        f"contracts/{written.name} is not what the BFF now expects: rerun with BFFTEST_UPDATE_CONTRACTS=1"
        " and review the diff"
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_bff_gets_what_it_needs_from_each_service(provider: str, tmp_path: Path) -> None:
    """Every interaction of the service's pact, replayed by the BFF's own client code, is matched."""
    pact = Pact(CONSUMER, provider).with_specification("V4")
    INTERACTIONS[provider](pact)
    replays = REPLAYS[provider]
    assert sorted(replays) == sorted(_descriptions(pact))
    with pact.serve(addr="127.0.0.1") as server:
        settings = ServiceSettings.model_validate({"url": str(server.url), "retry_attempts": 1})
        client = ServiceClient(provider, settings)
        try:
            for replay in replays.values():
                try:
                    await replay(client)
                except DownstreamError as exc:
                    pytest.fail(f"{provider}: {exc}")
        finally:
            await client.aclose()
    settle_pact(pact, tmp_path, provider)


def _described(pact: Pact) -> list[dict[str, Any]]:
    """The interactions defined so far (read back from a pact written to memory)."""
    return [{"description": d} for d in _descriptions(pact)]


def _descriptions(pact: Pact) -> list[str]:

    with tempfile.TemporaryDirectory() as directory:
        pact.write_file(directory, overwrite=True)
        (written,) = Path(directory).glob("*.json")
        return [i["description"] for i in json.loads(written.read_text(encoding="utf-8"))["interactions"]]


def test_the_payments_webhooks_become_charge_events(tmp_path: Path) -> None:
    """Each webhook of the message pact, fed to the BFF's handler, publishes its charge event."""
    pact = Pact(CONSUMER, WEBHOOKS).with_specification("V4")
    INTERACTIONS[WEBHOOKS](pact)
    seen: list[str] = []

    def handle(body: str | bytes | None, metadata: dict[str, object]) -> None:
        assert body is not None
        (event,) = charge_events(
            str(metadata["webhook-id"]), body if isinstance(body, bytes) else body.encode()
        )
        assert event.topic in ("charge.succeeded", "charge.failed")
        assert event.data["charge"]["status"] in ("SUCCEEDED", "FAILED")
        seen.append(event.topic)

    assert pact.verify(handle, "Async") is None
    assert sorted(seen) == ["charge.failed", "charge.succeeded"]
    settle_pact(pact, tmp_path, WEBHOOKS)
