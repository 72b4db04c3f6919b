"""Calling downstream REST services: the client and the mapping of failures to GraphQL errors."""

from bff.downstream.call import Call
from bff.downstream.client import REQUEST_ID_HEADER, ServiceClient
from bff.downstream.errors import map_status, map_transport_error, parse_retry_after
from bff.downstream.response import JSONResponse, Params, StaleMark

__all__ = [
    "REQUEST_ID_HEADER",
    "Call",
    "JSONResponse",
    "Params",
    "ServiceClient",
    "StaleMark",
    "map_status",
    "map_transport_error",
    "parse_retry_after",
]
