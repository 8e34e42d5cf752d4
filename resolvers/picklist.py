"""Sales stages, picklist values and currencies (reference data, visible to every user)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Currency, PicklistValue, SalesStage
from models.seed import to_key
from resolvers.audit import record_change
from resolvers.cache import forget
from resolvers.errors import ErrorCode, RequestError
from resolvers.permissions import Viewer
from resolvers.validation import Checker

SALES_STAGE_PICKLIST = "salesStage"


async def sales_stages(session: AsyncSession, include_inactive: bool) -> Sequence[SalesStage]:
    stmt = select(SalesStage).order_by(SalesStage.position, SalesStage.key)
    if not include_inactive:
        stmt = stmt.where(SalesStage.is_active.is_(True))
    return (await session.scalars(stmt)).all()


async def picklist(
    session: AsyncSession, name: str, include_inactive: bool
) -> Sequence[PicklistValue | SalesStage]:
    """The values of a picklist in order; `salesStage` lists the stages (label = name)."""
    if name == SALES_STAGE_PICKLIST:
        return await sales_stages(session, include_inactive)
    stmt = select(PicklistValue).where(PicklistValue.picklist == name)
    if not include_inactive:
        stmt = stmt.where(PicklistValue.is_active.is_(True))
    values = (await session.scalars(stmt.order_by(PicklistValue.position))).all()
    if not values and not await session.scalar(
        select(PicklistValue.id).where(PicklistValue.picklist == name).limit(1)
    ):
        names = await picklist_names(session)
        raise RequestError(f"Unknown picklist {name!r}; known: {', '.join(names)}.")
    return values


async def picklist_names(session: AsyncSession) -> list[str]:
    names = (await session.scalars(select(PicklistValue.picklist).distinct())).all()
    return sorted({SALES_STAGE_PICKLIST, *names})


async def currencies(session: AsyncSession) -> Sequence[Currency]:
    return (await session.scalars(select(Currency).order_by(Currency.code))).all()


async def set_currency_rate(
    session: AsyncSession, viewer: Viewer, code: str, rate: Decimal
) -> Currency:
    """Add a currency or change its rate (admin): units of it that one base unit buys."""
    viewer.require_admin()
    c = Checker(session, viewer)
    code = (code or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        c.fail("code", f"{code!r} is not an ISO 4217 code (three letters).", ErrorCode.INVALID)
    checked = c.number("rate", rate, minimum=Decimal(0), exclusive_minimum=True,
                       maximum=Decimal("999999999999"), places=6)
    currency = await session.get(Currency, code) if code else None
    if currency is not None and currency.is_base and rate != 1:
        c.fail("rate", f"{code} is the base currency; its rate is always 1.", ErrorCode.INVALID)
    c.done()
    if currency is None:
        currency = Currency(code=code, rate=checked, is_base=False)
        session.add(currency)
    else:
        currency.rate = checked  # type: ignore[assignment]
    await session.flush()
    return currency


# --- editing picklists (admin) ----------------------------------------------------------

KEY_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*")
KEY_MAX = 64
LABEL_MAX = 128
STAGE_ONLY = {
    "probability": "probability", "forecast_category": "forecastCategory",
    "is_closed": "isClosed", "is_won": "isWon",
}
# The forecast category a stage gets when it is created or changes state without one given.
DEFAULT_CATEGORY = {"OPEN": "PIPELINE", "WON": "CLOSED", "LOST": "OMITTED"}
# The probability a closed stage always has (apply_stage forces it on every deal entering it).
CLOSED_PROBABILITY = {"WON": Decimal("100.00"), "LOST": Decimal("0.00")}
STATE_WORDS = {"OPEN": "open", "WON": "won", "LOST": "lost"}

Value = PicklistValue | SalesStage


def _state(closed: bool, won: bool) -> str:
    return "WON" if won else "LOST" if closed else "OPEN"


def _label_of(value: Value) -> str:
    return value.name if isinstance(value, SalesStage) else value.label


def snapshot(value: Value) -> dict[str, Any]:
    """A picklist value as the audit stores it (JSON: decimals as strings)."""
    data: dict[str, Any] = {
        "key": value.key, "label": _label_of(value), "position": value.position,
        "isActive": value.is_active,
    }
    if isinstance(value, SalesStage):
        data |= {
            "probability": str(value.probability), "forecastCategory": value.forecast_category,
            "isClosed": value.is_closed, "isWon": value.is_won,
        }
    return data


async def _known_picklist(c: Checker, name: str | None) -> str | None:
    name = name.strip() if isinstance(name, str) else None
    if not name:
        c.fail("picklist", "Name the picklist (as picklist(name:) does).", ErrorCode.REQUIRED)
        return None
    names = await picklist_names(c.session)
    if name not in names:
        c.fail(
            "picklist", f"Unknown picklist {name!r}; known: {', '.join(names)}.",
            ErrorCode.INVALID,
        )
        return None
    return name


async def _values_for_edit(session: AsyncSession, name: str) -> list[Value]:
    """Every value of the picklist in order, inactive ones included.

    On PostgreSQL the rows are locked first (FOR NO KEY UPDATE, which still lets new deals
    reference a stage), so concurrent edits of one picklist queue: the last-active checks
    and the renumbering then see every committed change, a value added meanwhile included.
    """
    model: Any = SalesStage if name == SALES_STAGE_PICKLIST else PicklistValue
    where = [] if model is SalesStage else [PicklistValue.picklist == name]
    await session.execute(select(model.key).where(*where).with_for_update(key_share=True))
    stmt = select(model).where(*where).order_by(model.position, model.key)
    return list((await session.scalars(stmt)).all())


def _new_key(c: Checker, key: str | None) -> str | None:
    key = key.strip() if isinstance(key, str) else None
    if not key:
        c.fail("key", "A key is required (e.g. TRADE_FAIR).", ErrorCode.REQUIRED)
        return None
    if len(key) > KEY_MAX:
        c.fail("key", f"The key is {len(key)} characters long; at most {KEY_MAX}.",
               ErrorCode.INVALID)
        return None
    if not KEY_PATTERN.fullmatch(key):
        hint = to_key(key)
        example = f" such as {hint!r}" if KEY_PATTERN.fullmatch(hint) else ""
        c.fail(
            "key",
            f"{key!r} is not a valid key: use capital letters, digits and underscores, "
            f"starting with a letter{example}.",
            ErrorCode.INVALID,
        )
        return None
    return key


def _position(c: Checker, value: int | None, count: int) -> int | None:
    """A 1-based position; past the end means last (`count` is the last position)."""
    if value is None:
        return None
    if value < 1:
        c.fail("position", f"Position must be at least 1; got {value}.", ErrorCode.OUT_OF_RANGE)
        return None
    return min(value, count)


def _unique_label(c: Checker, label: str | None, values: list[Value], name: str) -> None:
    if label is None:
        return
    taken = next((v for v in values if _label_of(v).casefold() == label.casefold()), None)
    if taken is not None:
        c.fail(
            "label", f"{name} already has a value labelled {label!r} ({taken.key}).",
            ErrorCode.DUPLICATE,
        )


def _stage_only(c: Checker, data: dict[str, Any]) -> None:
    for column, field in STAGE_ONLY.items():
        if data.get(column) is not None:
            c.fail(field, f"{field} applies to sales stages only.", ErrorCode.INVALID)


def _renumber(values: list[Value], moved: Value, position: int) -> None:
    """Put `moved` at `position` and number the list 1..n, the others keeping their order."""
    ordered = [v for v in values if v is not moved]
    ordered.insert(position - 1, moved)
    for number, value in enumerate(ordered, 1):
        if value.position != number:
            value.position = number


@dataclass
class StageSettings:
    probability: Decimal | None
    forecast_category: str | None
    is_closed: bool
    is_won: bool


def _stage_settings(
    c: Checker, data: dict[str, Any], current: SalesStage | None
) -> StageSettings:
    """The stage fields after the change: given ones over current ones (new: defaults).

    A closed stage's probability is 100 (won) or 0 (lost), as every deal entering it gets;
    a forecast category not given follows a change of state (open PIPELINE, won CLOSED,
    lost OMITTED)."""
    if current is not None:  # null clears nothing: leave a field out to keep it
        for column in ("is_closed", "is_won"):
            if column in data and data[column] is None:
                c.required(STAGE_ONLY[column], None)
    closed = data.get("is_closed")
    won = data.get("is_won")
    is_closed = closed if closed is not None else (current.is_closed if current else False)
    is_won = won if won is not None else (current.is_won if current else False)
    problems = len(c.errors)
    if is_won and not is_closed:
        field = "isWon" if won is not None else "isClosed"
        c.fail(field, "A won stage is also closed: set isClosed: true with isWon: true.",
               ErrorCode.INVALID)
    state = _state(is_closed, is_won)
    probability = c.percent("probability", data.get("probability"))
    if "probability" in data and data["probability"] is None and current is not None:
        c.required("probability", None)
    if state in CLOSED_PROBABILITY:
        fixed = CLOSED_PROBABILITY[state]
        valid = len(c.errors) == problems  # nothing said about it yet
        if valid and probability is not None and probability != fixed:
            c.fail(
                "probability",
                f"A {STATE_WORDS[state]} stage's probability is always {fixed:.0f}; "
                f"got {probability}.",
                ErrorCode.INVALID,
            )
        probability = fixed
    elif probability is None:
        if current is None:
            c.fail("probability", "A new open stage needs its default probability (0–100).",
                   ErrorCode.REQUIRED)
        else:
            probability = current.probability
    category = data.get("forecast_category")
    if "forecast_category" in data and category is None and current is not None:
        c.required("forecastCategory", None)
    if category is None:
        same_state = current is not None and _state(current.is_closed, current.is_won) == state
        category = current.forecast_category if current and same_state else DEFAULT_CATEGORY[state]
    return StageSettings(probability, category, is_closed, is_won)


def _coverage(value: Value) -> set[str]:
    """What an active value provides: being active, and for stages open / won / lost."""
    if not value.is_active:
        return set()
    if isinstance(value, SalesStage):
        return {"ACTIVE", _state(value.is_closed, value.is_won)}
    return {"ACTIVE"}


def _keeps_coverage(
    c: Checker, name: str, values: list[Value], target: Value, after: set[str],
    data: dict[str, Any],
) -> None:
    """A picklist keeps an active value; the stages keep an open, a won and a lost one."""
    others: set[str] = set()
    for value in values:
        if value is not target:
            others |= _coverage(value)
    label = _label_of(target)
    for lost in sorted(_coverage(target) - after - others):
        if lost == "ACTIVE":
            if name == SALES_STAGE_PICKLIST:
                continue  # the three states below say it better
            c.fail(
                "isActive",
                f"{label!r} is the last active value of {name}; a picklist keeps at least one "
                "active value. Add or reactivate another value first.",
                ErrorCode.INVALID,
            )
            continue
        if "ACTIVE" not in after:
            field = "isActive"
        elif lost == "OPEN":
            field = "isClosed"
        elif lost == "WON":
            field = "isWon" if data.get("is_won") is not None else "isClosed"
        else:
            field = "isWon" if "WON" in after else "isClosed"
        c.fail(
            field,
            f"{label!r} is the last active {STATE_WORDS[lost]} stage; the sales process keeps "
            "at least one open, one won and one lost stage. Add or change another stage first.",
            ErrorCode.INVALID,
        )


async def add_picklist_value(
    session: AsyncSession, viewer: Viewer, data: dict[str, Any]
) -> Value:
    """Add a value (admin), at `position` or last; the others keep their order."""
    viewer.require_admin()
    c = Checker(session, viewer)
    name = await _known_picklist(c, data.get("picklist"))
    key = _new_key(c, data.get("key"))
    label = c.text("label", data.get("label"), required=True, max_length=LABEL_MAX)
    values = await _values_for_edit(session, name) if name else []
    position = _position(c, data.get("position"), len(values) + 1)
    if name and key and any(v.key == key for v in values):
        c.fail("key", f"{name} already has a value {key!r}.", ErrorCode.DUPLICATE)
    if name:
        _unique_label(c, label, values, name)
    is_stage = name == SALES_STAGE_PICKLIST
    stage = _stage_settings(c, data, None) if is_stage else None
    if name and not is_stage:
        _stage_only(c, data)
    c.done()
    assert name and key and label
    value: Value
    if stage is not None:
        assert stage.probability is not None and stage.forecast_category is not None
        value = SalesStage(
            key=key, name=label, position=len(values) + 1, probability=stage.probability,
            forecast_category=stage.forecast_category, is_closed=stage.is_closed,
            is_won=stage.is_won, is_active=True,
        )
    else:
        value = PicklistValue(
            picklist=name, key=key, label=label, position=len(values) + 1, is_active=True
        )
    session.add(value)
    _renumber(values, value, position or len(values) + 1)
    record_change(session, viewer, "PICKLIST", name, key, "CREATE", None, snapshot(value))
    await session.flush()
    forget(session)  # cached picklists and stages are stale now
    return value


async def update_picklist_value(
    session: AsyncSession, viewer: Viewer, data: dict[str, Any]
) -> Value:
    """Relabel, move, (de)activate a value, or change a stage's settings (admin).

    Keys never change, so no record is touched: a relabelled value reads with its new label
    everywhere, a deactivated one stays on the records that have it (new writes refuse it),
    and a stage's new probability is the default of the next deals entering it."""
    viewer.require_admin()
    c = Checker(session, viewer)
    name = await _known_picklist(c, data.get("picklist"))
    given_key = data.get("key")
    key = given_key.strip() if isinstance(given_key, str) else None
    if not key:
        c.fail("key", "Say which value to change (its key).", ErrorCode.REQUIRED)
    values = await _values_for_edit(session, name) if name else []
    target = next((v for v in values if v.key == key), None) if name and key else None
    if name and key and target is None:
        c.fail("key", f"{name} has no value {key!r}.", ErrorCode.NOT_FOUND)
    label = None
    if "label" in data:
        label = c.text("label", data["label"], required=True, max_length=LABEL_MAX)
        if name and label is not None and target is not None:
            _unique_label(c, label, [v for v in values if v is not target], name)
    position = None
    if "position" in data:
        position = _position(c, c.required("position", data["position"]), len(values))
    is_active = target.is_active if target is not None else True
    if "is_active" in data:
        is_active = c.required("isActive", data["is_active"])
    is_stage = name == SALES_STAGE_PICKLIST
    stage = None
    if is_stage and isinstance(target, SalesStage):
        stage = _stage_settings(c, data, target)
    elif name and not is_stage:
        _stage_only(c, data)
    if target is not None and is_active is not None:
        after = {"ACTIVE"} if is_active else set()
        if stage is not None and is_active:
            after.add(_state(stage.is_closed, stage.is_won))
        _keeps_coverage(c, name or "", values, target, after, data)
    c.done()
    assert name and target is not None
    before = snapshot(target)
    if label is not None:
        if isinstance(target, SalesStage):
            target.name = label
        else:
            target.label = label
    target.is_active = bool(is_active)
    if isinstance(target, SalesStage) and stage is not None:
        assert stage.probability is not None and stage.forecast_category is not None
        target.probability = stage.probability
        target.forecast_category = stage.forecast_category
        target.is_closed = stage.is_closed
        target.is_won = stage.is_won
    if position is not None:
        _renumber(values, target, position)
    after_snapshot = snapshot(target)
    if after_snapshot != before:
        record_change(session, viewer, "PICKLIST", name, key, "UPDATE", before, after_snapshot)
    await session.flush()
    forget(session)  # cached picklists and stages are stale now
    return target
