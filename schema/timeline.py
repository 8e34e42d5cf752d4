"""Timelines: what happened to an opportunity, an account (with its deals) or a lead, as one
connection of TimelineItem, newest first (the records implementing TimelineRecord)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from resolvers import timeline as rules
from resolvers.pagination import Page
from schema.context import Context, Info
from schema.dealroom import Activity, Comment, Document
from schema.history import FieldChange, StageChange
from schema.quote import Quote
from schema.reads import page_args_of, paged, to_one
from schema.relay import Connection, rows_of
from schema.user import User

if TYPE_CHECKING:
    from schema.account import Account
    from schema.contact import Contact
    from schema.lead import Lead
    from schema.opportunity import Opportunity

Parent = strawberry.Parent[rules.LeadConverted]


@strawberry.enum(description="The kinds of timeline items.")
class TimelineItemType(Enum):
    STAGE_CHANGE = "STAGE_CHANGE"
    FIELD_CHANGE = "FIELD_CHANGE"
    ACTIVITY = "ACTIVITY"
    COMMENT = "COMMENT"
    DOCUMENT = "DOCUMENT"
    QUOTE = "QUOTE"
    LEAD_CONVERSION = "LEAD_CONVERSION"


@strawberry.type(
    description="A lead converted into an account, a contact and perhaps a deal (each null "
    "when there is none or the viewer may not see it)."
)
class LeadConversion:
    is_type_of = rows_of(rules.LeadConverted)

    @strawberry.field
    @staticmethod
    def converted_at(root: Parent) -> dt.datetime:
        assert root.lead.converted_at is not None
        return root.lead.converted_at

    lead: Annotated[Lead, strawberry.lazy("schema.lead")] | None = to_one("Lead", "lead.id")

    account: Annotated[Account, strawberry.lazy("schema.account")] | None = to_one(
        "Account", "lead.converted_account_id"
    )

    contact: Annotated[Contact, strawberry.lazy("schema.contact")] | None = to_one(
        "Contact", "lead.converted_contact_id"
    )

    opportunity: Annotated[Opportunity, strawberry.lazy("schema.opportunity")] | None = to_one(
        "Opportunity", "lead.converted_opportunity_id"
    )

    converted_by: User | None = to_one(
        "User", "converted_by_id",
        description="Who converted the lead: the creator of the deal or contact it created; "
        "null when it created neither.",
    )


TimelineItem = Annotated[
    StageChange | FieldChange | Activity | Comment | Document | Quote | LeadConversion,
    strawberry.union("TimelineItem", description="Something that happened to a record."),
]


async def _timelines(
    ctx: Context, model: type, ids: list[int], values: dict[str, Any]
) -> dict[int, Page[Any]]:
    types = values.get("types")
    kinds = None if types is None else tuple(sorted({t.value for t in types}))
    return await rules.timelines(
        ctx.session, ctx.viewer, model.__name__, ids, page_args_of(values), kinds,
        ctx.default_page_size, ctx.max_page_size,
    )


@strawberry.interface(description="A record with a timeline of what happened to it.")
class TimelineRecord:
    @paged(
        _timelines, Connection[TimelineItem],
        description="Stage changes, field changes, activities, comments, documents, quotes "
        "and the lead conversion, newest first (by when they happened or were added); an "
        "account's include those of the deals of it the viewer may see. `types` picks kinds.",
    )
    @staticmethod
    async def timeline(  # type: ignore[empty-body]  # a stub: see paged
        root: strawberry.Parent[Any],
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        types: list[TimelineItemType] | None = None,
    ) -> Connection[TimelineItem]: ...  # a stub: see paged
