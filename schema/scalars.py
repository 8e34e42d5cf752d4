"""Scalars: Decimal accepts a string or a number without going through binary floats; JSON
carries any JSON value (the audit's before/after); Date and DateTime are Strawberry's, refusing
dates outside 1900–2999 (resolvers.dates.in_range)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from typing import Any

import dateutil.parser
from strawberry.scalars import JSON
from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition, wrap_parser
from strawberry.types.scalar import ScalarDefinition

from resolvers.dates import in_range

__all__ = ["DATE", "DATETIME", "DECIMAL", "JSON", "JSON_SCALAR", "SCALAR_MAP"]


def _parse_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"Expected a decimal number as a string or a number; got {value!r}.")
    try:
        result = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise ValueError(f"Not a decimal number: {value!r}.") from None
    if not result.is_finite():
        raise ValueError(f"Not a finite number: {value!r}.")
    return result


DECIMAL = ScalarDefinition(
    name="Decimal",
    description="An exact decimal number, serialized as a string (e.g. \"1234.50\"); "
    "inputs accept a string or a number.",
    specified_by_url=None,
    serialize=str,
    parse_value=_parse_decimal,
    parse_literal=None,
    origin=decimal.Decimal,
)


def _identity(value: Any) -> Any:
    return value


# Strawberry's own `JSON` NewType, so that every module annotating a field with JSON (this
# one or strawberry.scalars') gets this one definition.
JSON_SCALAR = ScalarDefinition(
    name="JSON",
    description="Any JSON value: an object, a list, a string, a number, a boolean or null.",
    specified_by_url=None,
    serialize=_identity,
    parse_value=_identity,
    parse_literal=None,
    origin=JSON,
)

DATE = dataclasses.replace(
    DateDefinition,
    parse_value=wrap_parser(lambda text: in_range(dt.date.fromisoformat(text)), "Date"),
)
DATETIME = dataclasses.replace(
    DateTimeDefinition,
    parse_value=wrap_parser(lambda text: in_range(dateutil.parser.isoparse(text)), "DateTime"),
)

SCALAR_MAP: dict[object, ScalarDefinition] = {
    decimal.Decimal: DECIMAL, JSON: JSON_SCALAR, dt.date: DATE, dt.datetime: DATETIME,
}
