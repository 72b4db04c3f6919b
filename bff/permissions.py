"""Field-level authorization: who may see a customer's private data (email, invoices).

- Employees see everything.
- A customer sees their own email and invoices; another customer's fail with ``FORBIDDEN``.
- Anonymous requests see everything while ``BFF_AUTH_REQUIRED`` is off (development); with it on,
  they fail with ``UNAUTHENTICATED``. The rest of the response still comes back: only the
  protected fields are null, with an error each.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from bff.context import Context
from bff.errors import Forbidden, Unauthenticated

__all__ = ["OwnCustomerData", "check_customer_access"]


def check_customer_access(context: Context, customer_id: str | None) -> None:
    """Allow the operation to see data of ``customer_id``, or raise ``UNAUTHENTICATED`` / ``FORBIDDEN``."""
    principal = context.principal
    if principal is None:
        if context.settings.auth_required:
            raise Unauthenticated("Sign in to see customer data.")
        return
    if principal.is_employee:
        return
    if customer_id is None or principal.customer_id != str(customer_id):
        raise Forbidden("Customers may only see their own data.")


class OwnCustomerData(BasePermission):
    """On fields of ``Customer``: the principal must be an employee or that customer."""

    message = "Customers may only see their own data."

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        """True when allowed; raises ``UNAUTHENTICATED`` or ``FORBIDDEN`` (with their codes) otherwise."""
        check_customer_access(info.context, getattr(source, "id", None))
        return True
