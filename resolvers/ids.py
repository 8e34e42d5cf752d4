"""Opaque Relay global ids: base64 of 'Type:pk'."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache


@lru_cache(maxsize=65536)  # pure, and a page of nested data asks for hundreds
def to_global_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def from_global_id(global_id: str) -> tuple[str, int] | None:
    """(type name, primary key), or None when the id is not one of ours."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, pk = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        return (type_name, int(pk)) if type_name and pk.isdigit() else None
    except (binascii.Error, UnicodeError, ValueError):
        return None


def pk_of(global_id: str, type_name: str) -> int | None:
    """The primary key if the id names a record of that type, else None."""
    decoded = from_global_id(global_id)
    return decoded[1] if decoded and decoded[0] == type_name else None
