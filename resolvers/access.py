"""Chinook's access rule: who may see a customer's private data (email, invoices).

A principal's claims say who it is (:class:`bff.auth.Principal`): ``role`` ``employee`` or
``customer`` (the default), and a customer's id in ``customer_id`` (default: ``sub``).

- Employees see everything.
- A customer sees their own email and invoices; another customer's fail with ``FORBIDDEN``.
- Anonymous requests see everything while ``BFF_AUTH_REQUIRED`` is off (development); with it on,
  they fail with ``UNAUTHENTICATED``. The rest of the response still comes back: only the
  protected fields are null, with an error each.

Subscriptions follow the same rule (:func:`customer_scope`): a customer's subscription to invoices
or payments receives only their own events. So do mutations: a customer buys only for themselves and
pays only their own invoices; playlists (which have no owner in Chinook) need only a principal when
``BFF_AUTH_REQUIRED`` is on (:func:`bff.permissions.require_principal`).
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from bff.auth import Principal
from bff.context import Context
from bff.errors import Forbidden, Unauthenticated

__all__ = ["OwnCustomerData", "check_customer_access", "customer_id_of", "customer_scope", "is_employee"]


def is_employee(principal: Principal) -> bool:
    """Whether the principal is an employee, who may see every customer's data."""
    return principal.claim("role") == "employee"


def customer_id_of(principal: Principal) -> str | None:
    """The customer a non-employee principal is: its ``customer_id`` claim, else its subject."""
    if is_employee(principal):
        return None
    found = principal.claim("customer_id", principal.subject)
    return None if found is None else str(found)


def customer_scope(context: Context) -> str | None:
    """The one customer whose data the operation may see; ``None`` when it may see every customer's.

    ``None`` for employees, and for anonymous operations while ``BFF_AUTH_REQUIRED`` is off. Raises
    ``UNAUTHENTICATED`` for anonymous operations when it is on, ``FORBIDDEN`` for a customer
    principal without a customer id (who may see no customer's data).
    """
    principal = context.principal
    if principal is None:
        if context.settings.auth_required:
            raise Unauthenticated("Sign in to see customer data.")
        return None
    if is_employee(principal):
        return None
    customer_id = customer_id_of(principal)
    if customer_id is None or principal.claim("role", "customer") != "customer":
        raise Forbidden("Customers may only see their own data.")
    return customer_id


def check_customer_access(context: Context, customer_id: str | None) -> None:
    """Allow the operation to see data of ``customer_id``, or raise ``UNAUTHENTICATED`` / ``FORBIDDEN``."""
    scope = customer_scope(context)
    if scope is not None and (customer_id is None or scope != str(customer_id)):
        raise Forbidden("Customers may only see their own data.")


class OwnCustomerData(BasePermission):
    """On fields of ``Customer``: the principal must be an employee or that customer."""

    message = "Customers may only see their own data."

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        """True when allowed; raises ``UNAUTHENTICATED`` or ``FORBIDDEN`` (with their codes) otherwise."""
        check_customer_access(info.context, getattr(source, "id", None))
        return True
