"""Offset pages of a downstream list, the basis of the schema's Relay connections.

A page is fetched with json-server's slice parameters, ``_start`` (offset, 0-based) and ``_limit``,
which make the service send the total number of matches in ``X-Total-Count``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bff.context import Context
from bff.downstream import ServiceClient
from bff.errors import DownstreamError
from bff.loaders import Record


@dataclass(frozen=True, slots=True)
class Page:
    """``records`` starting at ``offset`` of ``total`` matches."""

    records: list[Record]
    offset: int
    total: int


async def fetch_page(
    ctx: Context,
    client: ServiceClient,
    resource: str,
    *,
    offset: int,
    limit: int,
    filters: Sequence[tuple[str, str]] = (),
) -> Page:
    """Fetch up to ``limit`` records of ``resource`` from ``offset`` on, matching ``filters``.

    The records also prime the operation's by-id loader. Raises ``DOWNSTREAM_ERROR`` when the
    service does not send ``X-Total-Count`` (it does not follow the json-server contract).
    """
    params = [*filters, ("_start", str(offset)), ("_limit", str(max(limit, 1)))]
    response = await client.get(f"/{resource}", call=ctx.call, params=params)
    records: list[Record] = response.body if isinstance(response.body, list) else []
    total_header = response.headers.get("X-Total-Count")
    if total_header is None or not total_header.isdigit():
        raise DownstreamError(
            f"{client.name} service sent no X-Total-Count for /{resource}", service=client.name
        )
    ctx.loaders.prime(client, resource, records)
    return Page(records=records[:limit], offset=offset, total=int(total_header))
