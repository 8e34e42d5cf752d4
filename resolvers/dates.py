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
