"""Scalars: Decimal accepts a string or a number without going through binary floats."""

from __future__ import annotations

import decimal
from typing import Any

from strawberry.types.scalar import ScalarDefinition


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

SCALAR_MAP: dict[object, ScalarDefinition] = {decimal.Decimal: DECIMAL}
