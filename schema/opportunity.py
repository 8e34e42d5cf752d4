"""The Opportunity type, its children and the list's filter and ordering inputs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

import models
from resolvers import opportunity as rules
from resolvers.loaders import DEAL_CONTACTS, FIELD_HISTORY, QUOTES, STAGE_HISTORY
from resolvers.money import weighted
from schema.context import Context, Info
from schema.customization import CustomFieldFilter, Customizable
from schema.dealroom import DealRoomRecord
from schema.history import FieldChange, StageChange
from schema.picklist import ForecastCategory, SalesStage, stage_by
from schema.reads import (
    ListSpec,
    children,
    computed,
    connection,
    node_id,
    references,
    to_one,
    value_field,
)
from schema.relay import (
    Connection,
    Node,
    OrderDirection,
    order_pairs,
    page_args,
    rows_of,
)
from schema.timeline import TimelineRecord
from schema.user import User

if TYPE_CHECKING:
    from schema.account import Account
    from schema.campaign import Campaign
    from schema.contact import Contact
    from schema.quote import Quote

Parent = strawberry.Parent[models.Opportunity]


@strawberry.enum
class AmountSource(Enum):
    MANUAL = "MANUAL"
    QUOTE = "QUOTE"


STAGE = stage_by("sales_stage")


async def _primary_contact(ctx: Context, deals: list[Any]) -> dict[int, list[tuple[str, int]]]:
    ids = [deal.id for deal in deals]
    found = await ctx.loaders.children(DEAL_CONTACTS).load_many(ids)
    return {
        pk: [("Contact", link.contact_id) for link in links if link.is_primary]
        for pk, links in zip(ids, found, strict=True)
    }


@strawberry.type(description="A deal: a live negotiation with a customer.")
class Opportunity(Node, Customizable, DealRoomRecord, TimelineRecord):
    is_type_of = rows_of(models.Opportunity)
    id: strawberry.ID = node_id("Opportunity")
    number: str
    name: str
    amount: Decimal
    currency: str
    expected_close_date: dt.date
    actual_close_date: dt.date | None
    type: str | None
    next_step: str | None
    lead_source: str | None
    probability: Decimal
    probability_is_manual: bool
    lost_reason: str | None
    description: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None = strawberry.field(
        description="When the deal went to the recycle bin; null for a live deal."
    )
    version: int

    amount_source: AmountSource = computed(
        lambda deal: AmountSource(deal.amount_source), reads=("amount_source",)
    )
    weighted_amount: Decimal = computed(
        lambda deal: weighted(deal.amount, deal.probability), reads=("amount", "probability"),
        description="amount × probability / 100, rounded to cents.",
    )
    sales_stage: SalesStage = computed(lambda deal, stage: stage, using=STAGE, itself=True)
    forecast_category: ForecastCategory = computed(
        lambda deal, stage: ForecastCategory(stage.forecast_category), using=STAGE
    )
    is_closed: bool = computed(lambda deal, stage: stage.is_closed, using=STAGE)
    is_won: bool = computed(lambda deal, stage: stage.is_won, using=STAGE)
    age_days: int = computed(
        rules.age_days, reads=("created_at",), description="Days since the deal was created."
    )
    days_in_stage: int = computed(
        rules.days_in_stage, reads=("stage_changed_at",),
        description="Days since the deal entered its current stage.",
    )
    days_to_close: int | None = computed(
        rules.days_to_close, reads=("expected_close_date",), using=STAGE,
        description="Days until the expected close date; null once closed.",
    )
    is_overdue: bool = computed(
        rules.is_overdue, reads=("expected_close_date",), using=STAGE,
        description="Open and past its expected close date.",
    )
    assigned_to: User = to_one("User", "assigned_to_id")
    created_by: User = to_one("User", "created_by_id")
    account: Annotated[Account, strawberry.lazy("schema.account")] | None = to_one(
        "Account", "account_id"
    )
    campaign: Annotated[Campaign, strawberry.lazy("schema.campaign")] | None = to_one(
        "Campaign", "campaign_id", description="The campaign the deal came from (campaign source)."
    )

    contact: Annotated[Contact, strawberry.lazy("schema.contact")] | None = references(
        _primary_contact, many=False, description="The primary contact."
    )

    contacts: list[OpportunityContact] = children(DEAL_CONTACTS)
    quotes: list[Annotated[Quote, strawberry.lazy("schema.quote")]] = children(QUOTES)
    field_history: list[FieldChange] = children(
        FIELD_HISTORY, description="Changes of tracked fields, newest first."
    )
    stage_history: list[StageChange] = children(
        STAGE_HISTORY, description="Stage changes, newest first."
    )


@strawberry.type(description="A contact's role in a deal.")
class OpportunityContact:
    is_type_of = rows_of(models.OpportunityContact)
    role: str | None
    is_primary: bool

    contact: Annotated[Contact, strawberry.lazy("schema.contact")] = to_one(
        "Contact", "contact_id"
    )


@strawberry.input(description="Every given field must hold (AND).")
class OpportunityFilter:
    stage: list[str] | None = None
    assigned_to: list[strawberry.ID] | None = None
    account: strawberry.ID | None = None
    campaign: strawberry.ID | None = None
    expected_close_date_from: dt.date | None = None
    expected_close_date_to: dt.date | None = None
    amount_min: Decimal | None = strawberry.field(
        default=None, description="The stored amount, in the deal's own currency."
    )
    amount_max: Decimal | None = None
    type: str | None = None
    lead_source: str | None = None
    forecast_category: list[ForecastCategory] | None = None
    is_closed: bool | None = None
    is_won: bool | None = None
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive match on name and number."
    )
    custom_fields: list[CustomFieldFilter] | None = strawberry.field(
        default=None, description="Conditions on custom fields (AND)."
    )
    actual_close_date_from: dt.date | None = None
    actual_close_date_to: dt.date | None = None
    updated_since: dt.datetime | None = strawberry.field(
        default=None, description="Deals changed at or after this instant."
    )
    is_overdue: bool | None = strawberry.field(
        default=None, description="Open deals whose expected close date has passed."
    )
    lost_reason: str | None = strawberry.field(
        default=None, description="Case-insensitive match on the lost reason."
    )

    def to_rules(self) -> rules.OpportunityFilter:
        def tup(values: list[Any] | None) -> tuple[str, ...] | None:
            return None if values is None else tuple(values)

        return rules.OpportunityFilter(
            stage=tup(self.stage),
            assigned_to=tup(self.assigned_to),
            account=self.account,
            campaign=self.campaign,
            expected_close_date_from=self.expected_close_date_from,
            expected_close_date_to=self.expected_close_date_to,
            amount_min=self.amount_min,
            amount_max=self.amount_max,
            type=self.type,
            lead_source=self.lead_source,
            forecast_category=tup(
                None if self.forecast_category is None
                else [c.value for c in self.forecast_category]
            ),
            is_closed=self.is_closed,
            is_won=self.is_won,
            search=self.search,
            custom_fields=None if self.custom_fields is None
            else tuple(c.to_rules() for c in self.custom_fields),
            actual_close_date_from=self.actual_close_date_from,
            actual_close_date_to=self.actual_close_date_to,
            updated_since=self.updated_since,
            is_overdue=self.is_overdue,
            lost_reason=self.lost_reason,
        )


@strawberry.enum
class OpportunityOrderField(Enum):
    NAME = "NAME"
    AMOUNT = "AMOUNT"
    EXPECTED_CLOSE_DATE = "EXPECTED_CLOSE_DATE"
    PROBABILITY = "PROBABILITY"
    WEIGHTED_AMOUNT = "WEIGHTED_AMOUNT"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    CUSTOM_FIELD = "CUSTOM_FIELD"


@strawberry.input
class OpportunityOrder:
    field: OpportunityOrderField
    direction: OrderDirection = OrderDirection.ASC
    custom_field_key: str | None = strawberry.field(
        default=None, description="With field CUSTOM_FIELD: the key (unset values first)."
    )


async def deal_list(
    session: AsyncSession, filter: OpportunityFilter | None,
    order_by: list[OpportunityOrder] | None,
) -> rules.DealList:
    """resolvers.opportunity.deal_list for a deal list field's GraphQL arguments."""
    return await rules.deal_list(session, filter.to_rules() if filter else None,
                                 order_pairs(order_by))


async def deal_spec(
    info: Info, filter: OpportunityFilter | None, order_by: list[OpportunityOrder] | None
) -> ListSpec:
    """A deal connection's arguments (the statement is reusable unless it follows custom
    fields' definitions, which may change, or today's date)."""
    conditions, order, extra_sort, spec = await deal_list(info.context.session, filter, order_by)
    follows = spec is not None and bool(spec.custom_fields or spec.follows_today)
    return ListSpec(conditions, order, extra_sort, spec, not extra_sort and not follows)


@strawberry.type
class OpportunityQuery:
    @connection("Opportunity", Connection[Opportunity], description="Deals the viewer may see.")
    async def opportunities(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: OpportunityFilter | None = None,
        order_by: list[OpportunityOrder] | None = None,
    ) -> ListSpec:
        return await deal_spec(info, filter, order_by)

    @value_field(
        description="The recycle bin: deleted deals the viewer could see before deletion, "
        "newest deletion first."
    )
    async def deleted_opportunities(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Opportunity]:
        ctx = info.context
        page = await rules.recycle_bin(
            ctx.viewer, page_args(first, after, last, before), ctx.default_page_size,
            ctx.max_page_size,
        ).read(ctx.session)
        return Connection(page=page)
