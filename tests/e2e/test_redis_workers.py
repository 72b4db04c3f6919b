"""``bff serve --workers 2``: two processes on one port, sharing their state through Redis."""

from __future__ import annotations

import asyncio
import re
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import aiohttp
import psutil
import pytest

from bff_chinook.demo.server import ALL_PORTS, DemoServices, start_services
from tests.e2e.instances import WAIT_S, Instance, Subscriber, instance_env
from tests.support.processes import BFF, clean_env, start, stop
from tests.support.redis import RedisServer, prefix

PURCHASE = """
mutation ($key: String!) {
  purchaseTracks(input: {customerId: "9", trackIds: ["11"], idempotencyKey: $key}) { invoice { id } }
}
"""


@pytest.fixture(scope="module")
async def services() -> AsyncIterator[DemoServices]:
    async with await start_services(ports=dict.fromkeys(ALL_PORTS, 0)) as running:
        yield running


def listeners(pid: int, port: int) -> bool:
    """Whether process ``pid`` listens on ``port``."""
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr.port == port
        for c in psutil.Process(pid).net_connections("tcp")
    )


def owner(pids: list[int], client_port: int) -> int | None:
    """Which of ``pids`` holds the server end of the connection from local port ``client_port``."""
    for pid in pids:
        for connection in psutil.Process(pid).net_connections("tcp"):
            if connection.raddr and connection.raddr.port == client_port:
                return pid
    return None


async def test_two_workers_serve_one_port_and_share_events(
    redis_server: RedisServer, services: DemoServices
) -> None:
    """Both workers listen on the printed port; subscribers on each worker get a purchase made through
    either, once; a worker SIGKILLed is replaced; SIGTERM stops the parent and every worker."""
    env = instance_env(services.urls, BFF_REDIS_URL=redis_server.url, BFF_REDIS_PREFIX=prefix("workers"))
    printed: list[str] = []
    parent, graphiql = await start(["serve", "--port", "0", "--workers", "2"], env, printed=printed)
    try:
        announced = re.fullmatch(r"workers: 2 processes on port (\d+) \(pids (\d+) (\d+)\)", printed[-1])
        assert announced is not None, printed
        port, pids = int(announced[1]), [int(announced[2]), int(announced[3])]
        assert graphiql == f"http://127.0.0.1:{port}/graphql"
        assert sorted(c.pid for c in psutil.Process(parent.pid).children()) == sorted(pids)
        assert all(listeners(pid, port) for pid in pids)
        instance = Instance("workers", parent, graphiql.removesuffix("/graphql"))

        async with AsyncExitStack() as stack:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            by_worker: dict[int, Subscriber] = {}
            for _ in range(40):  # the kernel hashes connections over the workers: open until both have one
                ws = await stack.enter_async_context(
                    session.ws_connect(instance.ws_url, protocols=["graphql-transport-ws"])
                )
                pid = owner(pids, ws.get_extra_info("sockname")[1])
                if pid is None or pid in by_worker:
                    await ws.close()
                    continue
                await ws.send_json({"type": "connection_init"})
                assert (await ws.receive_json(timeout=WAIT_S))["type"] == "connection_ack"
                query = {"query": "subscription { invoiceCreated { id } }"}
                await ws.send_json({"id": "1", "type": "subscribe", "payload": query})
                by_worker[pid] = Subscriber(ws)
                stack.callback(asyncio.ensure_future(by_worker[pid].listen()).cancel)
                if len(by_worker) == 2:
                    break
            assert sorted(by_worker) == sorted(pids), "a subscriber on each worker"
            subscribers = list(by_worker.values())
            while not all(s.results for s in subscribers):  # warm up until both are live
                await instance.data(PURCHASE, {"key": uuid.uuid4().hex})
                await asyncio.sleep(0.2)
            invoice_ids = [
                (await instance.data(PURCHASE, {"key": uuid.uuid4().hex}))["purchaseTracks"]["invoice"]["id"]
                for _ in range(4)
            ]
            for subscriber in subscribers:
                await subscriber.wait_for(lambda results: set(invoice_ids) <= set(_ids(results)))
            await asyncio.sleep(0.5)
            for subscriber in subscribers:
                seen = _ids(subscriber.results)
                assert [seen.count(i) for i in invoice_ids] == [1, 1, 1, 1]

        psutil.Process(pids[0]).send_signal(signal.SIGKILL)
        await _poll(lambda: pids[0] not in _children(parent.pid) and len(_children(parent.pid)) == 2)
        (replacement,) = set(_children(parent.pid)) - {pids[1]}
        await _poll(lambda: listeners(replacement, port))
        assert (await instance.readyz())["redis"]["status"] == "up"
    finally:
        children = psutil.Process(parent.pid).children() if parent.returncode is None else []
        assert await stop(parent) == 0
    await asyncio.sleep(0.2)
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)


async def test_workers_need_redis() -> None:
    """--workers above 1 without BFF_REDIS_URL stops at once with exit code 2 and says why."""
    process = await asyncio.create_subprocess_exec(
        *BFF, "serve", "--port", "0", "--workers", "2", env=clean_env(), stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "BFF_REDIS_URL" in stderr.decode()


def _children(pid: int) -> list[int]:
    return [child.pid for child in psutil.Process(pid).children()]


async def _poll(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S * 2):
        while not condition():  # noqa: ASYNC110 - the state is the process table's
            await asyncio.sleep(0.1)


def _ids(results: list[dict]) -> list[str]:
    return [r["data"]["invoiceCreated"]["id"] for r in results if r.get("data")]
