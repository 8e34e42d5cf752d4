"""Every SPA query shape (bench/shapes/, tests/queries/shapes/, the pipeline page) is planned:
answered as graphql-core answers it, byte for byte, with the same number of statements
whatever its page size (36 deals in all: pages of 20 and 36 reach every relation), under every
role."""

from __future__ import annotations

from pathlib import Path

import pytest

import models
from tests import test_planner
from tests.test_planner import compare, count, plans_of
from tests.test_query_count import seed_deals

apps = test_planner.apps  # the fixtures: the planner's app and graphql-core's, and clients
clients = test_planner.clients

QUERIES = Path(__file__).parent / "queries"
BENCH = Path(__file__).parent.parent / "bench" / "shapes"  # beside their PostGraphile twins
SHAPES = {
    path.stem: path.read_text()
    for path in [
        QUERIES / "pipeline.graphql", *sorted((QUERIES / "shapes").glob("*.graphql")),
        *sorted(p for p in BENCH.glob("*.graphql") if not p.stem.endswith(".postgraphile")),
    ]
}


@pytest.fixture
async def rich(team, factory, db) -> None:
    """Deals of three owners with accounts, campaigns, contacts, quotes and lines, and
    comments on some."""
    deals = await seed_deals(factory, [team["rep"], team["rep2"], team["other_rep"]], 12,
                             accounts=4)
    for n, deal in enumerate(deals[::3]):
        db.add(models.Comment(entity="OPPORTUNITY", record_id=deal.id, text=f"note {n}",
                              author_id=deal.assigned_to_id))
    await db.commit()


@pytest.mark.no_database
def test_every_shape_is_here() -> None:
    assert {"pipeline", "accounts_deals", "campaigns", "deal_detail", "deal_room"} <= set(SHAPES)


@pytest.mark.parametrize("role", ["admin", "manager", "rep"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_a_shape_is_planned_in_constant_statements(shape, role, apps, rich, clients):
    both = await clients(role)
    plans = plans_of(apps)
    query = SHAPES[shape]
    counts = {}
    for first in (2, 20, 36):
        before = plans.stats["planned"]
        _, _, difference = await compare(both, query, {"first": first}, times=2)
        assert difference is None, difference
        assert plans.stats["planned"] == before + 2, dict(plans.unsupported)
        counts[first] = (await count(apps, "on", both.on, query, {"first": first})).count
    resolved = (await count(apps, "off", both.off, query, {"first": 36})).count
    print(f"{shape} as {role}: {counts} statements planned, {resolved} by graphql-core")
    # (a relation with no rows on a small page sends no statement)
    assert counts[2] <= counts[20] == counts[36], counts
    assert counts[36] <= resolved
