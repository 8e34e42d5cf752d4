"""The registry of record kinds: how each entity type is found, shown and listed, and who
may see it.

The bottom of the rule layer: it imports the models and the permission helpers, never a
rule module, so that every rule module (validation, links, records, audit, ...) may look a
kind up without an import circle. The visibility rules live here, each written once:

- an owned record (a deal, an account, a contact, a lead) is visible, when not deleted, to
  whoever may read its owner's records (`owned`);
- a document or a comment is visible through any visible record it is linked to
  (`names_visible`), an activity through its assignee or any such record;
- a quote through its deal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Numeric,
    and_,
    exists,
    false,
    func,
    or_,
    select,
    true,
    type_coerce,
)

from models import (
    Account,
    Activity,
    ActivityLink,
    Budget,
    Campaign,
    Comment,
    ConfigurationChange,
    Contact,
    Document,
    DocumentLink,
    ImportJob,
    Lead,
    Opportunity,
    OpportunityOwnerCount,
    Product,
    Quote,
    User,
)
from resolvers.permissions import Viewer, readable

Visible = Callable[[Viewer], list[ColumnElement[bool]]]


def owned(model: Any, viewer: Viewer) -> list[ColumnElement[bool]]:
    """The owned-record rule: not deleted, and owned by someone whose records the viewer may
    read (the owner, their managers, admins; everyone under PUBLIC sharing)."""
    return [model.deleted_at.is_(None), readable(model.assigned_to_id, viewer)]


# The records that documents, activities and comments hang on, named in the link tables by
# an entity code.
ENTITY_OF_TYPE = {
    "Opportunity": "OPPORTUNITY", "Account": "ACCOUNT", "Contact": "CONTACT", "Lead": "LEAD",
}
TYPE_OF_ENTITY = {entity: type_name for type_name, entity in ENTITY_OF_TYPE.items()}
LINKED: dict[str, Any] = {
    "OPPORTUNITY": Opportunity, "ACCOUNT": Account, "CONTACT": Contact, "LEAD": Lead,
}


def names_visible(entity_column: Any, record_column: Any, viewer: Viewer) -> ColumnElement[bool]:
    """SQL: the (entity, record id) pair in these columns names a record the viewer may see."""
    return or_(
        *(
            and_(entity_column == entity, record_column.in_(
                select(model.id).where(*owned(model, viewer))
            ))
            for entity, model in LINKED.items()
        )
    )


def deal_visible_total(viewer: Viewer) -> Any:
    """How many deals the viewer may see, from the per-owner counts the database keeps
    (models.OpportunityOwnerCount): one row per owner, not one per deal."""
    return select(func.coalesce(func.sum(OpportunityOwnerCount.live), 0)).where(
        readable(OpportunityOwnerCount.owner_id, viewer)
    )


def _quotes(viewer: Viewer) -> list[ColumnElement[bool]]:
    if viewer.readable_owner_ids is None:
        # Every live deal is visible: a quote is hidden only by a deal in the recycle bin,
        # the small side (its partial index), where the visible deals are nearly all of them;
        # read once (a hashed subplan, SQLite's list), not looked up for every quote. NOT IN
        # is safe: neither column is ever null.
        in_bin = select(Opportunity.id).where(Opportunity.deleted_at.is_not(None))
        return [Quote.deleted_at.is_(None), Quote.opportunity_id.not_in(in_bin)]
    visible_deals = select(Opportunity.id).where(*owned(Opportunity, viewer))
    return [Quote.deleted_at.is_(None), Quote.opportunity_id.in_(visible_deals)]


def _documents(viewer: Viewer) -> list[ColumnElement[bool]]:
    return [
        Document.deleted_at.is_(None),
        exists().where(
            DocumentLink.document_id == Document.id,
            names_visible(DocumentLink.entity, DocumentLink.record_id, viewer),
        ),
    ]


def _activities(viewer: Viewer) -> list[ColumnElement[bool]]:
    return [
        Activity.deleted_at.is_(None),
        or_(
            readable(Activity.assigned_to_id, viewer),
            exists().where(
                ActivityLink.activity_id == Activity.id,
                names_visible(ActivityLink.entity, ActivityLink.record_id, viewer),
            ),
        ),
    ]


def _comments(viewer: Viewer) -> list[ColumnElement[bool]]:
    return [Comment.deleted_at.is_(None), names_visible(Comment.entity, Comment.record_id, viewer)]


@dataclass(frozen=True)
class Kind:
    """How one entity type is found, shown and listed."""

    model: Any
    visible: Visible
    search: tuple[Any, ...]
    order: dict[str, Any] = field(default_factory=dict)
    owner: Any = None
    # The number of all the records the viewer may see, when cheaper than counting them.
    total: Callable[[Viewer], Any] | None = None


KINDS: dict[str, Kind] = {
    "Opportunity": Kind(
        Opportunity, partial(owned, Opportunity), (Opportunity.name, Opportunity.number),
        {
            "NAME": Opportunity.name,
            "AMOUNT": Opportunity.amount,
            "EXPECTED_CLOSE_DATE": Opportunity.expected_close_date,
            "PROBABILITY": Opportunity.probability,
            # Same order as amount × probability / 100, without a division in SQL. Typed as
            # an unbounded NUMERIC: as Percent (5, 2), a cursor value ≥ 1000 overflows.
            "WEIGHTED_AMOUNT": type_coerce(Opportunity.amount * Opportunity.probability,
                                           Numeric()),
        },
        Opportunity.assigned_to_id, deal_visible_total,
    ),
    "Account": Kind(
        Account, partial(owned, Account), (Account.name, Account.number, Account.city),
        {"NAME": Account.name}, Account.assigned_to_id,
    ),
    "Contact": Kind(
        Contact, partial(owned, Contact),
        (Contact.first_name, Contact.last_name, Contact.email, Contact.number),
        {"NAME": Contact.last_name}, Contact.assigned_to_id,
    ),
    "Lead": Kind(
        Lead, partial(owned, Lead),
        (Lead.first_name, Lead.last_name, Lead.company, Lead.email, Lead.number),
        {"NAME": Lead.last_name}, Lead.assigned_to_id,
    ),
    "Campaign": Kind(
        Campaign, lambda viewer: [Campaign.deleted_at.is_(None)],
        (Campaign.name, Campaign.number), {"NAME": Campaign.name}, Campaign.assigned_to_id,
    ),
    "Product": Kind(
        Product, lambda viewer: [Product.deleted_at.is_(None)],
        (Product.name, Product.code, Product.number), {"NAME": Product.name},
    ),
    "Quote": Kind(Quote, _quotes, (Quote.subject, Quote.number), {"NAME": Quote.subject}),
    "Budget": Kind(
        Budget, lambda viewer: [true() if viewer.team_ids is None
                                else Budget.user_id.in_(sorted(viewer.team_ids))], (),
    ),
    "User": Kind(
        User, lambda viewer: [true()], (User.username, User.full_name, User.email),
        {"NAME": User.username},
    ),
    # The audit of configuration changes: admins only (the list refuses anyone else first).
    "ConfigurationChange": Kind(
        ConfigurationChange, lambda viewer: [true() if viewer.is_admin else false()], (),
        {"CHANGED_AT": ConfigurationChange.changed_at},
    ),
    # The deal room: visible through the records they are linked to.
    "Document": Kind(
        Document, _documents, (Document.title, Document.filename), {"NAME": Document.title},
    ),
    "Activity": Kind(
        Activity, _activities, (Activity.subject,), {"NAME": Activity.subject},
        Activity.assigned_to_id,
    ),
    "Comment": Kind(Comment, _comments, (Comment.text,)),
    # CSV import jobs: their creator's, and every one for an admin.
    "ImportJob": Kind(
        ImportJob, lambda viewer: [true() if viewer.is_admin
                                   else ImportJob.created_by_id == viewer.user.id], (),
    ),
}
for _kind in KINDS.values():
    if hasattr(_kind.model, "created_at"):
        _kind.order.setdefault("CREATED_AT", _kind.model.created_at)
        _kind.order.setdefault(
            "UPDATED_AT", getattr(_kind.model, "updated_at", _kind.model.created_at)
        )

