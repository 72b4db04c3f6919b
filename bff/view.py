"""The GraphQL view: Strawberry's aiohttp view with our typed context and our GraphiQL page."""

from __future__ import annotations

from aiohttp import web
from strawberry.aiohttp.views import GraphQLView as StrawberryView
from strawberry.schema.base import BaseSchema

from bff.context import SERVICES, Context
from bff.downstream import Call
from bff.loaders import Loaders
from bff.request_id import request_id_of
from bff.settings import Settings


class GraphQLView(StrawberryView[Context, None]):
    """Serves ``/graphql``: POST and GET (queries only), WebSockets, and GraphiQL on ``text/html``.

    ``graphiql_html`` is the playground page (``None`` disables it).
    """

    def __init__(
        self,
        *,
        schema: BaseSchema,
        settings: Settings,
        graphiql_html: str | None,
    ) -> None:
        super().__init__(schema=schema, graphql_ide="graphiql" if graphiql_html else None)
        self.settings = settings
        self._graphiql_html = graphiql_html or ""

    async def get_context(self, request: web.Request, response: web.StreamResponse) -> Context:
        """Build the context of one operation, with fresh DataLoaders."""
        call = Call(request_id=request_id_of(request))
        return Context(
            request=request,
            call=call,
            settings=self.settings,
            services=request.app[SERVICES],
            loaders=Loaders(call),
        )

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        """The GraphiQL page, with assets served by the BFF itself when installed."""
        return web.Response(text=self._graphiql_html, content_type="text/html")
