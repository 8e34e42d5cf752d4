"""Opportunity CSV export: the rows a viewer may see, streamed in keyset batches, and the
filter a CSV request takes (HTTP query parameters or the CLI's --filter-json).

The columns and their order come from resolvers.csv_fields.COLUMNS, then the active custom
fields; references are written as natural keys so that an import can resolve them again.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Account,
    Campaign,
    Contact,
    CustomFieldDefinition,
    Opportunity,
    OpportunityContact,
    User,
)
from models.picklist import FORECAST_CATEGORIES
from resolvers import customization
from resolvers.csv_fields import COLUMNS
from resolvers.dates import in_range
from resolvers.errors import RequestError
from resolvers.ids import pk_of
from resolvers.kinds import KINDS, owned
from resolvers.opportunity import OpportunityFilter, conditions_for
from resolvers.permissions import Viewer

BATCH_SIZE = 1000  # opportunities per query; memory stays bounded by one batch
CHUNK_SIZE = 64 * 1024  # characters of CSV text per chunk handed to the transport
LIST_SEPARATOR = " | "  # between the options of a multi-picklist value


# --- values ----------------------------------------------------------------------------


def text(value: Any) -> str:
    """A value as CSV text: plain decimals with a dot, ISO dates and instants (with offset),
    true/false, lists joined with ' | ', empty for null."""
    if type(value) is str:  # the common case first: this runs for every cell
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return LIST_SEPARATOR.join(text(item) for item in value)
    return str(value)


@dataclass(frozen=True)
class _References:
    """Natural keys of one batch's related records, by id (contacts by opportunity id)."""

    accounts: dict[int, str]
    campaigns: dict[int, str]
    users: dict[int, str]
    contacts: dict[int, str]


Getter = Callable[[Row[Any], _References], Any]
_TABLE = Opportunity.__table__
_POSITION = {column.name: i for i, column in enumerate(_TABLE.columns)}  # in a selected row


def _field(name: str) -> Getter:
    i = _POSITION[name]
    return lambda row, refs: row[i]


def _ref(relation: str, name: str) -> Getter:
    i = _POSITION[name]
    return lambda row, refs: getattr(refs, relation).get(row[i])


_GETTERS: dict[str, Getter] = {
    "number": _field("number"),
    "name": _field("name"),
    "amount": _field("amount"),
    "currency": _field("currency"),
    "account": _ref("accounts", "account_id"),
    "contact": _ref("contacts", "id"),
    "expectedCloseDate": _field("expected_close_date"),
    "actualCloseDate": _field("actual_close_date"),
    "type": _field("type"),
    "nextStep": _field("next_step"),
    "leadSource": _field("lead_source"),
    "salesStage": _field("sales_stage"),
    "probability": _field("probability"),
    "probabilityIsManual": _field("probability_is_manual"),
    "lostReason": _field("lost_reason"),
    "assignedTo": _ref("users", "assigned_to_id"),
    "campaign": _ref("campaigns", "campaign_id"),
    "description": _field("description"),
    "amountSource": _field("amount_source"),
    "createdBy": _ref("users", "created_by_id"),
    "createdAt": _field("created_at"),
    "updatedAt": _field("updated_at"),
}
# In COLUMNS order; a column added to the table without a getter fails here, at import.
GETTERS: tuple[Getter, ...] = tuple(_GETTERS[column.key] for column in COLUMNS)


def header(definitions: Sequence[CustomFieldDefinition], labels: bool = False) -> list[str]:
    """Field keys (or English labels): the standard columns, then the active custom fields."""
    if labels:
        return [*(c.label for c in COLUMNS), *(d.label for d in definitions)]
    return [*(c.key for c in COLUMNS), *(d.key for d in definitions)]


def contact_key(email: str | None, first_name: str | None, last_name: str | None) -> str:
    """A contact's natural key: the email if set, else 'First Last'."""
    if email:
        return email
    return " ".join(part for part in (first_name, last_name) if part)


