"""Collects every problem of a write before anything changes (one Checker per mutation)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Currency, PicklistValue, SalesStage, User
from resolvers.cache import cached, store
from resolvers.errors import ErrorCode, FieldError, RequestError, ValidationFailed
from resolvers.ids import pk_of
from resolvers.kinds import KINDS
from resolvers.permissions import Viewer

MAX_MONEY = Decimal("9999999999999999.99")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Path = Sequence[str]
FieldPath = str | Sequence[str]  # a field name, or a path below the root for nested input


class Checker:
    """Validates input fields, remembering each failure with its path into the input."""

    def __init__(self, session: AsyncSession, viewer: Viewer, root: Path = ("input",)) -> None:
        self.session = session
        self.viewer = viewer
        self.root = tuple(root)
        self.errors: list[FieldError] = []

    def path(self, *names: str | int) -> list[str]:
        return [*self.root, *(str(n) for n in names)]

    def fail(self, field: FieldPath, message: str, code: ErrorCode) -> None:
        names = [field] if isinstance(field, str) else list(field)
        self.errors.append(FieldError(self.path(*names), message, code))

    def done(self) -> None:
        """Raise every collected problem at once (nothing has been written yet)."""
        if self.errors:
            raise ValidationFailed(list(self.errors))

    # --- scalar fields -----------------------------------------------------------------

    def text(
        self, field: FieldPath, value: str | None, *, required: bool = False, max_length: int = 255
    ) -> str | None:
        """Trimmed text; blank counts as missing."""
        cleaned = value.strip() if isinstance(value, str) else None
        if not cleaned:
            if required:
                self.fail(field, f"{_label(field)} is required.", ErrorCode.REQUIRED)
            return None
        if len(cleaned) > max_length:
            self.fail(
                field,
                f"{_label(field)} is {len(cleaned)} characters long; at most {max_length}.",
                ErrorCode.TOO_LONG,
            )
        return cleaned

    def required(self, field: FieldPath, value: Any) -> Any:
        if value is None:
            self.fail(field, f"{_label(field)} is required.", ErrorCode.REQUIRED)
        return value

    def number(
        self,
        field: FieldPath,
        value: Decimal | None,
        *,
        minimum: Decimal | None = Decimal(0),
        maximum: Decimal | None = MAX_MONEY,
        exclusive_minimum: bool = False,
        places: int = 2,
    ) -> Decimal | None:
        if value is None:
            return None
        try:
            exponent = value.as_tuple().exponent
            too_precise = isinstance(exponent, int) and -exponent > places
        except InvalidOperation:  # pragma: no cover - the scalar refuses non-finite input
            too_precise = True
        if too_precise:
            self.fail(field, f"{_label(field)} takes at most {places} decimals.", ErrorCode.INVALID)
        if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
            bound = "greater than" if exclusive_minimum else "at least"
            self.fail(
                field, f"{_label(field)} must be {bound} {minimum}; got {value}.",
                ErrorCode.OUT_OF_RANGE,
            )
        if maximum is not None and value > maximum:
            self.fail(
                field, f"{_label(field)} must be at most {maximum}; got {value}.",
                ErrorCode.OUT_OF_RANGE,
            )
        return value if too_precise else value.quantize(Decimal(1).scaleb(-places))

    def percent(self, field: FieldPath, value: Decimal | None) -> Decimal | None:
        return self.number(field, value, maximum=Decimal(100))

    # --- values that live in the database ------------------------------------------------

    async def picklist(self, field: FieldPath, name: str, key: str | None) -> str | None:
        """An active key of a picklist (a blank key clears the field)."""
        key = key.strip() if isinstance(key, str) else None
        if not key:
            return None
        values = await picklist_values(self.session, name)
        if key not in values:
            active = ", ".join(k for k, on in values.items() if on)
            self.fail(
                field, f"{key!r} is not a value of {name}; use one of: {active}.",
                ErrorCode.INVALID,
            )
            return None
        if not values[key]:
            self.fail(field, f"{key!r} is no longer an active value of {name}.", ErrorCode.INACTIVE)
            return None
        return key

    async def stage(
        self, field: FieldPath, key: str | None, *, required: bool = True
    ) -> SalesStage | None:
        key = key.strip() if isinstance(key, str) else None
        if not key:
            if required:
                self.fail(field, "A sales stage is required.", ErrorCode.REQUIRED)
            return None
        stages = await all_stages(self.session)
        stage = stages.get(key)
        if stage is None:
            active = ", ".join(k for k, s in stages.items() if s.is_active)
            self.fail(
                field, f"{key!r} is not a sales stage; use one of: {active}.", ErrorCode.INVALID
            )
            return None
        if not stage.is_active:
            self.fail(field, f"Sales stage {key!r} is no longer active.", ErrorCode.INACTIVE)
            return None
        return stage

    async def currency(self, field: FieldPath, code: str | None) -> str | None:
        code = code.strip().upper() if isinstance(code, str) else None
        if not code:
            return None
        codes = await cached(self.session, "currencies", self._currency_codes)
        if code not in codes:
            self.fail(
                field, f"Unknown currency {code!r}; known: {', '.join(codes)}.", ErrorCode.INVALID
            )
            return None
        return code

    async def _currency_codes(self) -> list[str]:
        stmt = select(Currency.code).order_by(Currency.code)
        return list((await self.session.scalars(stmt)).all())

    async def reference(self, field: FieldPath, type_name: str, global_id: str | None) -> Any:
        """The record a `...Id` input names, if the viewer may see it; NOT_FOUND otherwise."""
        if global_id is None:
            return None
        pk = pk_of(global_id, type_name)
        known = store(self.session).setdefault("records", {})
        record = known.get((type_name, pk))
        if record is None and pk is not None:
            kind = KINDS[type_name]
            stmt = select(kind.model).where(kind.model.id == pk, *kind.visible(self.viewer))
            record = (await self.session.scalars(stmt)).first()
            if record is not None:
                known[(type_name, pk)] = record
        if record is None:
            self.fail(field, f"No {type_name.lower()} with id {global_id!r}.", ErrorCode.NOT_FOUND)
        return record

    async def assignee(self, field: FieldPath, global_id: str | None) -> User | None:
        """A user the viewer may hand records to: themselves or their team (admins: anyone)."""
        user: User | None = await self.reference(field, "User", global_id)
        if user is None:
            return None
        if not user.is_active:
            self.fail(field, f"User {user.username!r} is inactive.", ErrorCode.INACTIVE)
            return None
        if not self.viewer.can_edit_owner(user.id):
            self.fail(
                field, f"You may not assign records to {user.username!r}.",
                ErrorCode.PERMISSION_DENIED,
            )
            return None
        return user


def remember(session: AsyncSession, type_name: str, records: Sequence[Any]) -> None:
    """Records the viewer may see, looked up in bulk, so that references to them in many
    rows cost no query (imports)."""
    known = store(session).setdefault("records", {})
    for record in records:
        known[(type_name, record.id)] = record


async def picklist_values(session: AsyncSession, name: str) -> dict[str, bool]:
    """{key: is_active} of a picklist, in order (cached for the session)."""

    async def load() -> dict[str, bool]:
        stmt = (
            select(PicklistValue.key, PicklistValue.is_active)
            .where(PicklistValue.picklist == name)
            .order_by(PicklistValue.position)
        )
        return {key: active for key, active in await session.execute(stmt)}

    return await cached(session, ("picklist", name), load)


async def refuse_unknown_keys(
    session: AsyncSession, given: list[tuple[str, str, tuple[str, ...]]]
) -> None:
    """Refuse (RequestError, BAD_USER_INPUT) filter values that are no key of their picklist:
    `given` holds (filter field, picklist name, keys). Deactivated keys are known: records
    keep them. The sales stages are the picklist "salesStage"."""
    for field, name, keys in given:
        stages = name == "salesStage"
        known = list(await all_stages(session) if stages else await picklist_values(session, name))
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise RequestError(
                f"Unknown {field} key(s) in the filter: {', '.join(map(repr, unknown))}; "
                f"the known keys are {', '.join(known)}."
            )


async def all_stages(session: AsyncSession) -> dict[str, SalesStage]:
    """Sales stages by key, in order (cached for the session)."""

    async def load() -> dict[str, SalesStage]:
        stmt = select(SalesStage).order_by(SalesStage.position)
        return {s.key: s for s in (await session.scalars(stmt)).all()}

    return await cached(session, "stages", load)


def _label(field: FieldPath) -> str:
    """'expectedCloseDate' -> 'Expected close date' (the last name of a path)."""
    if not isinstance(field, str):
        field = field[-1]
    words: list[str] = []
    for ch in field:
        if ch.isupper() and words:
            words.append(" ")
        words.append(ch.lower())
    text = "".join(words)
    return text[:1].upper() + text[1:]
