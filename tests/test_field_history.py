"""Field history of deals (issue "The deal room", 3): every change of a tracked field
(amount, stage, probability, expected close date, assignee, account, campaign, custom fields)
records who, when, the old and the new value and the path that made it — a mutation, quote
sync, a CSV import, its undo — and nothing is recorded when nothing changed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import models
from models.base import utcnow
from resolvers import importing
from resolvers.ids import to_global_id
from resolvers.permissions import load_viewer
from resolvers.tx import begin_write

HISTORY = """
fragment History on Opportunity {
  version
  fieldHistory { field oldValue newValue source changedAt changedBy { username } }
}
"""

UPDATE = """
mutation Update($input: UpdateOpportunityInput!) {
  updateOpportunity(input: $input) {
    opportunity { ...History }
    userErrors { field code message }
  }
}
""" + HISTORY

CHANGE_STAGE = """
mutation Stage($input: ChangeOpportunityStageInput!) {
  changeOpportunityStage(input: $input) {
    opportunity { ...History }
    userErrors { field code message }
  }
}
""" + HISTORY

CREATE_QUOTE = """
mutation CreateQuote($input: CreateQuoteInput!) {
  createQuote(input: $input) {
    quote { id opportunity { ...History } }
    userErrors { field code message }
  }
}
""" + HISTORY

UPDATE_QUOTE = """
mutation UpdateQuote($input: UpdateQuoteInput!) {
  updateQuote(input: $input) {
    quote { opportunity { ...History } }
    userErrors { field code message }
  }
}
""" + HISTORY

SYNC_QUOTE = """
mutation SyncQuote($input: SyncQuoteInput!) {
  syncQuote(input: $input) {
    quote { opportunity { ...History } }
    userErrors { field code message }
  }
}
""" + HISTORY

DEAL = """
query Deal($id: ID!) { node(id: $id) { ...History } }
""" + HISTORY

CLOSE = dt.date.today() + dt.timedelta(days=40)


def gid(record: Any) -> str:
    return to_global_id(type(record).__name__, record.id)


def changes(deal: dict[str, Any]) -> list[tuple[str, Any, Any, str, str]]:
    """(field, old, new, source, who) of every entry, in the order given (newest first)."""
    return [
        (c["field"], c["oldValue"], c["newValue"], c["source"], c["changedBy"]["username"])
        for c in deal["fieldHistory"]
    ]


async def history_rows(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(models.FieldChange)) or 0)


async def test_an_update_records_every_tracked_field_with_who_when_old_and_new(
    team, factory, db, client_for
):
    # given
    rep = team["rep"]
    account = await factory.account(rep, "Acme")
    campaign = await factory.campaign(team["admin"], "Expo")
    deal = await factory.opportunity(rep, "Deal", amount="1000.00", close=CLOSE)
    await db.commit()
    client = await client_for(team["manager"])
    before = utcnow()

    # when
    body = await client.data(UPDATE, {"input": {
        "id": gid(deal), "amount": "2500.50", "expectedCloseDate": "2031-01-31",
        "probability": "35", "assignedToId": gid(team["rep2"]), "accountId": gid(account),
        "campaignId": gid(campaign), "nextStep": "Call", "name": "Renamed",
    }})

    # then: one entry per tracked field (name and next step are not tracked); references
    # travel as global ids
    deal_out = body["updateOpportunity"]["opportunity"]
    assert sorted(changes(deal_out)) == sorted([
        ("account", None, gid(account), "MUTATION", "manager"),
        ("amount", "1000.00", "2500.50", "MUTATION", "manager"),
        ("assignedTo", gid(rep), gid(team["rep2"]), "MUTATION", "manager"),
        ("campaign", None, gid(campaign), "MUTATION", "manager"),
        ("expectedCloseDate", CLOSE.isoformat(), "2031-01-31", "MUTATION", "manager"),
        ("probability", "10.00", "35.00", "MUTATION", "manager"),
    ])
    stamps = {dt.datetime.fromisoformat(c["changedAt"]) for c in deal_out["fieldHistory"]}
    assert len(stamps) == 1 and before <= stamps.pop() <= utcnow()


async def test_the_stored_values_are_plain_json_with_database_ids(team, factory, db, client_for):
    # given
    rep = team["rep"]
    account = await factory.account(rep, "Acme")
    deal = await factory.opportunity(rep)
    await db.commit()
    client = await client_for(rep)

    # when
    await client.data(UPDATE, {"input": {"id": gid(deal), "accountId": gid(account)}})

    # then
    row = (await db.scalars(select(models.FieldChange))).one()
    assert (row.field, row.old_value, row.new_value, row.source, row.changed_by_id) == (
        "account", None, account.id, "MUTATION", rep.id,
    )
    assert row.opportunity_id == deal.id


async def test_a_stage_change_records_the_stage_and_the_probability_it_brings(
    team, factory, db, client_for
):
    # given
    deal = await factory.opportunity(team["rep"], stage="PROSPECTING")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    body = await client.data(
        CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "NEGOTIATION_REVIEW"}}
    )

    # then
    assert sorted(changes(body["changeOpportunityStage"]["opportunity"])) == [
        ("probability", "10.00", "80.00", "MUTATION", "rep"),
        ("salesStage", "PROSPECTING", "NEGOTIATION_REVIEW", "MUTATION", "rep"),
    ]


async def test_history_is_newest_first_across_writes(team, factory, db, client_for):
    # given
    deal = await factory.opportunity(team["rep"], amount="100.00")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    for amount in ("200.00", "300.00", "400.00"):
        await client.data(UPDATE, {"input": {"id": gid(deal), "amount": amount}})

    # then
    deal_out = (await client.data(DEAL, {"id": gid(deal)}))["node"]
    assert [(c[1], c[2]) for c in changes(deal_out)] == [
        ("300.00", "400.00"), ("200.00", "300.00"), ("100.00", "200.00"),
    ]
    stamps = [c["changedAt"] for c in deal_out["fieldHistory"]]
    assert stamps == sorted(stamps, reverse=True)


async def test_nothing_changed_records_nothing(team, factory, db, client_for):
    # given
    account = await factory.account(team["rep"])
    deal = await factory.opportunity(
        team["rep"], amount="1000.00", close=CLOSE, account_id=account.id
    )
    await db.commit()
    client = await client_for(team["rep"])

    # when: the same values again, and the stage it already has
    body = await client.data(UPDATE, {"input": {
        "id": gid(deal), "amount": "1000", "expectedCloseDate": CLOSE.isoformat(),
        "accountId": gid(account), "assignedToId": gid(team["rep"]),
    }})
    staged = await client.data(CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "PROSPECTING"}})

    # then
    assert body["updateOpportunity"]["opportunity"] == {"version": 1, "fieldHistory": []}
    assert staged["changeOpportunityStage"]["opportunity"]["fieldHistory"] == []
    assert await history_rows(db) == 0


async def test_untracked_fields_change_the_version_but_record_no_history(
    team, factory, db, client_for
):
    # given
    deal = await factory.opportunity(team["rep"])
    await db.commit()
    client = await client_for(team["rep"])

    # when
    body = await client.data(UPDATE, {"input": {"id": gid(deal), "nextStep": "Send offer"}})

    # then
    assert body["updateOpportunity"]["opportunity"] == {"version": 2, "fieldHistory": []}


async def test_a_refused_update_records_nothing(team, factory, db, client_for):
    # given
    deal = await factory.opportunity(team["rep"])
    await db.commit()
    client = await client_for(team["rep"])

    # when: a good amount beside an unknown stage
    body = await client.data(UPDATE, {"input": {
        "id": gid(deal), "amount": "5", "salesStage": "NO_SUCH_STAGE",
    }})

    # then
    assert body["updateOpportunity"]["userErrors"]
    assert await history_rows(db) == 0


async def test_custom_field_changes_are_recorded_under_their_key(team, factory, db, client_for):
    # given
    admin = team["admin"]
    for position, (key, kind) in enumerate((("cf_region", "TEXT"), ("cf_score", "INTEGER"))):
        db.add(models.CustomFieldDefinition(
            entity="OPPORTUNITY", key=key, label=key[3:].title(), type=kind, required=False,
            is_active=True, position=position, maps_to={}, created_by_id=admin.id,
            updated_by_id=admin.id,
        ))
    deal = await factory.opportunity(team["rep"], custom_fields={"cf_region": "Nord"})
    await db.commit()
    client = await client_for(team["rep"])

    # when
    body = await client.data(UPDATE, {"input": {"id": gid(deal), "customFields": [
        {"key": "cf_region", "value": "Sud"}, {"key": "cf_score", "value": 7},
    ]}})
    cleared = await client.data(UPDATE, {"input": {"id": gid(deal), "customFields": [
        {"key": "cf_region", "value": None},
    ]}})

    # then
    assert sorted(changes(body["updateOpportunity"]["opportunity"])) == [
        ("cf_region", "Nord", "Sud", "MUTATION", "rep"),
        ("cf_score", None, 7, "MUTATION", "rep"),
    ]
    assert changes(cleared["updateOpportunity"]["opportunity"])[0] == (
        "cf_region", "Sud", None, "MUTATION", "rep",
    )


async def test_quote_sync_records_the_amount_it_sets(team, factory, db, client_for):
    # given
    deal = await factory.opportunity(team["rep"], amount="50.00")
    product = await factory.product("Widget", "100.00")
    await db.commit()
    client = await client_for(team["rep"])
    line = {"productId": gid(product), "quantity": "3", "taxPercent": "0"}

    # when: a first quote becomes the synced one; its lines change; another one is synced
    created = await client.data(CREATE_QUOTE, {"input": {
        "opportunityId": gid(deal), "subject": "Offer", "lines": [line],
    }})
    first = created["createQuote"]["quote"]
    updated = await client.data(UPDATE_QUOTE, {"input": {
        "id": first["id"], "lines": [{**line, "quantity": "5"}],
    }})
    other = await client.data(CREATE_QUOTE, {"input": {
        "opportunityId": gid(deal), "subject": "Cheaper", "sync": False,
        "lines": [{**line, "quantity": "1"}],
    }})
    synced = await client.data(SYNC_QUOTE, {"input": {
        "quoteId": other["createQuote"]["quote"]["id"],
    }})

    # then
    assert changes(first["opportunity"]) == [
        ("amount", "50.00", "300.00", "QUOTE_SYNC", "rep"),
    ]
    assert changes(updated["updateQuote"]["quote"]["opportunity"])[0] == (
        "amount", "300.00", "500.00", "QUOTE_SYNC", "rep",
    )
    assert len(changes(other["createQuote"]["quote"]["opportunity"])) == 2  # unsynced: none
    assert changes(synced["syncQuote"]["quote"]["opportunity"])[0] == (
        "amount", "500.00", "100.00", "QUOTE_SYNC", "rep",
    )


async def _import(
    sessions: async_sessionmaker[AsyncSession], user: models.User, csv: str,
    job_id: int | None = None,
) -> importing.Report:
    async with sessions() as session:
        viewer = await load_viewer(session, user, "PRIVATE")
    return await importing.import_opportunities(
        sessions, viewer, csv.encode(),
        importing.Options(match=("name",), duplicates="overwrite"), job_id=job_id,
    )


async def test_an_import_that_overwrites_a_deal_records_source_import(
    team, factory, db, sessions, client_for
):
    # given
    deal = await factory.opportunity(
        team["rep"], "Fiat fleet", "PROSPECTING", amount="1000.00", close=CLOSE
    )
    untouched = await factory.opportunity(team["rep"], "Other", amount="7.00")
    await db.commit()
    csv = (
        "Opportunity Name,Amount,Sales Stage,Expected Close Date\n"
        "Fiat fleet,\"1,500.00\",Qualification,2031-02-28\n"
        "New deal,10,Prospecting,2031-02-28\n"
    )

    # when
    report = await _import(sessions, team["rep"], csv)

    # then: the overwritten deal's changes, by the importing user; the new one records none
    assert (report.created, report.updated, report.failed) == (1, 1, 0), report.errors
    client = await client_for(team["manager"])
    deal_out = (await client.data(DEAL, {"id": gid(deal)}))["node"]
    assert sorted(changes(deal_out)) == [
        ("amount", "1000.00", "1500.00", "IMPORT", "rep"),
        ("expectedCloseDate", CLOSE.isoformat(), "2031-02-28", "IMPORT", "rep"),
        ("probability", "10.00", "20.00", "IMPORT", "rep"),
        ("salesStage", "PROSPECTING", "QUALIFICATION", "IMPORT", "rep"),
    ]
    assert (await client.data(DEAL, {"id": gid(untouched)}))["node"]["fieldHistory"] == []
    assert await history_rows(db) == 4


async def test_an_import_that_changes_nothing_records_nothing(team, factory, db, sessions):
    # given
    await factory.opportunity(team["rep"], "Fiat fleet", amount="1000.00", close=CLOSE)
    await db.commit()
    csv = f"Opportunity Name,Amount,Expected Close Date\nFiat fleet,1000,{CLOSE.isoformat()}\n"

    # when
    report = await _import(sessions, team["rep"], csv)

    # then
    assert (report.created, report.failed) == (0, 0)
    assert await history_rows(db) == 0


async def test_undoing_an_import_records_the_values_put_back(
    team, factory, db, sessions, client_for
):
    # given: an import job that overwrote a deal
    deal = await factory.opportunity(team["rep"], "Fiat fleet", amount="1000.00", close=CLOSE)
    await db.commit()
    async with sessions() as session:
        viewer = await load_viewer(session, team["rep"], "PRIVATE")
        job = await importing.start_job(session, viewer, "deals.csv", importing.Options())
        await session.commit()
        job_id = job.id
    report = await _import(
        sessions, team["rep"], "Opportunity Name,Amount\nFiat fleet,2000\n", job_id=job_id
    )
    async with sessions() as session:
        job = await session.get(models.ImportJob, job_id)
        assert job is not None
        importing.finish_job(job, report)
        await session.commit()

    # when: it is undone
    async with sessions() as session:
        viewer = await load_viewer(session, team["rep"], "PRIVATE")
        await begin_write(session)
        await importing.undo_import(session, viewer, job_id)
        await session.commit()

    # then
    client = await client_for(team["manager"])
    deal_out = (await client.data(DEAL, {"id": gid(deal)}))["node"]
    assert changes(deal_out) == [
        ("amount", "2000.00", "1000.00", "UNDO", "rep"),
        ("amount", "1000.00", "2000.00", "IMPORT", "rep"),
    ]


async def test_only_a_viewer_who_sees_the_deal_sees_its_history(team, factory, db, client_for):
    # given
    deal = await factory.opportunity(team["rep"], amount="1.00")
    await db.commit()
    await (await client_for(team["rep"])).data(
        UPDATE, {"input": {"id": gid(deal), "amount": "2"}}
    )

    # when
    other = await client_for(team["other_rep"])
    body = await other.data(DEAL, {"id": gid(deal)})

    # then
    assert body["node"] is None
