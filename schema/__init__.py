"""The GraphQL schema: root types composed from the domain modules."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.account import AccountQuery
from schema.audit import AuditQuery
from schema.budget import BudgetQuery
from schema.campaign import CampaignQuery
from schema.contact import ContactQuery
from schema.customization import CustomizationQuery
from schema.dealroom import DealRoomQuery
from schema.forecast import ForecastQuery
from schema.imports import ImportQuery
from schema.lead import LeadQuery
from schema.mutations.budget import BudgetMutation
from schema.mutations.customization import CustomizationMutation
from schema.mutations.dealroom import DealRoomMutation
from schema.mutations.imports import ImportMutation
from schema.mutations.lead import LeadMutation
from schema.mutations.opportunity import OpportunityMutation
from schema.mutations.picklist import PicklistMutation
from schema.mutations.quote import QuoteMutation
from schema.mutations.records import RecordMutation
from schema.node import NodeQuery
from schema.opportunity import OpportunityQuery
from schema.picklist import PicklistQuery
from schema.product import ProductQuery
from schema.quote import QuoteQuery
from schema.scalars import SCALAR_MAP
from schema.subscriptions import OpportunitySubscription
from schema.user import UserQuery

Query = merge_types(
    "Query",
    (
        NodeQuery,
        UserQuery,
        OpportunityQuery,
        AccountQuery,
        ContactQuery,
        LeadQuery,
        CampaignQuery,
        QuoteQuery,
        ProductQuery,
        PicklistQuery,
        BudgetQuery,
        ForecastQuery,
        AuditQuery,
        CustomizationQuery,
        ImportQuery,
        DealRoomQuery,
    ),
)

Mutation = merge_types(
    "Mutation",
    (OpportunityMutation, LeadMutation, QuoteMutation, RecordMutation, BudgetMutation,
     PicklistMutation, CustomizationMutation, ImportMutation, DealRoomMutation),
)


Subscription = merge_types("Subscription", (OpportunitySubscription,))


def build_schema(
    extensions: list[Any] | None = None, schema_class: type[strawberry.Schema] = strawberry.Schema
) -> strawberry.Schema:
    """The schema, with the request limits and caches given as extensions by the server."""
    from schema.account import Account
    from schema.budget import Budget
    from schema.campaign import Campaign
    from schema.contact import Contact
    from schema.dealroom import Activity, Comment, Document
    from schema.lead import Lead
    from schema.opportunity import Opportunity
    from schema.product import Product
    from schema.quote import Quote
    from schema.user import User

    return schema_class(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[
            Opportunity, Account, Contact, Lead, Campaign, Product, Quote, User, Budget,
            Document, Activity, Comment,
        ],
        extensions=extensions or [],
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )


def print_schema() -> str:
    return build_schema().as_str() + "\n"
