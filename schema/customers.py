"""Customers and employees (customers service)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from bff.loaders import Record
from bff.permissions import OwnCustomerData
from resolvers import customers as customers_service
from resolvers import sales as sales_service
from schema import relay
from schema.common import Info, node, nodes, ref

if TYPE_CHECKING:
    from schema.sales import Invoice


@strawberry.type
class Employee:
    """An employee of the store; some are support representatives of customers."""

    id: strawberry.ID
    first_name: str
    last_name: str
    title: str | None
    email: str | None
    city: str | None
    country: str | None
    reports_to_id: strawberry.Private[str | None]

    @classmethod
    def from_record(cls, record: Record) -> Employee:
        """Build from an ``employees`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])),
            first_name=record["firstName"],
            last_name=record["lastName"],
            title=record.get("title"),
            email=record.get("email"),
            city=record.get("city"),
            country=record.get("country"),
            reports_to_id=ref(record.get("reportsToId")),
        )

    @strawberry.field(description="The employee's manager; null for the top of the hierarchy.")
    async def reports_to(self, info: Info) -> Employee | None:
        record = await customers_service.employee(info.context, self.reports_to_id)
        return node(info, Employee.from_record, record)

    @strawberry.field(description="The customers this employee is the support representative of.")
    async def customers(self, info: Info) -> list[Customer]:
        records = await customers_service.customers_of_employee(info.context, self.id)
        return nodes(info, Customer.from_record, records)


@strawberry.type
class Customer:
    """A customer of the store."""

    id: strawberry.ID
    first_name: str
    last_name: str
    email: str | None = strawberry.field(
        permission_classes=[OwnCustomerData],
        description="Only the customer and employees may see it (null with FORBIDDEN for others).",
    )
    company: str | None
    country: str | None
    city: str | None
    support_rep_id: strawberry.Private[str | None]

    @classmethod
    def from_record(cls, record: Record) -> Customer:
        """Build from a ``customers`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])),
            first_name=record["firstName"],
            last_name=record["lastName"],
            email=record["email"],
            company=record.get("company"),
            country=record.get("country"),
            city=record.get("city"),
            support_rep_id=ref(record.get("supportRepId")),
        )

    @strawberry.field(description="The employee who looks after this customer.")
    async def support_rep(self, info: Info) -> Employee | None:
        record = await customers_service.employee(info.context, self.support_rep_id)
        return node(info, Employee.from_record, record)

    @strawberry.field(
        description="The customer's invoices, oldest first; only the customer and employees may see them.",
        permission_classes=[OwnCustomerData],
    )
    async def invoices(self, info: Info) -> list[Annotated[Invoice, strawberry.lazy("schema.sales")]] | None:
        from schema.sales import Invoice

        return nodes(
            info, Invoice.from_record, await sales_service.invoices_of_customer(info.context, self.id)
        )


@strawberry.type
class Query:
    """Customers service queries."""

    @strawberry.field(description="One customer by id; null when there is none.")
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        return node(info, Customer.from_record, await customers_service.customer(info.context, id))

    @strawberry.field(description="Customers, a page at a time; optionally only those of one country.")
    async def customers(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        country: str | None = None,
    ) -> relay.Connection[Customer]:
        offset, limit = relay.page_window(first, after)
        page = await customers_service.customers_page(
            info.context, offset=offset, limit=limit, country=country
        )
        return relay.Connection[Customer].from_page(page, Customer.from_record)

    @strawberry.field(description="One employee by id; null when there is none.")
    async def employee(self, info: Info, id: strawberry.ID) -> Employee | None:
        record: Any = await customers_service.employee(info.context, id)
        return node(info, Employee.from_record, record)
