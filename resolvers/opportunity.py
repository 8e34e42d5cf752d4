"""Opportunities: the list (filters, ordering, paging, visibility) and computed fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    not_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    FieldChange,
    ImportItem,
    Lead,
    Opportunity,
    OpportunityContact,
    Quote,
    QuoteLine,
    SalesStage,
    StageChange,
    User,
)
from models.base import utcnow
from models.seed import BASE_CURRENCY
from resolvers import customization, events, history, layout, links
from resolvers.audit import record_change
from resolvers.dates import local_date, today
from resolvers.errors import ErrorCode
from resolvers.ids import pk_of, to_global_id
from resolvers.kinds import owned
from resolvers.numbering import next_number
from resolvers.pagination import PageArgs, PageQuery, SortKey, page_query
from resolvers.permissions import Viewer, readable
from resolvers.picklist import CLOSED_PROBABILITY
from resolvers.text import contains
from resolvers.validation import Checker, refuse_unknown_keys


@dataclass(frozen=True)
class OpportunityFilter:
    """The contract's OpportunityFilter; every given field must hold (AND)."""

    stage: tuple[str, ...] | None = None
    assigned_to: tuple[str, ...] | None = None
    account: str | None = None
    campaign: str | None = None
    expected_close_date_from: dt.date | None = None
    expected_close_date_to: dt.date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    type: str | None = None
    lead_source: str | None = None
    forecast_category: tuple[str, ...] | None = None
    is_closed: bool | None = None
    is_won: bool | None = None
    search: str | None = None
    custom_fields: tuple[customization.CustomFilter, ...] | None = None
    actual_close_date_from: dt.date | None = None
    actual_close_date_to: dt.date | None = None
    updated_since: dt.datetime | None = None
    is_overdue: bool | None = None
    lost_reason: str | None = None

    @property
    def follows_today(self) -> bool:
        """Whether its conditions depend on today's date (a cached statement would not)."""
        return self.is_overdue is not None


def _ids(global_ids: tuple[str, ...], type_name: str) -> list[int]:
    return [pk for g in global_ids if (pk := pk_of(g, type_name)) is not None]


