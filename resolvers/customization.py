"""Custom fields: definitions (admin), typed values on records, and their SQL filters.

Values live in each record's `custom_fields` JSON under the field key, stored as JSON
strings for decimals, dates and instants (exact, and ordered as text), numbers for
integers, booleans, and lists for multi-picklists.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, case, false, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import CustomFieldDefinition
from models.base import utcnow
from models.customization import FIELD_TYPES
from resolvers.audit import record_change
from resolvers.cache import cached, forget
from resolvers.dates import EARLIEST, LATEST, in_range
from resolvers.errors import ErrorCode, FieldError, RequestError, ValidationFailed
from resolvers.kinds import LINKED
from resolvers.permissions import Viewer
from resolvers.text import escape_like
from resolvers.validation import EMAIL, Checker

KEY = re.compile(r"^cf_[a-z0-9]+(_[a-z0-9]+)*$")
NUMERIC = ("INTEGER", "DECIMAL", "CURRENCY", "PERCENT")
TEXTUAL = ("TEXT", "TEXTAREA", "EMAIL", "URL", "PHONE", "PICKLIST")
TEXT_LIMIT = {"TEXTAREA": 10_000}
PLACES = {"DECIMAL": 6, "CURRENCY": 2, "PERCENT": 2}
WHOLE = re.compile(r"^[+-]?[0-9]+$")  # ASCII digits only: int() also takes "1_000" and "١٢"
NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# Unset numbers sort below every value a field can hold (integers reach ±2**53).
NUMERIC_UNSET = Decimal("-1e16")


def key_from_label(label: str) -> str:
    """cf_ + the label's words in lowercase ASCII ("Città" gives cf_citta)."""
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    return "cf_" + "_".join(re.findall(r"[a-z0-9]+", ascii_label.lower()))


async def definitions(
    session: AsyncSession, entity: str, include_inactive: bool = False
) -> list[CustomFieldDefinition]:
    """An entity's field definitions in order (cached for the session)."""

    async def load() -> list[CustomFieldDefinition]:
        stmt = select(CustomFieldDefinition).where(CustomFieldDefinition.entity == entity)
        stmt = stmt.order_by(CustomFieldDefinition.position, CustomFieldDefinition.id)
        return list((await session.scalars(stmt)).all())

    every = await cached(session, ("definitions", entity), load)
    return every if include_inactive else [d for d in every if d.is_active]


async def definition(
    session: AsyncSession, entity: str, key: str
) -> CustomFieldDefinition | None:
    stmt = select(CustomFieldDefinition).where(
        CustomFieldDefinition.entity == entity, CustomFieldDefinition.key == key
    )
    return (await session.scalars(stmt)).first()


# --- values --------------------------------------------------------------------------


class BadValue(ValueError):
    """A value that does not fit its field's type; the message says why."""


def _in_range(value: Any) -> Any:
    try:
        return in_range(value)
    except ValueError as bad:
        raise BadValue(f"is out of range: dates go from {EARLIEST} to {LATEST}") from bad


def coerce(d: CustomFieldDefinition, value: Any) -> Any:
    """The stored form of a client's value for a field, or BadValue."""
    t = d.type
    if value is None:
        return None
    if t in TEXTUAL:
        if not isinstance(value, str):
            raise BadValue("expects text")
        value = value.strip()
        if not value:
            return None
        limit = TEXT_LIMIT.get(t, 255)
        if len(value) > limit:
            raise BadValue(f"is {len(value)} characters long; at most {limit}")
        if t == "EMAIL" and not EMAIL.match(value):
            raise BadValue(f"{value!r} is not an email address")
        if t == "URL" and (" " in value or "." not in value):
            raise BadValue(f"{value!r} is not a web address")
        if t == "PICKLIST" and value not in (d.options or []):
            raise BadValue(f"{value!r} is not one of: {', '.join(d.options or [])}")
        return value
    if t == "MULTI_PICKLIST":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadValue("expects a list of options")
        unknown = [v for v in value if v not in (d.options or [])]
        if unknown:
            listed = ", ".join(d.options or [])
            raise BadValue(f"{', '.join(map(repr, unknown))} not among: {listed}")
        # option order, no repeats; none chosen is no value (so it fails `required`)
        return [o for o in (d.options or []) if o in value] or None
    if t == "BOOLEAN":
        if not isinstance(value, bool):
            raise BadValue("expects true or false")
        return value
    if t == "INTEGER":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise BadValue("expects a whole number")
        if isinstance(value, str) and not WHOLE.match(value.strip()):
            raise BadValue("expects a whole number")
        number = int(value)
        if abs(number) > 2**53:
            raise BadValue("is too large")
        return number
    if t in PLACES:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise BadValue("expects a number")
        if isinstance(value, str) and not NUMBER.match(value.strip()):
            raise BadValue("expects a number")
        try:
            exact = Decimal(str(value).strip())
        except InvalidOperation:
            raise BadValue("expects a number") from None
        if not exact.is_finite() or abs(exact) >= Decimal("1e15"):
            raise BadValue("is out of range")
        exponent = exact.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > PLACES[t]:
            raise BadValue(f"takes at most {PLACES[t]} decimals")
        if t == "PERCENT" and not 0 <= exact <= 100:
            raise BadValue("must be between 0 and 100")
        if t == "CURRENCY" and exact < 0:
            raise BadValue("must be at least 0")
        return str(exact.quantize(Decimal(1).scaleb(-PLACES[t])))
    if t == "DATE":
        try:
            if not isinstance(value, str) or not ISO_DATE.match(value):
                raise ValueError(value)
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise BadValue("expects a date like 2027-03-31") from None
        return _in_range(day).isoformat()
    if t == "DATETIME":
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            instant = dt.datetime.fromisoformat(value)
        except ValueError:
            raise BadValue("expects an instant like 2027-03-31T09:00:00+02:00") from None
        if instant.tzinfo is None:
            raise BadValue("needs a time zone offset")
        return _in_range(instant).astimezone(dt.UTC).isoformat()
    raise BadValue("has an unknown type")  # pragma: no cover


