"""Default reference data every database starts with (stages, picklists, EUR, counters)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert

from models.currency import Currency
from models.picklist import PicklistValue, SalesStage
from models.sequence import NumberSequence

# name, default probability, forecast category, closed, won
SALES_STAGES: list[tuple[str, int, str, bool, bool]] = [
    ("Prospecting", 10, "PIPELINE", False, False),
    ("Qualification", 20, "PIPELINE", False, False),
    ("Needs Analysis", 25, "PIPELINE", False, False),
    ("Value Proposition", 30, "PIPELINE", False, False),
    ("Id. Decision Makers", 40, "PIPELINE", False, False),
    ("Perception Analysis", 50, "BEST_CASE", False, False),
    ("Proposal/Price Quote", 65, "BEST_CASE", False, False),
    ("Negotiation/Review", 80, "COMMIT", False, False),
    ("Closed Won", 100, "CLOSED", True, True),
    ("Closed Lost", 0, "OMITTED", True, False),
]

PICKLISTS: dict[str, list[str]] = {
    "opportunityType": ["Existing Business", "New Business"],
    "leadSource": [
        "Cold Call", "Existing Customer", "Self Generated", "Employee", "Partner",
        "Public Relations", "Direct Mail", "Conference", "Trade Show", "Web Site",
        "Word of mouth", "Other",
    ],
    "contactRole": [
        "Business User", "Manager", "Purchase Agent", "Purchase Manager", "Examiner",
        "Sponsor Manager", "Consultant", "Tech Purchase Agent", "Other",
    ],
    "quoteStage": ["Created", "Delivered", "Reviewed", "Accepted", "Rejected"],
    "leadStatus": [
        "Not Contacted", "Attempted to Contact", "Contacted", "Contact in Future",
        "Pre Qualified", "Qualified", "Hot", "Warm", "Cold", "Junk Lead", "Lost Lead",
    ],
    "industry": [
        "Banking", "Consulting", "Education", "Energy", "Finance", "Government",
        "Healthcare", "Manufacturing", "Media", "Retail", "Technology",
        "Telecommunications", "Transportation", "Other",
    ],
    "campaignType": [
        "Conference", "Webinar", "Trade Show", "Public Relations", "Partners",
        "Referral Program", "Advertisement", "Direct Mail", "Email", "Telemarketing", "Other",
    ],
    "campaignStatus": ["Planning", "Active", "Inactive", "Completed", "Cancelled"],
}

# The prefix of each entity's human-readable number.
NUMBER_PREFIXES = ("POT", "ACC", "CON", "LEA", "CAM", "QUO", "PRO")

BASE_CURRENCY = "EUR"


def to_key(label: str) -> str:
    """SCREAMING_SNAKE key of a label: 'Id. Decision Makers' -> 'ID_DECISION_MAKERS'."""
    return re.sub(r"[^A-Z0-9]+", "_", label.upper()).strip("_")


def stage_rows() -> list[dict[str, Any]]:
    return [
        {
            "key": to_key(name),
            "name": name,
            "position": position,
            "probability": Decimal(probability),
            "forecast_category": category,
            "is_closed": closed,
            "is_won": won,
            "is_active": True,
        }
        for position, (name, probability, category, closed, won) in enumerate(SALES_STAGES, 1)
    ]


def picklist_rows() -> list[dict[str, Any]]:
    return [
        {"picklist": name, "key": to_key(label), "label": label, "position": pos, "is_active": True}
        for name, labels in PICKLISTS.items()
        for pos, label in enumerate(labels, 1)
    ]


def insert_defaults(connection: Connection) -> None:
    """Insert the reference data into an empty schema (used by the first migration)."""
    connection.execute(insert(SalesStage), stage_rows())
    connection.execute(insert(PicklistValue), picklist_rows())
    connection.execute(
        insert(Currency), [{"code": BASE_CURRENCY, "rate": Decimal(1), "is_base": True}]
    )
    connection.execute(
        insert(NumberSequence), [{"prefix": p, "next_value": 1} for p in NUMBER_PREFIXES]
    )
