"""The sales service: invoices and their lines."""

from __future__ import annotations

from bff.context import Context
from bff.loaders import Record


async def invoice(ctx: Context, invoice_id: str | None) -> Record | None:
    """One invoice by id."""
    if invoice_id is None:
        return None
    return await ctx.loaders.by_id(ctx.services.sales, "invoices").load(invoice_id)


async def invoices_of_customer(ctx: Context, customer_id: str) -> list[Record]:
    """The invoices of one customer."""
    return await ctx.loaders.by_field(ctx.services.sales, "invoices", "customerId").load(customer_id)


async def lines_of_invoice(ctx: Context, invoice_id: str) -> list[Record]:
    """The lines of one invoice."""
    return await ctx.loaders.by_field(ctx.services.sales, "invoiceLines", "invoiceId").load(invoice_id)
