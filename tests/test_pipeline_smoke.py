from __future__ import annotations

from pathlib import Path

# The SPA's pipeline query exactly as written (tests/queries/pipeline.graphql).
PIPELINE = (Path(__file__).parent / "queries" / "pipeline.graphql").read_text()


async def test_pipeline(team, factory, db, client_for, statements):
    rep = team["rep"]
    acc = await factory.account(rep, industry="TECHNOLOGY")
    camp = await factory.campaign(rep)
    prod = await factory.product(code="W-1")
    for i in range(7):
        opp = await factory.opportunity(rep, name=f"D{i}", account_id=acc.id, campaign_id=camp.id)
        await factory.quote(opp, [(prod, "2", "100.00", "10", "22")], is_synced=True)
    await db.commit()
    client = await client_for(rep)
    statements.count = 0
    data = await client.data(PIPELINE, {"first": 5})
    print(statements.count, statements.sql)
    conn = data["opportunities"]
    assert conn["totalCount"] == 7
    assert len(conn["edges"]) == 5
    node = conn["edges"][0]["node"]
    print(node)
    nxt = await client.data(PIPELINE, {"first": 5, "after": conn["pageInfo"]["endCursor"]})
    assert len(nxt["opportunities"]["edges"]) == 2
