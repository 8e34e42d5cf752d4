"""Create and update for accounts, contacts, leads, campaigns and products: one field table
per entity, one validation path."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Account, Campaign, Contact, Lead, Product
from models.base import utcnow
from resolvers import layout
from resolvers.errors import ErrorCode
from resolvers.ids import pk_of
from resolvers.kinds import KINDS
from resolvers.numbering import next_number
from resolvers.permissions import Viewer
from resolvers.validation import EMAIL, Checker, refuse_unknown_keys


@dataclass(frozen=True)
class Field:
    """An input field: snake_case name (GraphQL camelCases it), what it holds, its rules."""

    name: str
    kind: str = "text"  # text | email | url | money | percent | int | date | bool | picklist | ref
    required: bool = False
    max_length: int = 255
    target: str = ""  # the picklist name, or the referenced type for `ref`
    nullable: bool = True  # False: an update may not clear it (a create takes the default)

    @property
    def graphql(self) -> str:
        head, *rest = self.name.split("_")
        return head + "".join(w.title() for w in rest)


DESCRIPTION = Field("description", max_length=10_000)
PHONE = Field("phone", max_length=64)

FIELDS: dict[str, tuple[Field, ...]] = {
    "Account": (
        Field("name", required=True), Field("industry", "picklist", target="industry"),
        Field("website", "url"), PHONE, Field("email", "email", max_length=254),
        Field("city", max_length=128), Field("country", max_length=128),
        Field("annual_revenue", "money"), Field("employees", "int"), DESCRIPTION,
    ),
    "Contact": (
        Field("last_name", required=True, max_length=128), Field("first_name", max_length=128),
        Field("email", "email", max_length=254), PHONE, Field("title", max_length=128),
        Field("lead_source", "picklist", target="leadSource"),
        Field("account_id", "ref", target="Account"), DESCRIPTION,
    ),
    "Lead": (
        Field("last_name", required=True, max_length=128), Field("company", required=True),
        Field("first_name", max_length=128), Field("email", "email", max_length=254), PHONE,
        Field("title", max_length=128), Field("industry", "picklist", target="industry"),
        Field("lead_source", "picklist", target="leadSource"),
        Field("status", "picklist", target="leadStatus"),
        Field("campaign_id", "ref", target="Campaign"), DESCRIPTION,
    ),
    "Campaign": (
        Field("name", required=True), Field("type", "picklist", target="campaignType"),
        Field("status", "picklist", target="campaignStatus"),
        Field("expected_close_date", "date"), Field("budget_cost", "money"),
        Field("actual_cost", "money"), Field("expected_revenue", "money"), DESCRIPTION,
    ),
    "Product": (
        Field("name", required=True), Field("code", max_length=64),
        Field("unit_price", "money", required=True),
        Field("tax_percent", "percent", nullable=False), Field("is_active", "bool", nullable=False),
    ),
}
MODELS: dict[str, Any] = {
    "Account": Account, "Contact": Contact, "Lead": Lead, "Campaign": Campaign, "Product": Product,
}
OWNED = ("Account", "Contact", "Lead", "Campaign")
CUSTOMIZABLE = {"Account": "ACCOUNT", "Contact": "CONTACT", "Lead": "LEAD"}


# The picklist behind each filterable picklist column, by type: the fields above, and quotes.
FILTER_PICKLISTS: dict[str, dict[str, Field]] = {
    **{t: {f.name: f for f in fields if f.kind == "picklist"} for t, fields in FIELDS.items()},
    "Quote": {"stage": Field("stage", "picklist", target="quoteStage")},
}


async def check_filter_keys(
    session: AsyncSession, type_name: str, equals: tuple[tuple[str, Any], ...]
) -> None:
    """Refuse unknown picklist keys among a list filter's exact matches (RequestError)."""
    picklists = FILTER_PICKLISTS.get(type_name, {})
    await refuse_unknown_keys(session, [
        (picklists[attr].graphql, picklists[attr].target, (value,))
        for attr, value in equals if attr in picklists and value
    ])


