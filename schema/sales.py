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
from schema.common import Info, money, node, nodes, ref, timestamp

if TYPE_CHECKING:
    from schema.customers import Customer


@strawberry.type
class Invoice:
    """A purchase by one customer."""

    id: strawberry.ID
    invoice_date: datetime = strawberry.field(description="When the purchase was made (ISO 8601).")
    billing_city: str | None
    billing_country: str | None
    total: Decimal = strawberry.field(description="Sum of the lines' unit price times quantity.")
    customer_id: strawberry.Private[str | None]

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

    @strawberry.field(description="Who bought.")
    async def customer(self, info: Info) -> Annotated[Customer, strawberry.lazy("schema.customers")] | None:
        from schema.customers import Customer

        return node(
            info, Customer.from_record, await customers_service.customer(info.context, self.customer_id)
        )

    @strawberry.field(description="What was bought.")
    async def lines(self, info: Info) -> list[InvoiceLine]:
        return nodes(
            info, InvoiceLine.from_record, await sales_service.lines_of_invoice(info.context, self.id)
        )


@strawberry.type
class InvoiceLine:
    """One track bought on an invoice."""

    id: strawberry.ID
    unit_price: Decimal
    quantity: int
    track_id: strawberry.Private[str | None]
    invoice_id: strawberry.Private[str | None]

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

    @strawberry.field(description="The track bought.")
    async def track(self, info: Info) -> Track | None:
        record = await catalog_service.track(info.context, self.track_id)
        return node(info, Track.from_record, record)

    @strawberry.field(description="The invoice this line is on.")
    async def invoice(self, info: Info) -> Invoice | None:
        record = await sales_service.invoice(info.context, self.invoice_id)
        return node(info, Invoice.from_record, record)


@strawberry.type
class Query:
    """Sales service queries."""

    @strawberry.field(description="One invoice by id; null when there is none. Customers see only their own.")
    async def invoice(self, info: Info, id: strawberry.ID) -> Invoice | None:
        record = await sales_service.invoice(info.context, id)
        check_customer_access(info.context, None if record is None else ref(record.get("customerId")))
        return node(info, Invoice.from_record, record)
