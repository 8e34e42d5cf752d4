"""Planned execution (issue 14): a read-only query is turned once into a plan (which set-based SQL
statements to run, and per-type writers for exactly the selected fields), cached, and then
answered by running the plan instead of resolving field by field in graphql-core.

The plan reads with the same rules as the resolvers (visibility, filters, ordering, keyset
paging from `resolvers/`; the relations' statements from `resolvers/loaders.py`; computed
fields through the same functions), over plain rows instead of ORM objects. An operation it
does not cover raises `Unsupported` while planning and runs normally; a request it cannot
finish exactly as graphql-core would (an error to report, a null in a non-null field) raises
`Fallback` and runs normally too. The test suite runs with DEALGRAPH_PLANNER=verify (every
query it sends that the planner covers is answered both ways and must give the same JSON),
and tests/test_planner.py compares generated queries with the planner on and off.
"""

from planner.cache import Plans
from planner.plans import Fallback, Unsupported
from planner.roots import OperationPlan

__all__ = ["Fallback", "OperationPlan", "Plans", "Unsupported"]
