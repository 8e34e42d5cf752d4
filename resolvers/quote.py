"""Quote totals from their lines, rounded per line as the contract says."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from models import QuoteLine
from resolvers.money import HUNDRED, cents


def line_net_total(line: QuoteLine) -> Decimal:
    return cents(line.quantity * line.list_price * (1 - line.discount_percent / HUNDRED))


def line_tax(line: QuoteLine) -> Decimal:
    return cents(line_net_total(line) * line.tax_percent / HUNDRED)


@dataclass(frozen=True)
class QuoteTotals:
    subtotal: Decimal
    discount_total: Decimal
    net_total: Decimal
    tax_total: Decimal
    grand_total: Decimal


def totals(lines: Iterable[QuoteLine]) -> QuoteTotals:
    subtotal = net = tax = Decimal("0.00")
    for line in lines:
        subtotal += cents(line.quantity * line.list_price)
        net += line_net_total(line)
        tax += line_tax(line)
    return QuoteTotals(subtotal, subtotal - net, net, tax, net + tax)
