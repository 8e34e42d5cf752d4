"""'Today' is the server's local date; instants are UTC."""

from __future__ import annotations

import datetime as dt
import time

_today: tuple[float, dt.date] = (0.0, dt.date.min)


def today() -> dt.date:
    """The local date, read at most once a second (a page computes it for every deal)."""
    global _today
    now = time.monotonic()
    if now >= _today[0]:
        _today = (now + 1.0, dt.date.today())
    return _today[1]


def local_date(instant: dt.datetime) -> dt.date:
    return instant.astimezone().date()


# Dates a client may send or store: a wider range is a typo (0202, 20277), not a plan.
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2999, 12, 31)


def in_range(value: dt.date) -> dt.date:
    """`value` itself (a datetime's date counts); ValueError when it is outside 1900–2999,
    the one range every path (GraphQL scalars, CSV import, filters) accepts."""
    day = value.date() if isinstance(value, dt.datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise ValueError(
            f"{value.isoformat()} is out of range: dates go from {EARLIEST.isoformat()} to "
            f"{LATEST.isoformat()}."
        )
    return value
