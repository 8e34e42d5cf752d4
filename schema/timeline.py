"""Timelines: what happened to an opportunity, an account (with its deals) or a lead, as one
connection of TimelineItem, newest first (the records implementing TimelineRecord)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from resolvers import timeline as rules
from resolvers.loaders import Loaders
from schema.context import Info
from schema.dealroom import Activity, Comment, Document
from schema.history import FieldChange, StageChange
from schema.quote import Quote
from schema.reads import to_one
from schema.relay import Connection, page_args, rows_of
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

    lead: Annotated[Lead, strawberry.lazy("schema.lead")] | None = to_one("Lead", "id")

    account: Annotated[Account, strawberry.lazy("schema.account")] | None = to_one(
        "Account", "converted_account_id"
    )

    contact: Annotated[Contact, strawberry.lazy("schema.contact")] | None = to_one(
        "Contact", "converted_contact_id"
    )

    opportunity: Annotated[Opportunity, strawberry.lazy("schema.opportunity")] | None = to_one(
        "Opportunity", "converted_opportunity_id"
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


@strawberry.interface(description="A record with a timeline of what happened to it.")
class TimelineRecord:
    @strawberry.field(
        description="Stage changes, field changes, activities, comments, documents, quotes "
        "and the lead conversion, newest first (by when they happened or were added); an "
        "account's include those of the deals of it the viewer may see. `types` picks kinds."
    )
    @staticmethod
    async def timeline(
        root: strawberry.Parent[Any],
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        types: list[TimelineItemType] | None = None,
    ) -> Connection[TimelineItem]:
        ctx = info.context
        parent_type = type(root).__name__
        kinds = None if types is None else tuple(sorted({t.value for t in types}))
        args = page_args(first, after, last, before)
        loaders: Loaders = ctx.loaders

        async def load(ids: list[int]) -> list[Any]:
            pages = await rules.timelines(
                ctx.session, ctx.viewer, parent_type, ids, args, kinds,
                ctx.default_page_size, ctx.max_page_size,
            )
            return [pages[i] for i in ids]

        page = await loaders.batch(("timeline", parent_type, args, kinds), load).load(root.id)
        return Connection(page=page)
