"""The event topics of the Chinook app: what mutations and webhooks publish, subscriptions receive."""

from __future__ import annotations

from typing import Final

INVOICE_CREATED: Final = "invoice.created"
"""A purchase created an invoice; ``data``: ``{"invoice": <invoices record>}``."""
CHARGE_CREATED: Final = "charge.created"
"""``payInvoice`` asked for a charge, now pending; ``data``: ``{"charge": <charges record>}``."""
CHARGE_SUCCEEDED: Final = "charge.succeeded"
"""The payments service settled a charge (webhook); ``data``: ``{"charge": <charges record>}``."""
CHARGE_FAILED: Final = "charge.failed"
"""The payments service declined a charge (webhook); ``data``: ``{"charge": <charges record>}``."""
PLAYLIST_UPDATED: Final = "playlist.updated"
"""A playlist was created or its tracks changed; ``data``: ``{"playlistId", "change", "trackId"}``."""
