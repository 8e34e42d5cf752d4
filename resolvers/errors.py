"""Business error codes and the exceptions resolvers raise; the schema turns them into data."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ErrorCode(StrEnum):
    REQUIRED = "REQUIRED"
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_CONVERTED = "ALREADY_CONVERTED"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    AMOUNT_FROM_QUOTE = "AMOUNT_FROM_QUOTE"
    DUPLICATE = "DUPLICATE"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    INACTIVE = "INACTIVE"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    TOO_LARGE = "TOO_LARGE"
    FIELD_HIDDEN = "FIELD_HIDDEN"


@dataclass(frozen=True)
class FieldError:
    field: list[str] | None
    message: str
    code: ErrorCode


@dataclass
class ValidationFailed(Exception):
    """A refused write: every problem found, reported together."""

    errors: list[FieldError] = field(default_factory=list)


class RequestError(Exception):
    """A refused request (bad argument, limit); a top-level error with extensions.code."""

    def __init__(self, message: str, code: str = "BAD_USER_INPUT") -> None:
        super().__init__(message)
        self.code = code


class Forbidden(RequestError):
    """An admin-only operation attempted by someone else."""

    def __init__(self, message: str = "Only an administrator may do this.") -> None:
        super().__init__(message, "FORBIDDEN")