def _stages_where(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return Opportunity.sales_stage.in_(select(SalesStage.key).where(condition))


def filter_conditions(f: OpportunityFilter | None) -> list[ColumnElement[bool]]:
    """SQL conditions for a filter (visibility and the recycle bin are added separately)."""
    if f is None:
        return []
    c: list[ColumnElement[bool]] = []
    if f.stage is not None:
        c.append(Opportunity.sales_stage.in_(f.stage))
    if f.assigned_to is not None:
        c.append(Opportunity.assigned_to_id.in_(_ids(f.assigned_to, "User")))
    if f.account is not None:
        c.append(Opportunity.account_id == (pk_of(f.account, "Account") or -1))
    if f.campaign is not None:
        c.append(Opportunity.campaign_id == (pk_of(f.campaign, "Campaign") or -1))
    if f.expected_close_date_from is not None:
        c.append(Opportunity.expected_close_date >= f.expected_close_date_from)
    if f.expected_close_date_to is not None:
        c.append(Opportunity.expected_close_date <= f.expected_close_date_to)
    if f.amount_min is not None:
        c.append(Opportunity.amount >= f.amount_min)
    if f.amount_max is not None:
        c.append(Opportunity.amount <= f.amount_max)
    if f.type is not None:
        c.append(Opportunity.type == f.type)
    if f.lead_source is not None:
        c.append(Opportunity.lead_source == f.lead_source)
    if f.forecast_category is not None:
        c.append(_stages_where(SalesStage.forecast_category.in_(f.forecast_category)))
    if f.is_closed is not None:
        c.append(_stages_where(SalesStage.is_closed.is_(f.is_closed)))
    if f.is_won is not None:
        c.append(_stages_where(SalesStage.is_won.is_(f.is_won)))
    if f.search:
        c.append(contains(f.search, Opportunity.name, Opportunity.number))
    if f.actual_close_date_from is not None:
        c.append(Opportunity.actual_close_date >= f.actual_close_date_from)
    if f.actual_close_date_to is not None:
        c.append(Opportunity.actual_close_date <= f.actual_close_date_to)
    if f.updated_since is not None:
        c.append(Opportunity.updated_at >= f.updated_since)
    if f.is_overdue is not None:
        overdue = and_(
            _stages_where(SalesStage.is_closed.is_(False)),
            Opportunity.expected_close_date < today(),
        )
        c.append(overdue if f.is_overdue else not_(overdue))
    if f.lost_reason:
        c.append(contains(f.lost_reason, Opportunity.lost_reason))
    return c


async def check_keys(session: AsyncSession, f: OpportunityFilter) -> None:
    """Refuse picklist keys in a filter that no picklist has (RequestError)."""
    given = [
        (field, name, keys) for field, name, keys in (
            ("stage", "salesStage", f.stage or ()),
            ("type", "opportunityType", (f.type,) if f.type else ()),
            ("leadSource", "leadSource", (f.lead_source,) if f.lead_source else ()),
        ) if keys
    ]
    await refuse_unknown_keys(session, given)


async def conditions_for(
    session: AsyncSession, f: OpportunityFilter | None
) -> list[ColumnElement[bool]]:
    """filter_conditions plus the custom-field filters, which need their definitions. Every
    filtered deal list comes through here, so unknown picklist keys are refused here."""
    if f is not None:
        await check_keys(session, f)
    conditions = filter_conditions(f)
    if f is not None and f.custom_fields:
        conditions += await customization.filter_conditions(
            session, "OPPORTUNITY", f.custom_fields
        )
    return conditions


async def custom_sorts(
    session: AsyncSession, order: tuple[tuple[str, bool], ...] | None
) -> dict[str, Any]:
    """Sort expressions for the custom-field keys among the (field, descending) pairs."""
    return {
        name: await customization.sort_expression(session, "OPPORTUNITY", name)
        for name, _ in order or ()
        if name.startswith("cf_")
    }


class DealList(NamedTuple):
    """What a deal list's page statement needs, whichever field lists the deals."""

    conditions: list[ColumnElement[bool]]
    order: tuple[tuple[str, bool], ...] | None
    custom_sorts: dict[str, Any]
    filter: OpportunityFilter | None


async def deal_list(
    session: AsyncSession, f: OpportunityFilter | None, order: tuple[tuple[str, bool], ...] | None
) -> DealList:
    """The conditions (unknown picklist keys refused, custom-field filters included), the
    order, its custom-field sort expressions and the filter (the batching spec and the
    planner's cache rule read it) of a deal list: every list of deals (root, account,
    campaign, contact, planner) comes through here."""
    return DealList(await conditions_for(session, f), order, await custom_sorts(session, order), f)


def in_bin_conditions(viewer: Viewer) -> list[ColumnElement[bool]]:
    """The recycle bin: deleted deals the viewer could see before deletion (the same sharing
    rule as for live ones)."""
    return [Opportunity.deleted_at.is_not(None), readable(Opportunity.assigned_to_id, viewer)]


def recycle_bin(
    viewer: Viewer, args: PageArgs, default_size: int, max_size: int
) -> PageQuery:
    """A page of the recycle bin, newest deletion first (then id, descending)."""
    return page_query(
        Opportunity, in_bin_conditions(viewer), [SortKey(Opportunity.deleted_at, True)],
        "RecycleBin:deletedAt-", args, default_size, max_size,
    )


# Computed on demand ---------------------------------------------------------------


def days_to_close(opp: Opportunity, stage: SalesStage) -> int | None:
    """Days until the expected close date (negative when overdue); None once closed."""
    return None if stage.is_closed else (opp.expected_close_date - today()).days


def is_overdue(opp: Opportunity, stage: SalesStage) -> bool:
    return not stage.is_closed and opp.expected_close_date < today()


def age_days(opp: Opportunity) -> int:
    return (today() - local_date(opp.created_at)).days


def days_in_stage(opp: Opportunity) -> int:
    return (today() - local_date(opp.stage_changed_at)).days


# Writing ------------------------------------------------------------------------------

TEXT_LIMITS = {"name": 255, "nextStep": 255, "description": 10_000, "lostReason": 2_000}


async def load_for_edit(
    session: AsyncSession,
    viewer: Viewer,
    global_id: str,
    expected_version: int | None = None,
    field: str = "id",
    deleted: bool = False,
) -> Opportunity:
    """The deal to change, locked; NOT_FOUND when the viewer may not see it,
    PERMISSION_DENIED when they may see but not edit it, VERSION_CONFLICT when stale."""
    checker = Checker(session, viewer)
    pk = pk_of(global_id, "Opportunity")
    opp = None
    if pk is not None:
        state = in_bin_conditions(viewer) if deleted else owned(Opportunity, viewer)
        stmt = (
            select(Opportunity)
            .where(Opportunity.id == pk, *state)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        opp = (await session.scalars(stmt)).first()
    if opp is None:
        where = " in the recycle bin" if deleted else ""
        checker.fail(field, f"No opportunity{where} with id {global_id!r}.", ErrorCode.NOT_FOUND)
    elif not viewer.can_edit_owner(opp.assigned_to_id):
        checker.fail(field, "You may read this opportunity but not change it.",
                     ErrorCode.PERMISSION_DENIED)
    elif expected_version is not None and expected_version != opp.version:
        checker.fail(
            "expectedVersion",
            f"The opportunity has changed since you read it (it is at version {opp.version}, "
            f"you sent {expected_version}); reload it and try again.",
            ErrorCode.VERSION_CONFLICT,
        )
    checker.done()
    assert opp is not None
    history.remember(session, opp)
    return opp


def forced_probability(stage: SalesStage) -> Decimal | None:
    """The probability a closed stage forces (won 100, lost 0); None for an open stage."""
    if not stage.is_closed:
        return None
    return CLOSED_PROBABILITY["WON" if stage.is_won else "LOST"]


def check_close(
    c: Checker,
    stage: SalesStage,
    *,
    probability: Decimal | None = None,
    manual: bool | None = None,
    actual_close_date: dt.date | None = None,
    actual_given: bool = False,
) -> None:
    """The refusals of the close rules, for the stage the deal will be in: a closed deal's
    probability is forced (a different one is refused, as is a manual flag), and only a
    closed deal has an actual close date, never one in the future."""
    forced = forced_probability(stage)
    if forced is not None:
        if probability is not None and probability != forced:
            c.fail(
                "probability",
                f"A deal in {stage.name} has a probability of {forced:.0f}%; leave the "
                f"probability out or send {forced:.0f}.",
                ErrorCode.INVALID,
            )
        if manual:
            c.fail(
                "probabilityIsManual",
                f"A deal in {stage.name} has the stage's probability; it cannot be manual.",
                ErrorCode.INVALID,
            )
        if actual_given and actual_close_date is None:
            c.fail(
                "actualCloseDate", "A closed deal keeps its actual close date; send the date "
                "it closed.", ErrorCode.REQUIRED,
            )
        elif actual_close_date is not None and actual_close_date > today():
            c.fail(
                "actualCloseDate",
                f"The actual close date {actual_close_date.isoformat()} is in the future; a "
                "deal closes today at the latest.",
                ErrorCode.INVALID,
            )
    elif actual_close_date is not None:
        c.fail(
            "actualCloseDate",
            f"Only a closed deal has an actual close date; {stage.name} is an open stage.",
            ErrorCode.INVALID,
        )


def apply_stage(
    session: AsyncSession,
    opp: Opportunity,
    stage: SalesStage,
    actor: User,
    *,
    probability: Decimal | None = None,
    note: str | None = None,
    lost_reason: str | None = None,
    actual_close_date: dt.date | None = None,
    initial: bool = False,
) -> bool:
    """The one stage rule, for every path that sets a stage (create, update, stage change,
    import; check_close has refused what contradicts it). Returns whether the stage changed
    (and a StageChange was recorded).

    A closed stage forces its probability and clears the manual flag; an open stage keeps a
    manual probability, takes a given one (which makes it manual) or, when the stage changes,
    the stage's default. The actual close date is today's on entering a closed stage unless
    given, and cleared on reopening."""
    changed = initial or opp.sales_stage != stage.key
    forced = forced_probability(stage)
    if forced is not None:
        opp.probability = forced
        opp.probability_is_manual = False
    elif probability is not None:
        opp.probability = probability
        opp.probability_is_manual = True
    elif changed and not opp.probability_is_manual:
        opp.probability = stage.probability
    if lost_reason is not None:
        opp.lost_reason = lost_reason
    if actual_close_date is not None:
        opp.actual_close_date = actual_close_date
    if not changed:
        return False
    now = utcnow()
    from_stage = None if initial else opp.sales_stage
    if not stage.is_closed:
        opp.actual_close_date = None
    elif actual_close_date is None:
        opp.actual_close_date = today()
    if stage.is_won or not stage.is_closed:
        opp.lost_reason = None  # only a lost deal has a reason for it
    opp.sales_stage = stage.key
    opp.stage_changed_at = now
    if not initial:
        events.record(session, "STAGE_CHANGED", opp)
    session.add(
        StageChange(
            opportunity=opp, from_stage=from_stage, to_stage=stage.key, amount=opp.amount,
            probability=opp.probability, expected_close_date=opp.expected_close_date,
            actual_close_date=opp.actual_close_date, changed_by_id=actor.id, changed_at=now,
            note=note,
        )
    )
    return True


def touch(
    session: AsyncSession,
    opp: Opportunity,
    related_changed: bool = False,
    actor: User | None = None,
    source: str | None = None,
) -> None:
    """Count a change: version + 1 and a new updatedAt, if anything really changed; and the
    field history of the tracked fields (with the `actor`)."""
    fields_changed = actor is not None and history.record(session, opp, actor.id, source)
    if related_changed or fields_changed or session.is_modified(opp):
        opp.version += 1
        opp.updated_at = utcnow()
        events.record(session, "UPDATED", opp)


def require_lost_reason(
    checker: Checker, stage: SalesStage | None, opp: Opportunity | None, lost_reason: str | None
) -> None:
    entering_lost = (
        stage is not None and stage.is_closed and not stage.is_won
        and (opp is None or opp.sales_stage != stage.key)
    )
    if entering_lost and not lost_reason:
        checker.fail(
            "lostReason", "Say why the deal was lost (lostReason) to close it as lost.",
            ErrorCode.REQUIRED,
        )


async def set_primary_contact(
    session: AsyncSession, opp: Opportunity, contact_id: int | None, role: str | None = None,
    keep_role: bool = True,
) -> bool:
    """Make `contact_id` the primary contact (None: no primary); returns whether it changed."""
    links: Sequence[OpportunityContact] = []
    if opp.id is not None:  # a deal not yet flushed has no links
        links = (
            await session.scalars(
                select(OpportunityContact).where(OpportunityContact.opportunity_id == opp.id)
            )
        ).all()
    changed = False
    for link in links:
        if link.is_primary and link.contact_id != contact_id:
            link.is_primary = False
            changed = True
    if changed:
        await session.flush()  # the partial unique index allows one primary at a time
    if contact_id is None:
        return changed
    existing = next((ln for ln in links if ln.contact_id == contact_id), None)
    if existing is None:
        session.add(
            OpportunityContact(opportunity=opp, contact_id=contact_id, role=role, is_primary=True)
        )
        return True
    if not keep_role and existing.role != role:
        existing.role = role
        changed = True
    if not existing.is_primary:
        existing.is_primary = True
        changed = True
    return changed


async def create_opportunity(
    session: AsyncSession, viewer: Viewer, data: dict[str, Any], root: tuple[str, ...] = ("input",)
) -> Opportunity:
    """Validate everything, then create the deal with its first StageChange."""
    c = Checker(session, viewer, root)
    name = c.text("name", data.get("name"), required=True, max_length=TEXT_LIMITS["name"])
    close = c.required("expectedCloseDate", data.get("expected_close_date"))
    stage = await c.stage("salesStage", data.get("sales_stage"))
    amount = c.number("amount", data.get("amount"))
    currency = await c.currency("currency", data.get("currency"))
    account = await c.reference("accountId", "Account", data.get("account_id"))
    contact = await c.reference("contactId", "Contact", data.get("contact_id"))
    campaign = await c.reference("campaignId", "Campaign", data.get("campaign_id"))
    assignee = (
        await c.assignee("assignedToId", data["assigned_to_id"])
        if data.get("assigned_to_id") is not None else viewer.user
    )
    kind = await c.picklist("type", "opportunityType", data.get("type"))
    source = await c.picklist("leadSource", "leadSource", data.get("lead_source"))
    next_step = c.text("nextStep", data.get("next_step"), max_length=TEXT_LIMITS["nextStep"])
    description = c.text(
        "description", data.get("description"), max_length=TEXT_LIMITS["description"]
    )
    probability = c.percent("probability", data.get("probability"))
    lost_reason = c.text(
        "lostReason", data.get("lost_reason"), max_length=TEXT_LIMITS["lostReason"]
    )
    require_lost_reason(c, stage, None, lost_reason)
    actual = data.get("actual_close_date")
    if stage is not None:
        check_close(c, stage, probability=probability, actual_close_date=actual)
    custom = await layout.customized(c, "OPPORTUNITY", {}, data, creating=True)
    c.done()
    assert name and close and stage and assignee
    opp = Opportunity(
        number=await next_number(session, "Opportunity"),
        name=name, amount=amount or Decimal("0.00"), currency=currency or BASE_CURRENCY,
        account_id=account.id if account else None,
        campaign_id=campaign.id if campaign else None,
        expected_close_date=close, type=kind, lead_source=source, next_step=next_step,
        description=description, sales_stage=stage.key, probability=stage.probability,
        probability_is_manual=False, amount_source="MANUAL", version=1,
        assigned_to_id=assignee.id, created_by_id=viewer.user.id, custom_fields=custom,
    )
    session.add(opp)
    events.record(session, "CREATED", opp)
    apply_stage(
        session, opp, stage, viewer.user, probability=probability, lost_reason=lost_reason,
        actual_close_date=actual, initial=True,
    )
    if contact is not None:
        await set_primary_contact(session, opp, contact.id)
    return opp  # written at the next flush (an import flushes a batch at once)


async def update_opportunity(
    session: AsyncSession,
    viewer: Viewer,
    global_id: str,
    data: dict[str, Any],
    expected_version: int | None = None,
    root: tuple[str, ...] = ("input",),
) -> Opportunity:
    """Change only the given fields; a stage change goes through apply_stage."""
    opp = await load_for_edit(session, viewer, global_id, expected_version)
    c = Checker(session, viewer, root)
    values: dict[str, Any] = {}
    if "name" in data:
        values["name"] = c.text("name", data["name"], required=True, max_length=255)
    if "expected_close_date" in data:
        values["expected_close_date"] = c.required("expectedCloseDate", data["expected_close_date"])
    stage = await c.stage("salesStage", data["sales_stage"]) if "sales_stage" in data else None
    if "amount" in data:
        if opp.amount_source == "QUOTE":
            c.fail(
                "amount",
                "The amount comes from the synced quote; change its lines or unsync it first.",
                ErrorCode.AMOUNT_FROM_QUOTE,
            )
        values["amount"] = c.required("amount", c.number("amount", data["amount"]))
    if "currency" in data:
        if isinstance(data["currency"], str) and data["currency"].strip():
            values["currency"] = await c.currency("currency", data["currency"])
        else:
            c.required("currency", None)
    for field, type_name, column in (
        ("accountId", "Account", "account_id"), ("campaignId", "Campaign", "campaign_id"),
    ):
        if column in data:
            record = await c.reference(field, type_name, data[column])
            values[column] = record.id if record else None
    if "assigned_to_id" in data:
        given = c.required("assignedToId", data["assigned_to_id"])
        assignee = await c.assignee("assignedToId", given)
        values["assigned_to_id"] = assignee.id if assignee else None
    if "type" in data:
        values["type"] = await c.picklist("type", "opportunityType", data["type"])
    if "lead_source" in data:
        values["lead_source"] = await c.picklist("leadSource", "leadSource", data["lead_source"])
    for field, column in (("nextStep", "next_step"), ("description", "description")):
        if column in data:
            values[column] = c.text(field, data[column], max_length=TEXT_LIMITS[field])
    lost_reason = c.text(
        "lostReason", data.get("lost_reason"), max_length=TEXT_LIMITS["lostReason"]
    )
    require_lost_reason(c, stage, opp, lost_reason or opp.lost_reason)
    probability = c.percent("probability", data.get("probability"))
    manual = data.get("probability_is_manual")
    if manual is False and probability is not None:
        c.fail(
            "probabilityIsManual",
            "Give either a probability or probabilityIsManual: false, not both.",
            ErrorCode.INVALID,
        )
    # Look the stage up before changing anything: a query autoflushes, and a flushed change
    # no longer counts as modified for touch().
    current = stage or await session.get(SalesStage, opp.sales_stage)
    assert current is not None
    actual = data.get("actual_close_date")
    if stage is not None or "sales_stage" not in data:  # not against a refused stage
        check_close(
            c, current, probability=probability, manual=manual, actual_close_date=actual,
            actual_given="actual_close_date" in data,
        )
    contact = None
    if "contact_id" in data:
        contact = await c.reference("contactId", "Contact", data["contact_id"])
    if data:  # the layout's rules (mandatory and hidden fields) hold for every field given
        values["custom_fields"] = await layout.customized(
            c, "OPPORTUNITY", opp.custom_fields, data, creating=False
        )
    c.done()
    for column, value in values.items():
        setattr(opp, column, value)
    if manual is not None:
        opp.probability_is_manual = manual
    if manual is False:
        opp.probability = current.probability
    stage_changed = apply_stage(
        session, opp, current, viewer.user, probability=probability, lost_reason=lost_reason,
        actual_close_date=actual,
    )
    related = stage_changed or session.is_modified(opp)  # before set_primary_contact flushes
    if "contact_id" in data:
        related |= await set_primary_contact(session, opp, contact.id if contact else None)
    touch(session, opp, related, viewer.user)
    await session.flush()
    return opp


async def change_stage(
    session: AsyncSession,
    viewer: Viewer,
    global_id: str,
    stage_key: str,
    probability: Decimal | None = None,
    note: str | None = None,
    lost_reason: str | None = None,
    expected_version: int | None = None,
    actual_close_date: dt.date | None = None,
) -> Opportunity:
    opp = await load_for_edit(session, viewer, global_id, expected_version)
    c = Checker(session, viewer)
    stage = await c.stage("stage", stage_key)
    probability = c.percent("probability", probability)
    note = c.text("note", note, max_length=2_000)
    lost_reason = c.text("lostReason", lost_reason, max_length=TEXT_LIMITS["lostReason"])
    require_lost_reason(c, stage, opp, lost_reason or opp.lost_reason)
    if stage is not None:
        check_close(
            c, stage, probability=probability, actual_close_date=actual_close_date
        )
    c.done()
    assert stage is not None
    changed = apply_stage(
        session, opp, stage, viewer.user, probability=probability, note=note,
        lost_reason=lost_reason, actual_close_date=actual_close_date,
    )
    touch(session, opp, changed, viewer.user)
    await session.flush()
    return opp


async def delete_opportunity(
    session: AsyncSession, viewer: Viewer, global_id: str, expected_version: int | None = None
) -> Opportunity:
    """Move the deal to the recycle bin; its quotes, contacts and history stay attached."""
    opp = await load_for_edit(session, viewer, global_id, expected_version)
    opp.deleted_at = utcnow()
    touch(session, opp, True, viewer.user)
    events.record(session, "DELETED", opp)
    await session.flush()
    return opp


async def restore_opportunity(session: AsyncSession, viewer: Viewer, global_id: str) -> Opportunity:
    opp = await load_for_edit(session, viewer, global_id, deleted=True)
    opp.deleted_at = None
    touch(session, opp, True, viewer.user)
    events.record(session, "RESTORED", opp)
    await session.flush()
    return opp


async def link_account(
    session: AsyncSession, viewer: Viewer, opportunity_id: str, account_id: str
) -> Opportunity:
    """Add the deal to an account later (vtiger's relations menu)."""
    opp = await load_for_edit(session, viewer, opportunity_id, field="opportunityId")
    c = Checker(session, viewer)
    account = await c.reference("accountId", "Account", c.required("accountId", account_id))
    c.done()
    opp.account_id = account.id
    touch(session, opp, False, viewer.user)
    await session.flush()
    return opp


async def add_contact(
    session: AsyncSession,
    viewer: Viewer,
    opportunity_id: str,
    contact_id: str,
    data: dict[str, Any],
) -> Opportunity:
    """Link a contact (or change its link): `data` may hold `role` and `is_primary`; what
    it leaves out stays as it is. At most one primary contact."""
    opp = await load_for_edit(session, viewer, opportunity_id, field="opportunityId")
    c = Checker(session, viewer)
    contact = await c.reference("contactId", "Contact", contact_id)
    role = await c.picklist("role", "contactRole", data.get("role"))
    c.done()
    link = await session.get(OpportunityContact, (opp.id, contact.id))
    keep_role = "role" not in data and link is not None
    changed = False
    if data.get("is_primary"):
        changed = await set_primary_contact(session, opp, contact.id, role, keep_role=keep_role)
    elif link is None:
        session.add(OpportunityContact(opportunity_id=opp.id, contact_id=contact.id, role=role))
        changed = True
    else:
        if not keep_role and link.role != role:
            link.role, changed = role, True
        if data.get("is_primary") is False and link.is_primary:
            link.is_primary, changed = False, True
    touch(session, opp, changed, viewer.user)
    await session.flush()
    return opp


async def remove_contact(
    session: AsyncSession, viewer: Viewer, opportunity_id: str, contact_id: str
) -> Opportunity:
    opp = await load_for_edit(session, viewer, opportunity_id, field="opportunityId")
    c = Checker(session, viewer)
    pk = pk_of(contact_id, "Contact")
    link = None if pk is None else await session.get(OpportunityContact, (opp.id, pk))
    if link is None:
        c.fail("contactId", "That contact is not linked to this opportunity.", ErrorCode.NOT_FOUND)
    c.done()
    assert link is not None
    await session.delete(link)
    if link.is_primary:
        await session.flush()  # the partial unique index allows one primary at a time
        oldest = await session.scalar(
            select(OpportunityContact)
            .where(OpportunityContact.opportunity_id == opp.id)
            .order_by(OpportunityContact.created_at, OpportunityContact.contact_id)
            .limit(1)
        )
        if oldest is not None:  # the contact linked first becomes the primary one
            oldest.is_primary = True
    touch(session, opp, True, viewer.user)
    await session.flush()
    return opp


# Rows that refer to a deal and go when it is purged (tests/test_recycle_bin.py checks that
# every foreign key to opportunities is handled here or in purge_opportunity).
OWNED_BY_DEAL = (
    OpportunityContact.opportunity_id, StageChange.opportunity_id, FieldChange.opportunity_id,
    Quote.opportunity_id,
)


async def purge_opportunity(session: AsyncSession, viewer: Viewer, global_id: str) -> int:
    """Remove a deal in the recycle bin for good (admins only), with what belongs to it alone:
    its quotes and their lines, contact links, stage and field history, comments, document and
    activity links (documents and activities linked to nothing else go too) and the import
    records naming it. A lead converted into it keeps its conversion, without the deal. The
    number is never given again (numbering keeps its own sequence). Returns the deal's id."""
    viewer.require_admin()
    c = Checker(session, viewer)
    pk = pk_of(global_id, "Opportunity")
    opp = None
    if pk is not None:
        stmt = select(Opportunity).where(Opportunity.id == pk).with_for_update()
        opp = (await session.scalars(stmt.execution_options(populate_existing=True))).first()
    if opp is None:
        c.fail("id", f"No opportunity with id {global_id!r}.", ErrorCode.NOT_FOUND)
    elif opp.deleted_at is None:
        c.fail("id", "Only a deal in the recycle bin can be purged; delete it first.",
               ErrorCode.INVALID)
    c.done()
    assert opp is not None and opp.deleted_at is not None
    before = {
        "id": global_id, "number": opp.number, "name": opp.name, "amount": str(opp.amount),
        "currency": opp.currency, "salesStage": opp.sales_stage,
        "assignedToId": to_global_id("User", opp.assigned_to_id),
        "deletedAt": opp.deleted_at.isoformat(),
    }
    quotes = select(Quote.id).where(Quote.opportunity_id == opp.id)
    await session.execute(delete(QuoteLine).where(QuoteLine.quote_id.in_(quotes)))
    for column in OWNED_BY_DEAL:
        await session.execute(delete(column.table).where(column == opp.id))
    await session.execute(
        update(Lead).where(Lead.converted_opportunity_id == opp.id)
        .values(converted_opportunity_id=None)
    )
    # an undo of the import that created it must not reach whatever later gets its id
    await session.execute(
        delete(ImportItem).where(ImportItem.kind == "OPPORTUNITY", ImportItem.record_id == opp.id)
    )
    await links.purge_record(session, ("OPPORTUNITY", opp.id))
    await session.delete(opp)
    record_change(session, viewer, "RECYCLE_BIN", "OPPORTUNITY", opp.number, "PURGE", before, None)
    await session.flush()
    return opp.id
