"""A minimal graphql-transport-ws subscriber for load generation: an ``asyncio.Protocol``, no framework.

A thousand aiohttp WebSocket clients in one Python process spend about 50 us of CPU per message
(reader task, frame parser, JSON), so on a small machine the load generator, not the server, sets
the latency a benchmark reports. This client parses frames straight from the socket's bytes, looks
for the one number it records, and stamps every message of a read with the time the read returned.
It speaks just enough of RFC 6455 for a local benchmark: no extensions, no fragmented frames.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any, Final

__all__ = ["RawSubscriber", "open_subscriber"]

_HANDSHAKE_END: Final = b"\r\n\r\n"
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA


class RawSubscriber(asyncio.Protocol):
    """One WebSocket: records when each result carrying ``marker`` followed by ``"id":"<n>"`` arrived.

    ``arrivals`` maps ``n`` to the monotonic time of the read that brought it; ``changed`` is set on
    every arrival; other text messages (``connection_ack``...) go to ``control``.
    """

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.arrivals: dict[int, float] = {}
        self.changed = asyncio.Event()
        self.control: asyncio.Queue[bytes] = asyncio.Queue()
        self.upgraded: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buffer = self._buffer
        buffer += data
        if not self.upgraded.done():
            end = buffer.find(_HANDSHAKE_END)
            if end < 0:
                return
            self.upgraded.set_result(bytes(buffer[:end]))
            del buffer[: end + len(_HANDSHAKE_END)]
        position = 0
        while len(buffer) - position >= 2:
            opcode, length, start = buffer[position] & 0x0F, buffer[position + 1] & 0x7F, position + 2
            if length == 126:
                if len(buffer) - position < 4:
                    break
                length, start = int.from_bytes(buffer[position + 2 : position + 4], "big"), position + 4
            elif length == 127:
                if len(buffer) - position < 10:
                    break
                length, start = int.from_bytes(buffer[position + 2 : position + 10], "big"), position + 10
            if len(buffer) < start + length:
                break
            self._frame(opcode, bytes(buffer[start : start + length]), now)
            position = start + length
        del buffer[:position]

    def _frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == _TEXT:
            at = payload.find(self.marker)
            if at < 0:
                self.control.put_nowait(payload)
                return
            start = payload.index(b'"id":"', at) + 6
            self.arrivals.setdefault(int(payload[start : payload.index(b'"', start)]), now)
            self.changed.set()
        elif opcode == _PING:
            self._send(_PONG, payload)
        elif opcode == _CLOSE and self._transport is not None:
            self._transport.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        """One masked frame (clients must mask, RFC 6455 section 5.3)."""
        assert self._transport is not None
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = bytes([0x80 | opcode, 0x80 | length])
        elif length < 1 << 16:
            header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
        else:
            header = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self._transport.write(header + mask + masked)

    def upgrade(self, request: bytes) -> None:
        """Send the HTTP upgrade request (its answer resolves :attr:`upgraded`)."""
        assert self._transport is not None
        self._transport.write(request)

    def send_json(self, message: dict[str, Any]) -> None:
        """Send ``message`` as a text frame."""
        self._send(_TEXT, json.dumps(message).encode())

    async def receive_json(self) -> Any:
        """The next text message that is not a result."""
        return json.loads(await self.control.get())

    def close(self) -> None:
        """Close the TCP connection (a benchmark has no use for the closing handshake)."""
        if self._transport is not None:
            self._transport.close()


async def open_subscriber(host: str, port: int, path: str, protocol: str, marker: bytes) -> RawSubscriber:
    """Open a WebSocket to ``host:port`` ``path`` speaking ``protocol``; raises ``RuntimeError`` when
    the server does not switch protocols."""
    loop = asyncio.get_running_loop()
    _transport, subscriber = await loop.create_connection(lambda: RawSubscriber(marker), host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
    )
    subscriber.upgrade(request.encode())
    head = await subscriber.upgraded
    if not head.startswith(b"HTTP/1.1 101"):
        subscriber.close()
        raise RuntimeError(f"no WebSocket: {head.splitlines()[0].decode(errors='replace')}")
    return subscriber
