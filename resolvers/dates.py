"""'Today' is the server's local date; instants are UTC."""

from __future__ import annotations

import datetime as dt


def today() -> dt.date:
    return dt.date.today()


def local_date(instant: dt.datetime) -> dt.date:
    return instant.astimezone().date()
