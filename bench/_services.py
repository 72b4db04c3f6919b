"""Child process of the benchmarks: the four demo services on free ports of 127.0.0.1.

Prints the service URLs as one JSON line (``{"customers": "http://127.0.0.1:41234", ...}``) once all
of them accept connections, then serves until SIGTERM or SIGINT and stops them cleanly. It exits by
itself when its standard input closes, so it does not outlive a parent killed without cleanup.

Run by ``bench/queries.py``; by hand: ``python bench/_services.py``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from bff_chinook.demo.server import start_services

SERVICES = ("customers", "catalog", "sales", "playlists")
"""The services the BFF calls (the demo's payments service is not needed here)."""


async def _stdin_closed() -> None:
    """Return once standard input reaches end of file (the parent is gone or closed the pipe)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def serve() -> None:
    """Start every demo service on a free port, print the URLs, serve until told to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with await start_services(host="127.0.0.1", ports=dict.fromkeys(SERVICES, 0)) as services:
        print(json.dumps(services.urls), flush=True)
        orphaned = asyncio.create_task(_stdin_closed())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait((orphaned, stopped), return_when=asyncio.FIRST_COMPLETED)
        for task in (orphaned, stopped):
            task.cancel()


if __name__ == "__main__":
    asyncio.run(serve())
