"""Invoices and invoice lines (sales service)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from bff import entity, to_many, to_one
from bff.loaders import Record
from bff_chinook.resolvers import resources
from bff_chinook.resolvers.access import check_customer_access
from bff_chinook.schema.catalog import Track
from bff_chinook.schema.common import Info, money, node, ref, timestamp

if TYPE_CHECKING:
    from bff_chinook.schema.customers import Customer


def _customer(record: Record) -> Customer:
    from bff_chinook.schema.customers import Customer

    return Customer.from_record(record)


@entity(resources.invoices)
@strawberry.type
class Invoice:
    """A purchase by one customer."""

    id: strawberry.ID
    invoice_date: datetime = strawberry.field(description="When the purchase was made (ISO 8601).")
    billing_city: str | None
    billing_country: str | None
    total: Decimal = strawberry.field(description="Sum of the lines' unit price times quantity.")
    customer_id: strawberry.Private[str | None]
    customer: Annotated[Customer, strawberry.lazy("bff_chinook.schema.customers")] | None = to_one(
        resources.customers,
        key=lambda invoice: invoice.customer_id,
        build=_customer,
        description="Who bought.",
    )
    lines: list[InvoiceLine] = to_many(
        resources.invoice_lines,
        by="invoiceId",
        key=lambda invoice: invoice.id,
        build=lambda record: InvoiceLine.from_record(record),
        description="What was bought.",
        size=14,
    )

    @classmethod
    def from_record(cls, record: Record) -> Invoice:
        """Build from an ``invoices`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])),
            invoice_date=timestamp(record["invoiceDate"]),
            billing_city=record.get("billingCity"),
            billing_country=record.get("billingCountry"),
            total=money(record["total"]),
            customer_id=ref(record.get("customerId")),
        )


@entity(resources.invoice_lines)
@strawberry.type
class InvoiceLine:
    """One track bought on an invoice."""

    id: strawberry.ID
    unit_price: Decimal
    quantity: int
    track_id: strawberry.Private[str | None]
    invoice_id: strawberry.Private[str | None]
    track: Track | None = to_one(
        resources.tracks,
        key=lambda line: line.track_id,
        build=Track.from_record,
        description="The track bought.",
    )
    invoice: Invoice | None = to_one(
        resources.invoices,
        key=lambda line: line.invoice_id,
        build=Invoice.from_record,
        description="The invoice this line is on.",
    )

    @classmethod
    def from_record(cls, record: Record) -> InvoiceLine:
        """Build from an ``invoiceLines`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])),
            unit_price=money(record["unitPrice"]),
            quantity=record["quantity"],
            track_id=ref(record.get("trackId")),
            invoice_id=ref(record.get("invoiceId")),
        )


@strawberry.type
class Query:
    """Sales service queries."""

    @strawberry.field(description="One invoice by id; null when there is none. Customers see only their own.")
    async def invoice(self, info: Info, id: strawberry.ID) -> Invoice | None:
        record = await resources.invoices.get(info.context, id)
        check_customer_access(info.context, None if record is None else ref(record.get("customerId")))
        return node(info, Invoice.from_record, record)