async def _names(
    session: AsyncSession, viewer: Viewer, type_name: str, column: Any, ids: Iterable[Any]
) -> dict[int, str]:
    """id -> natural key of the related records the viewer may see (one query)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    model = KINDS[type_name].model
    stmt = select(model.id, column).where(model.id.in_(wanted), *KINDS[type_name].visible(viewer))
    return {pk: name for pk, name in (await session.execute(stmt)).all()}


async def _references(
    session: AsyncSession, viewer: Viewer, batch: Sequence[Row[Any]]
) -> _References:
    """One query per relation for the whole batch. A reference the viewer may not see (or a
    deleted record) is written empty, as GraphQL answers null for it."""
    contacts: dict[int, str] = {}
    stmt = (
        select(OpportunityContact.opportunity_id, Contact.email, Contact.first_name,
               Contact.last_name)
        .join(Contact, Contact.id == OpportunityContact.contact_id)
        .where(
            OpportunityContact.opportunity_id.in_([row.id for row in batch]),
            OpportunityContact.is_primary.is_(True),
            *KINDS["Contact"].visible(viewer),
        )
    )
    for opportunity_id, email, first_name, last_name in (await session.execute(stmt)).all():
        contacts[opportunity_id] = contact_key(email, first_name, last_name)
    return _References(
        accounts=await _names(
            session, viewer, "Account", Account.name, (row.account_id for row in batch)
        ),
        campaigns=await _names(
            session, viewer, "Campaign", Campaign.name, (row.campaign_id for row in batch)
        ),
        users=await _names(
            session, viewer, "User", User.username,
            (i for row in batch for i in (row.assigned_to_id, row.created_by_id)),
        ),
        contacts=contacts,
    )


async def export_rows(
    session: AsyncSession, viewer: Viewer, filter: OpportunityFilter | None, labels: bool = False
) -> AsyncGenerator[list[str], None]:
    """The header, then one row per opportunity the viewer may see (not deleted) matching
    the filter, by id. Opportunities are read in keyset batches of BATCH_SIZE (no OFFSET),
    their references with one query per relation per batch, so memory stays constant.
    A bad filter raises RequestError before the header is yielded."""
    definitions = await customization.definitions(session, "OPPORTUNITY")
    where = [*owned(Opportunity, viewer), *await conditions_for(session, filter)]
    yield header(definitions, labels)
    last_id: int | None = None
    while True:
        stmt = select(_TABLE).where(*where).order_by(Opportunity.id).limit(BATCH_SIZE)
        if last_id is not None:
            stmt = stmt.where(Opportunity.id > last_id)
        batch = (await session.execute(stmt)).all()  # plain rows: no identity map to grow
        if not batch:
            return
        refs = await _references(session, viewer, batch)
        for row in batch:
            custom = row.custom_fields or {}
            yield [
                *(text(get(row, refs)) for get in GETTERS),
                *(text(custom.get(d.key)) for d in definitions),
            ]
        if len(batch) < BATCH_SIZE:
            return
        last_id = batch[-1].id


async def export_csv(
    session: AsyncSession, viewer: Viewer, filter: OpportunityFilter | None, labels: bool = False
) -> AsyncGenerator[str, None]:
    """export_rows as RFC 4180 CSV text (comma, double quotes, CRLF), in chunks: the header
    line first on its own (so a bad filter fails before anything is sent), then chunks of
    about CHUNK_SIZE characters."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    first = True
    async for row in export_rows(session, viewer, filter, labels):
        writer.writerow(row)
        if first or buffer.tell() >= CHUNK_SIZE:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            first = False
    if buffer.tell():
        yield buffer.getvalue()


# --- the filter --------------------------------------------------------------------------


class _Bad(ValueError):
    """A filter value that does not parse; the message says what was expected."""


def _string(raw: Any) -> str | None:
    if not isinstance(raw, str):
        raise _Bad("expects text")
    return raw.strip() or None


def _id(type_name: str) -> Callable[[Any], str | None]:
    def parse(raw: Any) -> str | None:
        value = _string(raw)
        if value is not None and pk_of(value, type_name) is None:
            raise _Bad(f"{value!r} is not the id of a {type_name}")
        return value

    return parse


def _in_range(value: Any) -> Any:
    try:
        return in_range(value)
    except ValueError as bad:
        raise _Bad(str(bad).rstrip(".")) from None


def _date(raw: Any) -> dt.date | None:
    value = _string(raw)
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise _Bad(f"{value!r} is not a date like 2027-03-31") from None
    return _in_range(day)  # type: ignore[no-any-return]


def _instant(raw: Any) -> dt.datetime | None:
    value = _string(raw)
    if value is None:
        return None
    try:
        instant: dt.datetime | None = dt.datetime.fromisoformat(value)
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise _Bad(f"{value!r} is not an instant with an offset like 2027-03-31T09:00:00+00:00")
    return _in_range(instant)  # type: ignore[no-any-return]


def _decimal(raw: Any) -> Decimal | None:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = str(raw)
    value = _string(raw)
    if value is None:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise _Bad(f"{value!r} is not a number like 1234.50")
    return number


