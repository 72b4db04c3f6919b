"""The sales service: invoices and their lines."""

from __future__ import annotations

from asyncio import Future

from bff.context import Context
from bff.loaders import Record, load_one


def invoice(ctx: Context, invoice_id: str | None) -> Future[Record | None]:
    """One invoice by id (the operation's loader future: done once its batch is)."""
    return load_one(ctx.loaders.by_id(ctx.services.sales, "invoices"), invoice_id)


def invoices_of_customer(ctx: Context, customer_id: str) -> Future[list[Record]]:
    """The invoices of one customer."""
    return ctx.loaders.by_field(ctx.services.sales, "invoices", "customerId").load(customer_id)


def lines_of_invoice(ctx: Context, invoice_id: str) -> Future[list[Record]]:
    """The lines of one invoice."""
    return ctx.loaders.by_field(ctx.services.sales, "invoiceLines", "invoiceId").load(invoice_id)