async def check_values(
    c: Checker,
    entity: str,
    current: dict[str, Any],
    given: Sequence[Any] | None,
    creating: bool,
    required_keys: set[str] | None = None,
) -> dict[str, Any]:
    """The record's custom values after this write: given values checked against their
    definitions (every problem reported), the rest kept; on create, defaults fill gaps."""
    defs = {d.key: d for d in await definitions(c.session, entity, include_inactive=True)}
    result = dict(current)
    seen: set[str] = set()
    for i, item in enumerate(given or []):
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        at = ("customFields", str(i))
        d = defs.get(key)
        if key in seen:
            c.fail([*at, "key"], f"{key!r} is given twice.", ErrorCode.DUPLICATE)
            continue
        seen.add(key)
        if d is None:
            c.fail([*at, "key"], f"No custom field {key!r} on {entity.lower()}.",
                   ErrorCode.NOT_FOUND)
            continue
        if not d.is_active:
            c.fail([*at, "key"], f"Custom field {key!r} is deactivated.", ErrorCode.INACTIVE)
            continue
        try:
            stored = coerce(d, value)
        except BadValue as bad:
            c.fail([*at, "value"], f"{d.label} {bad}.", ErrorCode.INVALID)
            continue
        if stored is None:
            result.pop(key, None)
        else:
            result[key] = stored
    for d in defs.values():
        if not d.is_active:
            continue
        if creating and d.key not in result and d.default_value is not None:
            result[d.key] = d.default_value
        must = d.required or (required_keys is not None and d.key in required_keys)
        if must and result.get(d.key) is None and (creating or d.key in seen):
            c.fail("customFields", f"{d.label} ({d.key}) is required.", ErrorCode.REQUIRED)
    return result


@dataclass(frozen=True)
class Value:
    key: str
    label: str
    type: str
    value: Any


def values(defs: Sequence[CustomFieldDefinition], stored: dict[str, Any]) -> list[Value]:
    """The active fields of a record, in definition order, null where unset."""
    return [Value(d.key, d.label, d.type, stored.get(d.key)) for d in defs if d.is_active]


# --- definitions (admin) --------------------------------------------------------------


def _snapshot(d: CustomFieldDefinition) -> dict[str, Any]:
    return {
        "label": d.label, "type": d.type, "required": d.required, "options": d.options,
        "defaultValue": d.default_value, "helpText": d.help_text, "isActive": d.is_active,
        "mapsTo": d.maps_to,
    }


async def _check_definition(
    c: Checker, entity: str, d: CustomFieldDefinition, data: dict[str, Any]
) -> None:
    """Validate and apply label, options, required, default, help text and mapping."""
    if "label" in data:
        d.label = c.text("label", data["label"], required=True, max_length=128) or d.label
    if "options" in data:
        options = [o.strip() for o in data["options"] or [] if isinstance(o, str)]
        if d.type in ("PICKLIST", "MULTI_PICKLIST"):
            if not options or any(not o for o in options):
                c.fail("options", "A picklist field needs options (non-blank).",
                       ErrorCode.REQUIRED)
            elif len(set(options)) != len(options):
                c.fail("options", "Options must be distinct.", ErrorCode.DUPLICATE)
            d.options = options  # records keep removed options; new writes refuse them
        elif options:
            c.fail("options", f"A {d.type} field takes no options.", ErrorCode.INVALID)
    elif d.id is None and d.type in ("PICKLIST", "MULTI_PICKLIST"):
        c.fail("options", "A picklist field needs options.", ErrorCode.REQUIRED)
    if "required" in data and data["required"] is not None:
        d.required = bool(data["required"])
    if "help_text" in data:
        d.help_text = c.text("helpText", data["help_text"], max_length=1000)
    if "default_value" in data or ("options" in data and d.default_value is not None):
        # new options re-check the default kept: creates must not write a removed option
        try:
            d.default_value = coerce(d, data.get("default_value", d.default_value))
        except BadValue as bad:
            c.fail("defaultValue", f"The default {bad}.", ErrorCode.INVALID)
    if "maps_to" in data:
        d.maps_to = await _check_mapping(c, entity, d, data["maps_to"] or [])


