"""The customers service: customers and employees."""

from __future__ import annotations

from bff.context import Context
from bff.loaders import Record
from resolvers.pages import Page, fetch_page


async def customer(ctx: Context, customer_id: str | None) -> Record | None:
    """One customer by id, batched with every other customer load of the operation."""
    if customer_id is None:
        return None
    return await ctx.loaders.by_id(ctx.services.customers, "customers").load(customer_id)


async def customers_page(ctx: Context, *, offset: int, limit: int, country: str | None) -> Page:
    """A page of customers, optionally only those of one ``country`` (exact match)."""
    filters = [("country", country)] if country is not None else []
    return await fetch_page(
        ctx, ctx.services.customers, "customers", offset=offset, limit=limit, filters=filters
    )


async def employee(ctx: Context, employee_id: str | None) -> Record | None:
    """One employee by id."""
    if employee_id is None:
        return None
    return await ctx.loaders.by_id(ctx.services.customers, "employees").load(employee_id)


async def customers_of_employee(ctx: Context, employee_id: str) -> list[Record]:
    """The customers whose support representative is the employee."""
    return await ctx.loaders.by_field(ctx.services.customers, "customers", "supportRepId").load(employee_id)
