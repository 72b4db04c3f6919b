"""Customers and employees (customers service)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from bff import PAGE_COST, Connection, connection, entity, to_many, to_one
from bff.loaders import Record
from bff_chinook.resolvers import resources
from bff_chinook.resolvers.access import OwnCustomerData
from bff_chinook.schema.common import Info, node, ref

if TYPE_CHECKING:
    from bff_chinook.schema.sales import Invoice


def _invoice(record: Record) -> Invoice:
    from bff_chinook.schema.sales import Invoice

    return Invoice.from_record(record)


@entity(resources.employees)
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
        resources.employees,
        key=lambda employee: employee.reports_to_id,
        build=lambda record: Employee.from_record(record),
        description="The employee's manager; null for the top of the hierarchy.",
    )
    customers: list[Customer] = to_many(
        resources.customers,
        by="supportRepId",
        key=lambda employee: employee.id,
        build=lambda record: Customer.from_record(record),
        description="The customers this employee is the support representative of.",
        size=21,
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


@entity(resources.customers)
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
        resources.employees,
        key=lambda customer: customer.support_rep_id,
        build=Employee.from_record,
        description="The employee who looks after this customer.",
    )
    invoices: list[Annotated[Invoice, strawberry.lazy("bff_chinook.schema.sales")]] | None = to_many(
        resources.invoices,
        by="customerId",
        key=lambda customer: customer.id,
        build=lambda record: _invoice(record),
        description="The customer's invoices, oldest first; only the customer and employees may see them.",
        size=7,
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
        return node(info, Customer.from_record, await resources.customers.get(info.context, id))

    @strawberry.field(
        description="Customers, a page at a time; optionally only those of one country.", metadata=PAGE_COST
    )
    async def customers(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        country: str | None = None,
    ) -> Connection[Customer]:
        filters = [("country", country)] if country is not None else []
        return await connection(
            info, resources.customers, Customer.from_record, first=first, after=after, filters=filters
        )

    @strawberry.field(description="One employee by id; null when there is none.")
    async def employee(self, info: Info, id: strawberry.ID) -> Employee | None:
        record: Any = await resources.employees.get(info.context, id)
        return node(info, Employee.from_record, record)
