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
from resolvers.money import weighted
from schema.common import related, root_list
from schema.context import Info
from schema.customization import CustomFieldFilter, Customizable
from schema.dealroom import DealRoomRecord
from schema.history import FieldChange, StageChange
from schema.picklist import ForecastCategory, SalesStage
from schema.relay import (
    Connection,
    Node,
    OrderDirection,
    node_id,
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


async def _stage(root: models.Opportunity, info: Info) -> models.SalesStage:
    stage = await info.context.loaders.stage.load(root.sales_stage)
    assert stage is not None, f"unknown stage {root.sales_stage}"
    return stage


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

    @strawberry.field
    @staticmethod
    def amount_source(root: Parent) -> AmountSource:
        return AmountSource(root.amount_source)

    @strawberry.field(description="amount × probability / 100, rounded to cents.")
    @staticmethod
    def weighted_amount(root: Parent) -> Decimal:
        return weighted(root.amount, root.probability)

    @strawberry.field
    @staticmethod
    async def sales_stage(root: Parent, info: Info) -> SalesStage:
        return await _stage(root, info)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def forecast_category(root: Parent, info: Info) -> ForecastCategory:
        return ForecastCategory((await _stage(root, info)).forecast_category)

    @strawberry.field
    @staticmethod
    async def is_closed(root: Parent, info: Info) -> bool:
        return (await _stage(root, info)).is_closed

    @strawberry.field
    @staticmethod
    async def is_won(root: Parent, info: Info) -> bool:
        return (await _stage(root, info)).is_won

    @strawberry.field(description="Days since the deal was created.")
    @staticmethod
    def age_days(root: Parent) -> int:
        return rules.age_days(root)

    @strawberry.field(description="Days since the deal entered its current stage.")
    @staticmethod
    def days_in_stage(root: Parent) -> int:
        return rules.days_in_stage(root)

    @strawberry.field(description="Days until the expected close date; null once closed.")
    @staticmethod
    async def days_to_close(root: Parent, info: Info) -> int | None:
        return rules.days_to_close(root, await _stage(root, info))

    @strawberry.field(description="Open and past its expected close date.")
    @staticmethod
    async def is_overdue(root: Parent, info: Info) -> bool:
        return rules.is_overdue(root, await _stage(root, info))

    @strawberry.field
    @staticmethod
    async def assigned_to(root: Parent, info: Info) -> User:
        return await related(info, "User", root.assigned_to_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def created_by(root: Parent, info: Info) -> User:
        return await related(info, "User", root.created_by_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def account(
        root: Parent, info: Info
    ) -> Annotated[Account, strawberry.lazy("schema.account")] | None:
        return await related(info, "Account", root.account_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The campaign the deal came from (campaign source).")
    @staticmethod
    async def campaign(
        root: Parent, info: Info
    ) -> Annotated[Campaign, strawberry.lazy("schema.campaign")] | None:
        return await related(info, "Campaign", root.campaign_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The primary contact.")
    @staticmethod
    async def contact(
        root: Parent, info: Info
    ) -> Annotated[Contact, strawberry.lazy("schema.contact")] | None:
        links = await info.context.loaders.deal_contacts.load(root.id)
        primary = next((link for link in links if link.is_primary), None)
        return None if primary is None else await related(info, "Contact", primary.contact_id)

    @strawberry.field
    @staticmethod
    async def contacts(root: Parent, info: Info) -> list[OpportunityContact]:
        return await info.context.loaders.deal_contacts.load(root.id)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def quotes(
        root: Parent, info: Info
    ) -> list[Annotated[Quote, strawberry.lazy("schema.quote")]]:
        return await info.context.loaders.quotes.load(root.id)  # type: ignore[return-value]

    @strawberry.field(description="Changes of tracked fields, newest first.")
    @staticmethod
    async def field_history(root: Parent, info: Info) -> list[FieldChange]:
        return await info.context.loaders.field_history.load(root.id)  # type: ignore[return-value]

    @strawberry.field(description="Stage changes, newest first.")
    @staticmethod
    async def stage_history(root: Parent, info: Info) -> list[StageChange]:
        return await info.context.loaders.stage_history.load(root.id)  # type: ignore[return-value]


@strawberry.type(description="A contact's role in a deal.")
class OpportunityContact:
    role: str | None
    is_primary: bool

    @strawberry.field
    @staticmethod
    async def contact(
        root: strawberry.Parent[models.OpportunityContact], info: Info
    ) -> Annotated[Contact, strawberry.lazy("schema.contact")]:
        return await related(info, "Contact", root.contact_id)  # type: ignore[no-any-return]


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


@strawberry.type
class OpportunityQuery:
    @strawberry.field(description="Deals the viewer may see.")
    async def opportunities(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: OpportunityFilter | None = None,
        order_by: list[OpportunityOrder] | None = None,
    ) -> Connection[Opportunity]:
        conditions, _, extra_sort, _ = await deal_list(info.context.session, filter, order_by)
        return await root_list(
            info, "Opportunity", page_args(first, after, last, before), conditions, order_by,
            extra_sort,
        )

    @strawberry.field(
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
