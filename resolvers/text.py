"""Case-insensitive substring search, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_


def escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(term: str, *columns: Any) -> ColumnElement[bool]:
    pattern = f"%{escape_like(term.strip())}%"
    return or_(*(column.ilike(pattern, escape="\\") for column in columns))
