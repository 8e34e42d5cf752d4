from __future__ import annotations


async def test_viewer(team, client_for):
    client = await client_for(team["rep"])
    data = await client.data("{ viewer { username role manager { username } } }")
    assert data["viewer"] == {"username": "rep", "role": "SALES_REP", "manager": {"username": "manager"}}
