"""The customers service: customers and employees."""

from __future__ import annotations

from asyncio import Future

from bff.context import Context
from bff.loaders import Record, load_one
from resolvers.pages import Page, fetch_page


def customer(ctx: Context, customer_id: str | None) -> Future[Record | None]:
    """One customer by id, batched with every other customer load of the operation.

    The operation's loader future: done once its batch is.
    """
    return load_one(ctx.loaders.by_id(ctx.services.customers, "customers"), customer_id)


async def customers_page(ctx: Context, *, offset: int, limit: int, country: str | None) -> Page:
    """A page of customers, optionally only those of one ``country`` (exact match)."""
    filters = [("country", country)] if country is not None else []
    return await fetch_page(
        ctx, ctx.services.customers, "customers", offset=offset, limit=limit, filters=filters
    )


def employee(ctx: Context, employee_id: str | None) -> Future[Record | None]:
    """One employee by id."""
    return load_one(ctx.loaders.by_id(ctx.services.customers, "employees"), employee_id)


def customers_of_employee(ctx: Context, employee_id: str) -> Future[list[Record]]:
    """The customers whose support representative is the employee."""
    return ctx.loaders.by_field(ctx.services.customers, "customers", "supportRepId").load(employee_id)
