"""Payments (the payments service's charges) as the graph shows them."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import strawberry

from bff.loaders import Record
from bff_chinook.resolvers import resources
from bff_chinook.schema.common import Info, money, node, ref, timestamp
from bff_chinook.schema.sales import Invoice


@strawberry.enum(description="Where a payment stands.")
class PaymentStatus(enum.Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@strawberry.type
class Payment:
    """A charge of an invoice's total; it is ``PENDING`` until the payments service settles it."""

    id: strawberry.ID
    amount: Decimal
    currency: str
    status: PaymentStatus
    failure_reason: str | None = strawberry.field(description="Why the charge failed, when it did.")
    created_at: datetime | None
    invoice_id: strawberry.ID = strawberry.field(description="The invoice paid.")

    @classmethod
    def from_record(cls, record: Record) -> Payment:
        """Build from a ``charges`` record."""
        created = record.get("createdAt")
        return cls(
            id=strawberry.ID(str(record["id"])),
            amount=money(record["amount"]),
            currency=str(record.get("currency", "USD")),
            status=PaymentStatus(record["status"]),
            failure_reason=record.get("failureReason"),
            created_at=timestamp(created) if isinstance(created, str) else None,
            invoice_id=strawberry.ID(str(ref(record["invoiceId"]))),
        )

    @strawberry.field(description="The invoice paid.")
    async def invoice(self, info: Info) -> Invoice | None:
        return node(info, Invoice.from_record, await resources.invoices.get(info.context, self.invoice_id))
