"""Customers and employees (customers service)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from bff.loaders import Record
from bff.permissions import OwnCustomerData
from resolvers import customers as customers_service
from resolvers import sales as sales_service
from schema import relay
from schema.common import Info, node, ref
from schema.relations import prefetch, to_many, to_one

if TYPE_CHECKING:
    from schema.sales import Invoice


def _invoice(record: Record) -> Invoice:
    from schema.sales import Invoice

    return Invoice.from_record(record)


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
    reports_to: Employee | None = to_one(
        key=lambda employee: employee.reports_to_id,
        load=customers_service.employee,
        build=lambda record: Employee.from_record(record),
        description="The employee's manager; null for the top of the hierarchy.",
    )
    customers: list[Customer] = to_many(
        key=lambda employee: employee.id,
        load=customers_service.customers_of_employee,
        build=lambda record: Customer.from_record(record),
        description="The customers this employee is the support representative of.",
    )

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
    support_rep: Employee | None = to_one(
        key=lambda customer: customer.support_rep_id,
        load=customers_service.employee,
        build=Employee.from_record,
        description="The employee who looks after this customer.",
    )
    invoices: list[Annotated[Invoice, strawberry.lazy("schema.sales")]] | None = to_many(
        key=lambda customer: customer.id,
        load=sales_service.invoices_of_customer,
        build=lambda record: _invoice(record),
        description="The customer's invoices, oldest first; only the customer and employees may see them.",
        permission_classes=[OwnCustomerData],
    )

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
        connection = relay.Connection[Customer].from_page(page, Customer.from_record)
        await prefetch(info, [edge.node for edge in connection.edges], under=("edges", "node"))
        return connection

    @strawberry.field(description="One employee by id; null when there is none.")
    async def employee(self, info: Info, id: strawberry.ID) -> Employee | None:
        record: Any = await customers_service.employee(info.context, id)
        return node(info, Employee.from_record, record)
