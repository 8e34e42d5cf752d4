"""Form layouts: blocks of standard and custom fields that admins arrange, relabel, make
mandatory or hide. The API enforces them: a mandatory field is required on create and
cannot be cleared on update."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Layout, PicklistValue, SalesStage
from models.base import utcnow
from resolvers import customization
from resolvers.audit import record_change
from resolvers.cache import cached, forget
from resolvers.errors import ErrorCode
from resolvers.permissions import Viewer
from resolvers.picklist import SALES_STAGE_PICKLIST
from resolvers.validation import Checker


@dataclass(frozen=True)
class FieldSpec:
    """A field of a form. `input` is the create/update input field (None: read-only)."""

    key: str
    label: str
    type: str
    input: str | None = None
    always_required: bool = False
    picklist: str | None = None
    custom: bool = False
    required: bool = False
    visible: bool = True
    options: tuple[str, ...] | None = None
    help_text: str | None = None
    # a field only some records may have (a closed deal's actual close date): never mandatory
    never_required: bool = False

    @property
    def read_only(self) -> bool:
        return self.input is None


def _f(key: str, label: str, type: str = "TEXT", *, input: str | None = "", req: bool = False,
       picklist: str | None = None) -> FieldSpec:
    """Standard field; the input defaults to the snake_case of the key."""
    if input == "":
        input = "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in key)
    return FieldSpec(key, label, type, input, req, picklist, required=req)


RO = None  # read-only: no input
STANDARD: dict[str, list[tuple[str, list[FieldSpec]]]] = {
    "OPPORTUNITY": [
        ("Opportunity information", [
            _f("number", "Opportunity No", input=RO),
            _f("name", "Opportunity Name", req=True),
            _f("account", "Organization Name", "REFERENCE", input="account_id"),
            _f("contact", "Contact Name", "REFERENCE", input="contact_id"),
            _f("amount", "Amount", "CURRENCY"),
            _f("currency", "Currency"),
            _f("expectedCloseDate", "Expected Close Date", "DATE", req=True),
            _f("salesStage", "Sales Stage", "PICKLIST", req=True, picklist="salesStage"),
            _f("probability", "Probability (%)", "PERCENT"),
            _f("type", "Type", "PICKLIST", picklist="opportunityType"),
            _f("leadSource", "Lead Source", "PICKLIST", picklist="leadSource"),
            _f("nextStep", "Next Step"),
            _f("campaign", "Campaign Source", "REFERENCE", input="campaign_id"),
            _f("assignedTo", "Assigned To", "REFERENCE", input="assigned_to_id"),
            _f("lostReason", "Lost Reason", "TEXTAREA"),
            _f("amountSource", "Amount Source", input=RO),
            replace(_f("actualCloseDate", "Actual Close Date", "DATE"), never_required=True),
        ]),
        ("Description", [_f("description", "Description", "TEXTAREA")]),
    ],
    "ACCOUNT": [
        ("Organization information", [
            _f("number", "Organization No", input=RO),
            _f("name", "Organization Name", req=True),
            _f("industry", "Industry", "PICKLIST", picklist="industry"),
            _f("website", "Website", "URL"),
            _f("phone", "Phone", "PHONE"),
            _f("email", "Email", "EMAIL"),
            _f("city", "City"),
            _f("country", "Country"),
            _f("annualRevenue", "Annual Revenue", "CURRENCY"),
            _f("employees", "Employees", "INTEGER"),
            _f("assignedTo", "Assigned To", "REFERENCE", input="assigned_to_id"),
        ]),
        ("Description", [_f("description", "Description", "TEXTAREA")]),
    ],
    "CONTACT": [
        ("Contact information", [
            _f("number", "Contact No", input=RO),
            _f("firstName", "First Name"),
            _f("lastName", "Last Name", req=True),
            _f("account", "Organization Name", "REFERENCE", input="account_id"),
            _f("title", "Title"),
            _f("email", "Email", "EMAIL"),
            _f("phone", "Phone", "PHONE"),
            _f("leadSource", "Lead Source", "PICKLIST", picklist="leadSource"),
            _f("assignedTo", "Assigned To", "REFERENCE", input="assigned_to_id"),
        ]),
        ("Description", [_f("description", "Description", "TEXTAREA")]),
    ],
    "LEAD": [
        ("Lead information", [
            _f("number", "Lead No", input=RO),
            _f("firstName", "First Name"),
            _f("lastName", "Last Name", req=True),
            _f("company", "Company", req=True),
            _f("title", "Title"),
            _f("email", "Email", "EMAIL"),
            _f("phone", "Phone", "PHONE"),
            _f("industry", "Industry", "PICKLIST", picklist="industry"),
            _f("leadSource", "Lead Source", "PICKLIST", picklist="leadSource"),
            _f("status", "Lead Status", "PICKLIST", picklist="leadStatus"),
            _f("campaign", "Campaign", "REFERENCE", input="campaign_id"),
            _f("assignedTo", "Assigned To", "REFERENCE", input="assigned_to_id"),
        ]),
        ("Description", [_f("description", "Description", "TEXTAREA")]),
    ],
}
CUSTOM_BLOCK = "Custom fields"
OTHER_BLOCK = "Other fields"


@dataclass(frozen=True)
class Block:
    label: str
    fields: list[FieldSpec]


async def _fields(session: AsyncSession, entity: str) -> dict[str, FieldSpec]:
    """Every field of the entity by key: standard ones, then active custom ones."""
    fields = {f.key: f for _, block in STANDARD[entity] for f in block}
    for d in await customization.definitions(session, entity):
        fields[d.key] = FieldSpec(
            d.key, d.label, d.type, "custom_fields", custom=True, required=d.required,
            options=tuple(d.options) if d.options else None, help_text=d.help_text,
        )
    return fields


async def layout(session: AsyncSession, entity: str) -> list[Block]:
    """The stored arrangement applied to today's fields; fields it does not place (a new
    custom field, say) follow in a last block."""
    fields = await _fields(session, entity)
    stored = await session.get(Layout, entity)
    arrangement: list[dict[str, Any]] = stored.blocks if stored else [
        {"label": label, "fields": [{"key": f.key} for f in block]}
        for label, block in STANDARD[entity]
    ]
    blocks: list[Block] = []
    placed: set[str] = set()
    for block in arrangement:
        specs = []
        for item in block["fields"]:
            spec = fields.get(item["key"])
            if spec is None or spec.key in placed:
                continue  # a deactivated custom field
            placed.add(spec.key)
            specs.append(replace(
                spec,
                label=item.get("label") or spec.label,
                required=spec.required or bool(item.get("required")),
                visible=item.get("visible", True),
            ))
        blocks.append(Block(block["label"], specs))
    rest = [f for key, f in fields.items() if key not in placed]
    if rest:
        blocks.append(Block(CUSTOM_BLOCK if all(f.custom for f in rest) else OTHER_BLOCK, rest))
    return blocks


async def choices(session: AsyncSession) -> dict[str, list[tuple[str, str]]]:
    """What a form offers for picklist fields, by picklist: the active values' (key, label)
    in order; `salesStage` offers the active stages (label = the stage's name)."""
    active: dict[str, list[tuple[str, str]]] = {}
    rows = await session.execute(
        select(PicklistValue.picklist, PicklistValue.key, PicklistValue.label)
        .where(PicklistValue.is_active.is_(True))
        .order_by(PicklistValue.position)
    )
    for name, key, label in rows:
        active.setdefault(name, []).append((key, label))
    stages = await session.execute(
        select(SalesStage.key, SalesStage.name)
        .where(SalesStage.is_active.is_(True))
        .order_by(SalesStage.position)
    )
    active[SALES_STAGE_PICKLIST] = [(key, name) for key, name in stages]
    return active


async def required(session: AsyncSession, entity: str) -> list[FieldSpec]:
    """Writable fields a create must fill (standard ones made mandatory, required custom);
    cached for the session."""

    async def load() -> list[FieldSpec]:
        return [
            f for block in await layout(session, entity) for f in block.fields
            if f.required and not f.read_only
        ]

    return await cached(session, ("required", entity), load)


async def hidden(session: AsyncSession, entity: str) -> list[FieldSpec]:
    """Writable fields the layout hides; cached for the session."""

    async def load() -> list[FieldSpec]:
        return [
            f for block in await layout(session, entity) for f in block.fields
            if not f.visible and not f.read_only
        ]

    return await cached(session, ("hidden", entity), load)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _input_name(f: FieldSpec) -> str:
    assert f.input is not None
    graphql = f.input if f.input.endswith("_id") else f.key
    return "".join(w if i == 0 else w.title() for i, w in enumerate(graphql.split("_")))


async def enforce(c: Checker, entity: str, data: dict[str, Any], creating: bool) -> None:
    """Refuse a write that leaves a mandatory standard field empty (custom fields are
    checked with their values), or that writes a field the layout hides (FIELD_HIDDEN: a
    create may leave it empty, an update may not touch it; its stored value stays)."""
    for f in await required(c.session, entity):
        if f.custom or f.always_required or f.key == "assignedTo":
            continue  # checked elsewhere, or always has a value (defaults to the caller)
        assert f.input is not None
        if _empty(data.get(f.input)) and (creating or f.input in data):
            c.fail(_input_name(f), f"{f.label} is mandatory in this form.", ErrorCode.REQUIRED)
    custom = [
        (i, *((item.key, item.value) if hasattr(item, "key") else item))
        for i, item in enumerate(data.get("custom_fields") or [])
    ]
    for f in await hidden(c.session, entity):
        message = f"{f.label} is hidden in this form, so it cannot be written."
        if f.custom:
            for i, key, value in custom:
                if key == f.key and not (creating and _empty(value)):
                    c.fail(["customFields", str(i), "key"], message, ErrorCode.FIELD_HIDDEN)
        elif (
            f.input is not None and f.input in data
            and not (creating and _empty(data[f.input]))
        ):
            c.fail(_input_name(f), message, ErrorCode.FIELD_HIDDEN)


async def required_custom_keys(session: AsyncSession, entity: str) -> set[str]:
    return {f.key for f in await required(session, entity) if f.custom}


async def update_layout(
    session: AsyncSession, viewer: Viewer, entity: str, blocks: list[dict[str, Any]]
) -> list[Block]:
    """Replace the arrangement: blocks in order, each with its fields and their overrides."""
    viewer.require_admin()
    c = Checker(session, viewer)
    fields = await _fields(session, entity)
    seen: set[str] = set()
    cleaned: list[dict[str, Any]] = []
    if not blocks:
        c.fail("blocks", "A layout needs at least one block.", ErrorCode.REQUIRED)
    for b, block in enumerate(blocks):
        label = c.text(["blocks", str(b), "label"], block.get("label"), required=True,
                       max_length=128)
        items = []
        for i, item in enumerate(block.get("fields") or []):
            at = ["blocks", str(b), "fields", str(i)]
            key = item["key"]
            spec = fields.get(key)
            if spec is None:
                c.fail([*at, "key"], f"No field {key!r} on {entity.lower()}.",
                       ErrorCode.NOT_FOUND)
                continue
            if key in seen:
                c.fail([*at, "key"], f"{key} is placed twice.", ErrorCode.DUPLICATE)
                continue
            seen.add(key)
            entry: dict[str, Any] = {"key": key}
            if item.get("label") is not None:
                entry["label"] = c.text([*at, "label"], item["label"], required=True,
                                        max_length=128)
            if item.get("required") is not None:
                if spec.read_only and item["required"]:
                    c.fail([*at, "required"], f"{key} is read-only.", ErrorCode.INVALID)
                elif spec.never_required and item["required"]:
                    c.fail([*at, "required"], f"{key} cannot be mandatory: only some records "
                           "have it.", ErrorCode.INVALID)
                elif spec.always_required and not item["required"]:
                    c.fail([*at, "required"], f"{key} is always mandatory.", ErrorCode.INVALID)
                entry["required"] = bool(item["required"])
            if item.get("visible") is not None:
                if not item["visible"] and (spec.required or entry.get("required")):
                    # a form could not fill it, so no create could pass
                    c.fail([*at, "visible"], f"{key} is mandatory and cannot be hidden.",
                           ErrorCode.INVALID)
                entry["visible"] = bool(item["visible"])
            items.append(entry)
        cleaned.append({"label": label, "fields": items})
    c.done()
    # Locked, so that concurrent saves queue and each audits the layout it replaced.
    stored = await session.get(Layout, entity, with_for_update=True)
    before = None
    if stored is None:
        try:
            async with session.begin_nested():
                session.add(Layout(entity=entity, blocks=cleaned, updated_by_id=viewer.user.id))
        except IntegrityError:  # another admin saved this entity's first layout meanwhile
            stored = await session.get(
                Layout, entity, with_for_update=True, populate_existing=True
            )
    if stored is not None:
        before = stored.blocks
        stored.blocks, stored.updated_at, stored.updated_by_id = cleaned, utcnow(), viewer.user.id
    await session.flush()
    forget(session)
    record_change(session, viewer, "LAYOUT", entity, None, "UPDATE", before, cleaned)
    return await layout(session, entity)


async def customized(
    c: Checker, entity: str, current: dict[str, Any], data: dict[str, Any], creating: bool
) -> dict[str, Any]:
    """The record's custom values after the write, and the layout's mandatory fields
    enforced on the standard ones (one rule for every entity and path)."""
    required = await required_custom_keys(c.session, entity)
    custom = await customization.check_values(
        c, entity, current, data.get("custom_fields"), creating, required
    )
    await enforce(c, entity, data, creating)
    return custom
