"""What every mutation shares: UserError, the input-to-dict rule and the transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry

from resolvers import events
from resolvers.cache import forget
from resolvers.errors import ErrorCode, ValidationFailed
from resolvers.tx import begin_write
from schema.context import Info

T = TypeVar("T")

UserErrorCode = strawberry.enum(ErrorCode, name="UserErrorCode")


@strawberry.type(description="A refused input: which field, why, and a code to branch on.")
class UserError:
    field: list[str] | None = strawberry.field(description="Path into the input.")
    message: str
    code: UserErrorCode  # type: ignore[valid-type]


def provided(input: Any, *skip: str) -> dict[str, Any]:
    """The input's fields that the client sent (snake_case), null included, UNSET left out."""
    return {
        f.name: getattr(input, f.name)
        for f in dataclasses.fields(input)
        if f.name not in skip and getattr(input, f.name) is not strawberry.UNSET
    }


def given(value: T | None) -> T | None:
    """UNSET as None, for arguments where absent and null mean the same."""
    return None if value is strawberry.UNSET else value


async def mutate(info: Info, work: Callable[[], Awaitable[T]]) -> tuple[T | None, list[UserError]]:
    """Run `work` in one write transaction: committed when it succeeds, rolled back (nothing
    changed) when it refuses the input, which then comes back as `userErrors`."""
    context = info.context
    session = context.session
    await begin_write(session)
    forget(session)  # reference data is read afresh by every write
    events.discard(session)
    try:
        result = await work()
        await events.commit(session)  # and publish the events of what it committed
    except ValidationFailed as refused:
        forget(session)
        events.discard(session)
        await session.rollback()
        errors = [UserError(field=e.field, message=e.message, code=e.code) for e in refused.errors]
        return None, errors
    except BaseException:
        forget(session)
        events.discard(session)
        await session.rollback()
        raise
    forget(session)
    context.loaders = context.loaders.fresh()
    return result, []
