"""SQLAlchemy models, one module per domain. No GraphQL here."""

from models.account import Account
from models.base import Base
from models.budget import Budget
from models.campaign import Campaign
from models.contact import Contact
from models.currency import Currency
from models.customization import ConfigurationChange, CustomFieldDefinition, Layout
from models.dealroom import (
    Activity,
    ActivityLink,
    Comment,
    Document,
    DocumentLink,
    FieldChange,
)
from models.imports import ImportItem, ImportJob
from models.lead import Lead
from models.opportunity import (
    Opportunity,
    OpportunityContact,
    OpportunityOwnerCount,
    StageChange,
)
from models.picklist import PicklistValue, SalesStage
from models.product import Product
from models.quote import Quote, QuoteLine
from models.sequence import NumberSequence
from models.user import ApiToken, User

__all__ = [
    "Activity",
    "ActivityLink",
    "Comment",
    "Document",
    "DocumentLink",
    "FieldChange",
    "Account",
    "ApiToken",
    "Base",
    "Budget",
    "Campaign",
    "ConfigurationChange",
    "Contact",
    "Currency",
    "CustomFieldDefinition",
    "ImportItem",
    "ImportJob",
    "Lead",
    "Layout",
    "NumberSequence",
    "Opportunity",
    "OpportunityContact",
    "OpportunityOwnerCount",
    "PicklistValue",
    "Product",
    "Quote",
    "QuoteLine",
    "SalesStage",
    "StageChange",
    "User",
]