async def _check_mapping(
    c: Checker, entity: str, d: CustomFieldDefinition, targets: Sequence[tuple[str, str]]
) -> dict[str, str]:
    """Lead fields only: which opportunity/account/contact field conversion copies into."""
    if targets and entity != "LEAD":
        c.fail("mapsTo", "Only lead fields map to other records on conversion.",
               ErrorCode.INVALID)
        return {}
    mapping: dict[str, str] = {}
    for i, (target_entity, key) in enumerate(targets):
        at = ("mapsTo", str(i))
        target = await definition(c.session, target_entity, key)
        if target_entity == "LEAD" or target_entity in mapping:
            c.fail([*at, "entity"], "Map to at most one field of an opportunity, account "
                   "or contact.", ErrorCode.INVALID)
        elif target is None or not target.is_active:
            c.fail([*at, "key"], f"No active custom field {key!r} on {target_entity.lower()}.",
                   ErrorCode.NOT_FOUND)
        elif target.type != d.type:
            c.fail([*at, "key"], f"{key} is a {target.type} field; this one is {d.type}.",
                   ErrorCode.INVALID)
        else:
            mapping[target_entity] = key
    return mapping


async def create_definition(
    session: AsyncSession, viewer: Viewer, data: dict[str, Any]
) -> CustomFieldDefinition:
    viewer.require_admin()
    c = Checker(session, viewer)
    entity = data["entity"]
    label = c.text("label", data.get("label"), required=True, max_length=128)
    key = (data.get("key") or "").strip() or (key_from_label(label) if label else "")
    if key and not KEY.match(key) or len(key) > 64:
        c.fail("key", f"{key!r} is not a key: cf_ then lowercase words joined by _.",
               ErrorCode.INVALID)
    elif key and await definition(session, entity, key) is not None:
        c.fail("key", f"{entity.lower()} already has a field {key!r}.", ErrorCode.DUPLICATE)
    kind = data["type"]
    if kind not in FIELD_TYPES:  # pragma: no cover - the GraphQL enum guarantees it
        c.fail("type", f"Unknown type {kind!r}.", ErrorCode.INVALID)
    position = await session.scalar(
        select(func.count()).select_from(CustomFieldDefinition)
        .where(CustomFieldDefinition.entity == entity)
    )
    d = CustomFieldDefinition(
        entity=entity, key=key, label=label or "", type=kind, required=False, options=None,
        default_value=None, help_text=None, is_active=True, position=(position or 0) + 1,
        maps_to={}, created_by_id=viewer.user.id, updated_by_id=viewer.user.id,
    )
    await _check_definition(c, entity, d, {k: v for k, v in data.items() if k != "label"})
    c.done()
    session.add(d)
    try:
        await session.flush()
    except IntegrityError:  # another admin added the same key meanwhile (entity_key)
        raise ValidationFailed([FieldError(
            c.path("key"), f"{entity.lower()} already has a field {key!r}.",
            ErrorCode.DUPLICATE,
        )]) from None
    forget(session)
    record_change(session, viewer, "CUSTOM_FIELD", entity, key, "CREATE", None, _snapshot(d))
    return d


async def _for_change(
    session: AsyncSession, viewer: Viewer, entity: str, key: str
) -> CustomFieldDefinition:
    viewer.require_admin()
    d = await definition(session, entity, key)
    if d is None:
        c = Checker(session, viewer)
        c.fail("key", f"No custom field {key!r} on {entity.lower()}.", ErrorCode.NOT_FOUND)
        c.done()
    assert d is not None
    return d


async def update_definition(
    session: AsyncSession, viewer: Viewer, data: dict[str, Any]
) -> CustomFieldDefinition:
    """Change label, options, required, default, help text or mapping; key and type stay."""
    d = await _for_change(session, viewer, data["entity"], data["key"])
    before = _snapshot(d)
    c = Checker(session, viewer)
    await _check_definition(c, d.entity, d, data)
    c.done()
    d.updated_at, d.updated_by_id = utcnow(), viewer.user.id
    await session.flush()
    forget(session)
    record_change(session, viewer, "CUSTOM_FIELD", d.entity, d.key, "UPDATE", before, _snapshot(d))
    return d