async def _check(c: Checker, field: Field, value: Any) -> Any:
    """The validated value to store (None clears); problems go to the checker."""
    name = field.graphql
    if field.kind in ("text", "email", "url"):
        text = c.text(name, value, required=field.required, max_length=field.max_length)
        if text and field.kind == "email" and not EMAIL.match(text):
            c.fail(name, f"{text!r} is not an email address.", ErrorCode.INVALID)
        if text and field.kind == "url" and (" " in text or "." not in text):
            c.fail(name, f"{text!r} is not a web address.", ErrorCode.INVALID)
        return text
    if field.required and value is None:
        return c.required(name, None)
    if field.kind == "money":
        return c.number(name, value)
    if field.kind == "percent":
        return c.percent(name, value)
    if field.kind == "int":
        if value is not None and value < 0:
            c.fail(name, f"Must be at least 0; got {value}.", ErrorCode.OUT_OF_RANGE)
        return value
    if field.kind == "picklist":
        return await c.picklist(name, field.target, value)
    if field.kind == "ref":
        record = await c.reference(field.graphql, field.target, value)
        return record.id if record else None
    return value  # date, bool: typed by GraphQL


async def _values(
    c: Checker, type_name: str, data: dict[str, Any], creating: bool
) -> dict[str, Any]:
    values = {}
    for field in FIELDS[type_name]:
        if not creating and not field.nullable and field.name in data:
            c.required(field.graphql, data[field.name])
        if field.name in data or (creating and field.required):
            values[field.name] = await _check(c, field, data.get(field.name))
    # On create a null owner means the default (the caller), as for opportunities.
    if type_name in OWNED and "assigned_to_id" in data and (
        not creating or data["assigned_to_id"] is not None
    ):
        given = c.required("assignedToId", data["assigned_to_id"])
        user = await c.assignee("assignedToId", given)
        values["assigned_to_id"] = user.id if user else None
    return values


async def create_record(
    session: AsyncSession, viewer: Viewer, type_name: str, data: dict[str, Any],
    root: tuple[str, ...] = ("input",),
) -> Any:
    """Validate every field, then add the record with its number; owned records default
    to the caller as assignee."""
    if type_name == "Product":
        viewer.require_admin()
    c = Checker(session, viewer, root)
    values = await _values(c, type_name, data, creating=True)
    if type_name in CUSTOMIZABLE:
        values["custom_fields"] = await layout.customized(
            c, CUSTOMIZABLE[type_name], {}, data, creating=True
        )
    c.done()
    model = MODELS[type_name]
    record = model(number=await next_number(session, type_name), **values)
    if type_name in OWNED:
        record.assigned_to_id = values.get("assigned_to_id") or viewer.user.id
        record.created_by_id = viewer.user.id
    if type_name == "Product" and record.tax_percent is None:
        record.tax_percent = Decimal("0.00")
    session.add(record)
    await session.flush()
    return record


async def load_record_for_edit(
    session: AsyncSession, viewer: Viewer, type_name: str, global_id: str, field: str = "id"
) -> Any:
    """A record the viewer may edit; NOT_FOUND when they may not see it."""
    model = MODELS[type_name]
    c = Checker(session, viewer)
    pk = pk_of(global_id, type_name)
    record = None
    if pk is not None:
        stmt = select(model).where(model.id == pk, *KINDS[type_name].visible(viewer))
        stmt = stmt.with_for_update()
        record = (await session.scalars(stmt)).first()
    if record is None:
        c.fail(field, f"No {type_name.lower()} with id {global_id!r}.", ErrorCode.NOT_FOUND)
    elif type_name in OWNED and not viewer.can_edit_owner(record.assigned_to_id):
        c.fail(field, f"You may read this {type_name.lower()} but not change it.",
               ErrorCode.PERMISSION_DENIED)
    c.done()
    return record


async def update_record(
    session: AsyncSession, viewer: Viewer, type_name: str, global_id: str, data: dict[str, Any],
    root: tuple[str, ...] = ("input",),
) -> Any:
    """Change only the given fields."""
    if type_name == "Product":
        viewer.require_admin()
    record = await load_record_for_edit(session, viewer, type_name, global_id)
    c = Checker(session, viewer, root)
    if type_name == "Lead" and record.is_converted:
        c.fail("id", "A converted lead cannot be changed.", ErrorCode.ALREADY_CONVERTED)
    values = await _values(c, type_name, data, creating=False)
    if type_name in CUSTOMIZABLE:
        values["custom_fields"] = await layout.customized(
            c, CUSTOMIZABLE[type_name], record.custom_fields, data, creating=False
        )
    c.done()
    for column, value in values.items():
        setattr(record, column, value)
    if session.is_modified(record):
        record.updated_at = utcnow()
    await session.flush()
    return record
