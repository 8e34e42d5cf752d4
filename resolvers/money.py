"""Decimal money arithmetic: half-up to cents where a figure is computed."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal("0.00")


def cents(value: Decimal | float | int) -> Decimal:
    """Round half-up to cents (floats come from SQLite aggregates; go through str)."""
    if value.__class__ is not Decimal:
        value = Decimal(str(value))
    return value.quantize(CENT, ROUND_HALF_UP)


def weighted(amount: Decimal, probability: Decimal) -> Decimal:
    return cents(amount * probability / HUNDRED)
