"""Invoices and invoice lines (sales service)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from bff.loaders import Record
from bff.permissions import check_customer_access
from resolvers import catalog as catalog_service
from resolvers import customers as customers_service
from resolvers import sales as sales_service
from schema.catalog import Track
from schema.common import Info, money, node, ref, timestamp
from schema.relations import to_many, to_one

if TYPE_CHECKING:
    from schema.customers import Customer


def _customer(record: Record) -> Customer:
    from schema.customers import Customer

    return Customer.from_record(record)


@strawberry.type
class Invoice:
    """A purchase by one customer."""

    id: strawberry.ID
    invoice_date: datetime = strawberry.field(description="When the purchase was made (ISO 8601).")
    billing_city: str | None
    billing_country: str | None
    total: Decimal = strawberry.field(description="Sum of the lines' unit price times quantity.")
    customer_id: strawberry.Private[str | None]
    customer: Annotated[Customer, strawberry.lazy("schema.customers")] | None = to_one(
        key=lambda invoice: invoice.customer_id,
        load=customers_service.customer,
        build=_customer,
        description="Who bought.",
    )
    lines: list[InvoiceLine] = to_many(
        key=lambda invoice: invoice.id,
        load=sales_service.lines_of_invoice,
        build=lambda record: InvoiceLine.from_record(record),
        description="What was bought.",
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


@strawberry.type
class InvoiceLine:
    """One track bought on an invoice."""

    id: strawberry.ID
    unit_price: Decimal
    quantity: int
    track_id: strawberry.Private[str | None]
    invoice_id: strawberry.Private[str | None]
    track: Track | None = to_one(
        key=lambda line: line.track_id,
        load=catalog_service.track,
        build=Track.from_record,
        description="The track bought.",
    )
    invoice: Invoice | None = to_one(
        key=lambda line: line.invoice_id,
        load=sales_service.invoice,
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
        record = await sales_service.invoice(info.context, id)
        check_customer_access(info.context, None if record is None else ref(record.get("customerId")))
        return node(info, Invoice.from_record, record)
