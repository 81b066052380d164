"""The axis's one clock: UTC for records, Vietnamese local time where the standard wants it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

# edXML timestamps and deadlines are Vietnamese local time (UTC+7, no daylight saving).
VIETNAM = timezone(timedelta(hours=7))


def now() -> datetime:
    return datetime.now(UTC)


def today_in_vietnam() -> date:
    """The calendar day a DueDate is compared with."""
    return now().astimezone(VIETNAM).date()
