"""The read executor (issue 14): planned execution of read-only queries, between `server/`
(which asks it to answer) and `schema/` (whose field declarations it compiles into set-based
statements through `resolvers/`)."""

from planner.core import Fallback, OperationPlan, Plans, Unsupported

__all__ = ["Fallback", "OperationPlan", "Plans", "Unsupported"]