async def set_active(
    session: AsyncSession, viewer: Viewer, entity: str, key: str, active: bool
) -> CustomFieldDefinition:
    """Hide a field from forms and new writes (its data stays), or bring it back."""
    d = await _for_change(session, viewer, entity, key)
    if d.is_active != active:
        before = _snapshot(d)
        d.is_active = active
        d.updated_at, d.updated_by_id = utcnow(), viewer.user.id
        await session.flush()
        forget(session)
        record_change(session, viewer, "CUSTOM_FIELD", entity, key,
                      "ACTIVATE" if active else "DEACTIVATE", before, _snapshot(d))
    return d


# --- SQL: filters and ordering --------------------------------------------------------


@dataclass(frozen=True)
class CustomFilter:
    key: str
    eq: Any = None
    in_: tuple[Any, ...] | None = None
    min: Any = None
    max: Any = None
    contains: str | None = None
    is_null: bool | None = None


def _typed(column: Any, d: CustomFieldDefinition) -> Any:
    element = column[d.key]
    if d.type in NUMERIC:
        return element.as_numeric(28, 6)
    if d.type == "BOOLEAN":
        return element.as_boolean()
    return element.as_string()


def _stored(d: CustomFieldDefinition, value: Any, what: str) -> Any:
    if d.type in ("PICKLIST", "MULTI_PICKLIST"):
        # Any option text: records keep options the admin has since removed.
        if not isinstance(value, str):
            raise RequestError(f"Filter on {d.key}: the {what} value expects an option (text).")
        return value.strip()
    try:
        stored = coerce(d, value)
    except BadValue as bad:
        raise RequestError(f"Filter on {d.key}: the {what} value {bad}.") from None
    return Decimal(stored) if d.type in NUMERIC else stored


def _holds(column: Any, d: CustomFieldDefinition, option: Any, what: str) -> ColumnElement[bool]:
    """A multi-picklist holds the option: its list's JSON text holds the option as a JSON
    string. replace() matches case-sensitively on both databases (SQLite's LIKE ignores
    ASCII case) and needs no escaping."""
    text = column[d.key].as_string()
    needle = json.dumps(_stored(d, option, what))
    holds: ColumnElement[bool] = func.replace(text, needle, "") != text
    return holds


async def filter_conditions(
    session: AsyncSession, entity: str, filters: Sequence[CustomFilter]
) -> list[ColumnElement[bool]]:
    """SQL conditions for custom-field filters (JSON operators on both databases)."""
    column = LINKED[entity].custom_fields
    conditions: list[ColumnElement[bool]] = []
    for f in filters:
        d = await definition(session, entity, f.key)
        if d is None:
            raise RequestError(f"No custom field {f.key!r} on {entity.lower()}.")
        typed = _typed(column, d)
        if d.type == "MULTI_PICKLIST":
            if f.eq is not None:
                conditions.append(_holds(column, d, f.eq, "eq"))
            if f.in_ is not None:
                options = [_holds(column, d, v, "in") for v in f.in_]
                conditions.append(or_(*options) if options else false())
            if f.contains is not None:
                conditions.append(_holds(column, d, f.contains, "contains"))
        else:
            if f.eq is not None:
                conditions.append(typed == _stored(d, f.eq, "eq"))
            if f.in_ is not None:
                options = [_stored(d, v, "in") for v in f.in_]
                conditions.append(typed.in_(options) if options else false())
            if f.min is not None:
                conditions.append(typed >= _stored(d, f.min, "min"))
            if f.max is not None:
                conditions.append(typed <= _stored(d, f.max, "max"))
            if f.contains is not None:
                pattern = f"%{escape_like(f.contains)}%"
                conditions.append(column[d.key].as_string().ilike(pattern, escape="\\"))
        if f.is_null is not None:
            raw = column[d.key].as_string()
            conditions.append(raw.is_(None) if f.is_null else raw.is_not(None))
    return conditions


async def sort_expression(session: AsyncSession, entity: str, key: str) -> Any:
    """A non-null expression to order by a custom field (unset values sort first)."""
    d = await definition(session, entity, key)
    if d is None:
        raise RequestError(f"No custom field {key!r} on {entity.lower()} to order by.")
    typed = _typed(LINKED[entity].custom_fields, d)
    if d.type in NUMERIC:
        return func.coalesce(typed, literal(NUMERIC_UNSET))
    if d.type == "BOOLEAN":
        # unset 0, false 1, true 2: unset apart from false, and a cursor value that keyset
        # comparisons accept (a boolean one only allows = and !=)
        return case((typed.is_(None), 0), (typed, 2), else_=1)
    return func.coalesce(typed, literal(""))
