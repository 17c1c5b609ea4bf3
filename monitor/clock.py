"""Time helpers shared by core and shell: one UTC format for everything stored.

The core never reads the clock; the composition root passes `now` in.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601, so stored times also sort correctly as text (strftime
    left years before 1000 unpadded, and costs a poll a second per 60,000 stamps)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def iso_seconds(moment: datetime) -> str:
    """The compact form users and receivers see: 2024-10-24T09:12:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