def _boolean(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    value = _string(raw)
    if value is None:
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _Bad(f"{value!r} is not true or false")


def boolean_param(name: str, raws: Sequence[str]) -> bool | None:
    """A true/false query parameter given at most once (None when absent or blank)."""
    if len(raws) > 1:
        raise RequestError(f"Parameter {name!r} is given more than once.")
    try:
        return _boolean(raws[0]) if raws else None
    except _Bad as bad:
        raise RequestError(f"Parameter {name!r}: {bad}.") from None


def _category(raw: Any) -> str | None:
    value = _string(raw)
    if value is not None and value.upper() not in FORECAST_CATEGORIES:
        raise _Bad(f"{value!r} is not one of {', '.join(FORECAST_CATEGORIES)}")
    return None if value is None else value.upper()


def _custom_fields(raw: Any) -> tuple[customization.CustomFilter, ...] | None:
    """A list of {key, eq, in, min, max, contains, isNull} (JSON text in a query parameter)."""
    if isinstance(raw, str):
        if not raw.strip():
            return None
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _Bad("expects a JSON list of {key, eq, in, min, max, contains, isNull}") from None
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise _Bad("expects a list of {key, eq, in, min, max, contains, isNull}")
    known = {"key", "eq", "in", "min", "max", "contains", "isNull"}
    filters = []
    for item in raw:
        unknown = sorted(set(item) - known)
        if unknown:
            raise _Bad(f"unknown condition {unknown[0]!r} (known: {', '.join(sorted(known))})")
        if not isinstance(item.get("key"), str):
            raise _Bad("every condition needs a key, the custom field's key")
        in_ = item.get("in")
        if in_ is not None and not isinstance(in_, list):
            raise _Bad("'in' expects a list")
        contains, is_null = item.get("contains"), item.get("isNull")
        if contains is not None and not isinstance(contains, str):
            raise _Bad("'contains' expects text")
        if is_null is not None and not isinstance(is_null, bool):
            raise _Bad("'isNull' expects true or false")
        filters.append(customization.CustomFilter(
            key=item["key"], eq=item.get("eq"), in_=None if in_ is None else tuple(in_),
            min=item.get("min"), max=item.get("max"), contains=contains, is_null=is_null,
        ))
    return tuple(filters)


@dataclass(frozen=True)
class _Param:
    attribute: str  # on OpportunityFilter
    parse: Callable[[Any], Any]
    many: bool = False  # a list: repeated, comma-separated (parameters) or a JSON list


PARAMS: dict[str, _Param] = {
    "stage": _Param("stage", _string, many=True),
    "assignedTo": _Param("assigned_to", _id("User"), many=True),
    "account": _Param("account", _id("Account")),
    "campaign": _Param("campaign", _id("Campaign")),
    "expectedCloseDateFrom": _Param("expected_close_date_from", _date),
    "expectedCloseDateTo": _Param("expected_close_date_to", _date),
    "amountMin": _Param("amount_min", _decimal),
    "amountMax": _Param("amount_max", _decimal),
    "type": _Param("type", _string),
    "leadSource": _Param("lead_source", _string),
    "forecastCategory": _Param("forecast_category", _category, many=True),
    "isClosed": _Param("is_closed", _boolean),
    "isWon": _Param("is_won", _boolean),
    "search": _Param("search", _string),
    "customFields": _Param("custom_fields", _custom_fields),
    "actualCloseDateFrom": _Param("actual_close_date_from", _date),
    "actualCloseDateTo": _Param("actual_close_date_to", _date),
    "updatedSince": _Param("updated_since", _instant),
    "isOverdue": _Param("is_overdue", _boolean),
    "lostReason": _Param("lost_reason", _string),
}


def _build(given: Mapping[str, list[Any]], split_commas: bool) -> OpportunityFilter:
    """An OpportunityFilter from raw values by camelCase name; RequestError names the first
    bad one. Blank values count as not given."""
    values: dict[str, Any] = {}
    for name, raws in given.items():
        param = PARAMS.get(name)
        if param is None:
            raise RequestError(
                f"Unknown filter parameter {name!r}; the filter takes {', '.join(PARAMS)}."
            )
        if not param.many and len(raws) > 1:
            raise RequestError(f"Filter parameter {name!r} is given more than once.")
        if param.many and split_commas:
            raws = [p for raw in raws for p in (raw.split(",") if isinstance(raw, str) else [raw])]
        try:
            parsed = [param.parse(raw) for raw in raws]
        except _Bad as bad:
            raise RequestError(f"Filter parameter {name!r}: {bad}.") from None
        kept = [value for value in parsed if value is not None]
        if kept:
            values[param.attribute] = tuple(kept) if param.many else kept[0]
    return OpportunityFilter(**values)


def filter_from_params(params: Mapping[str, str | list[str]]) -> OpportunityFilter:
    """The filter from query parameters named like the GraphQL filter's fields (camelCase);
    list fields may be repeated or comma-separated. Bad names or values raise RequestError."""
    return _build(
        {name: [raw] if isinstance(raw, str) else list(raw) for name, raw in params.items()},
        split_commas=True,
    )


def filter_from_json(document: str) -> OpportunityFilter:
    """The filter from a JSON object with the GraphQL filter's camelCase keys (the CLI's
    --filter-json), e.g. {"stage": ["PROSPECTING"], "isClosed": false}."""
    try:
        data = json.loads(document)
    except ValueError as exc:
        raise RequestError(f"The filter is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise RequestError('The filter must be a JSON object, e.g. {"isClosed": false}.')
    given: dict[str, list[Any]] = {}
    for name, raw in data.items():
        if raw is None:
            continue
        many = name in PARAMS and PARAMS[name].many
        given[name] = raw if many and isinstance(raw, list) else [raw]
    return _build(given, split_commas=False)
