"""The recycle bin (API.md "Corrections to the lifecycle"): `deletedOpportunities` lists the
deleted deals the viewer could see, newest deletion first, and `purgeOpportunity` (admins
only) removes one for good with everything that belongs to it alone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select, update

import models
from models.base import Base
from resolvers import opportunity as rules
from resolvers.ids import to_global_id

BIN = """
query Bin($first: Int, $after: String, $last: Int, $before: String) {
  deletedOpportunities(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { name deletedAt } }
    nodes { number assignedTo { username } quotes { subject } contact { lastName } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

LIVE = """
query Live { opportunities(first: 50) { totalCount nodes { name deletedAt } } }
"""

DELETE = """
mutation Delete($id: ID!) {
  deleteOpportunity(input: {id: $id}) { deletedId userErrors { field code } }
}
"""

RESTORE = """
mutation Restore($id: ID!) {
  restoreOpportunity(input: {id: $id}) { opportunity { name deletedAt } userErrors { code } }
}
"""

PURGE = """
mutation Purge($id: ID!) {
  purgeOpportunity(input: {id: $id}) { purgedId userErrors { field message code } }
}
"""

AUDIT = """
query Audit {
  configurationChanges(first: 10, kind: RECYCLE_BIN) {
    nodes { kind scope key action before after changedBy { username } }
  }
}
"""

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def gid(record: Any) -> str:
    return to_global_id(type(record).__name__, record.id)


async def bin_deal(db: Any, opp: models.Opportunity, hours_ago: int) -> None:
    await db.execute(
        update(models.Opportunity).where(models.Opportunity.id == opp.id)
        .values(deleted_at=NOW - dt.timedelta(hours=hours_ago))
    )


# --- deletedOpportunities --------------------------------------------------------------------


@pytest.fixture
async def binned(team, factory, db) -> dict[str, Any]:
    """rep's deals A (deleted 3h ago), B (1h ago), C (2h ago) and Live; other_rep's X (0h)."""
    deals = {}
    for name, owner in (("A", "rep"), ("B", "rep"), ("C", "rep"), ("Live", "rep"),
                        ("X", "other_rep")):
        deals[name] = await factory.opportunity(team[owner], name=name)
    for name, hours in (("A", 3), ("B", 1), ("C", 2), ("X", 0)):
        await bin_deal(db, deals[name], hours)
    await db.commit()
    return deals


@pytest.mark.parametrize(("viewer", "expected"), [
    ("rep", ["B", "C", "A"]),
    ("manager", ["B", "C", "A"]),
    ("other_rep", ["X"]),
    ("rep2", []),
    ("admin", ["X", "B", "C", "A"]),
])
async def test_the_bin_lists_the_deleted_deals_one_could_see_newest_deletion_first(
    viewer, expected, team, binned, client_for
):
    # given
    client = await client_for(team[viewer])

    # when
    data = (await client.data(BIN, {"first": 10}))["deletedOpportunities"]

    # then
    assert [e["node"]["name"] for e in data["edges"]] == expected
    assert data["totalCount"] == len(expected)
    assert all(e["node"]["deletedAt"] is not None for e in data["edges"])
    live = (await client.data(LIVE))["opportunities"]
    assert all(n["deletedAt"] is None for n in live["nodes"])
    assert ("Live" in [n["name"] for n in live["nodes"]]) == (viewer in ("rep", "manager",
                                                                         "admin"))


async def test_the_bin_pages_by_cursor_both_ways(team, binned, client_for):
    # given
    client = await client_for(team["admin"])

    # when
    first = (await client.data(BIN, {"first": 2}))["deletedOpportunities"]
    rest = (await client.data(
        BIN, {"first": 2, "after": first["pageInfo"]["endCursor"]}
    ))["deletedOpportunities"]
    back = (await client.data(
        BIN, {"last": 2, "before": rest["pageInfo"]["startCursor"]}
    ))["deletedOpportunities"]

    # then
    names = [[e["node"]["name"] for e in page["edges"]] for page in (first, rest, back)]
    assert names == [["X", "B"], ["C", "A"], ["X", "B"]]
    assert (first["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasNextPage"]) == (True, False)
    assert rest["pageInfo"]["hasPreviousPage"] is True
    assert rest["totalCount"] == 4


@pytest.mark.parametrize("bad", ["other list's cursor", "garbage cursor", "page too large"])
async def test_the_bin_refuses_bad_paging_arguments(bad, team, binned, client_for):
    # given
    client = await client_for(team["admin"])
    live = await client.data("{ opportunities(first: 1) { pageInfo { endCursor } } }")
    variables = {
        "other list's cursor": {"first": 1,
                                "after": live["opportunities"]["pageInfo"]["endCursor"]},
        "garbage cursor": {"first": 1, "after": "bm90IGEgY3Vyc29y"},
        "page too large": {"first": 101},
    }[bad]

    # when
    body = await client.query(BIN, variables)

    # then
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert (await client.data(BIN, {"first": 1}))["deletedOpportunities"]["totalCount"] == 4


async def test_a_deal_enters_the_bin_on_delete_and_leaves_it_on_restore(
    team, factory, db, client_for
):
    # given
    opp = await factory.opportunity(team["rep"], name="Coming and going")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    await client.data(DELETE, {"id": gid(opp)})
    deleted = (await client.data(BIN, {"first": 10}))["deletedOpportunities"]
    restored = await client.data(RESTORE, {"id": gid(opp)})
    after = (await client.data(BIN, {"first": 10}))["deletedOpportunities"]

    # then
    assert [e["node"]["name"] for e in deleted["edges"]] == ["Coming and going"]
    at = dt.datetime.fromisoformat(deleted["edges"][0]["node"]["deletedAt"])
    assert abs(at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert restored["restoreOpportunity"]["opportunity"] == {
        "name": "Coming and going", "deletedAt": None,
    }
    assert (after["totalCount"], after["edges"]) == (0, [])


# --- purgeOpportunity ------------------------------------------------------------------------


async def furnish(factory: Any, db: Any, team: dict[str, Any], name: str,
                  shared: dict[str, Any]) -> models.Opportunity:
    """A deal of rep with a quote (two lines), two contact links, stage and field history, a
    comment with a reply, a document and an activity of its own and the shared ones, a
    converted lead and an import item."""
    rep = team["rep"]
    opp = await factory.opportunity(rep, name=name)
    await factory.quote(opp, [(shared["product"], "1", "10.00", "0", "0"),
                              (shared["product"], "2", "10.00", "0", "0")], f"{name} offer")
    contact = await factory.contact(rep, last_name=f"{name} contact")
    db.add_all([
        models.OpportunityContact(opportunity_id=opp.id, contact_id=contact.id, is_primary=True),
        models.OpportunityContact(opportunity_id=opp.id, contact_id=shared["contact"].id),
        models.FieldChange(opportunity_id=opp.id, field="name", old_value="x", new_value=name,
                           changed_by_id=rep.id),
    ])
    comment = models.Comment(entity="OPPORTUNITY", record_id=opp.id, author_id=rep.id,
                             text="first")
    db.add(comment)
    await db.flush()
    db.add(models.Comment(entity="OPPORTUNITY", record_id=opp.id, author_id=rep.id,
                          text="reply", reply_to_id=comment.id))
    own_doc = models.Document(title=f"{name} doc", filename="a.pdf", content_type="x/y", size=1,
                              sha256="0" * 64, created_by_id=rep.id)
    own_activity = models.Activity(type="CALL", subject=f"{name} call", assigned_to_id=rep.id,
                                   created_by_id=rep.id)
    db.add_all([own_doc, own_activity])
    await db.flush()
    for document in (own_doc, shared["document"]):
        db.add(models.DocumentLink(document_id=document.id, entity="OPPORTUNITY",
                                   record_id=opp.id))
    for activity in (own_activity, shared["activity"]):
        db.add(models.ActivityLink(activity_id=activity.id, entity="OPPORTUNITY",
                                   record_id=opp.id))
    await factory.lead(rep, last_name=f"{name} lead", is_converted=True,
                       converted_opportunity_id=opp.id)
    db.add(models.ImportItem(job_id=shared["job"].id, kind="OPPORTUNITY", record_id=opp.id,
                             action="CREATED"))
    await db.flush()
    return opp  # type: ignore[no-any-return]


@pytest.fixture
async def purgeable(team, factory, db) -> dict[str, Any]:
    """Two furnished deals of rep sharing a contact, a document and an activity (also on an
    account); "Doomed" is in the recycle bin, "Kept" is live."""
    rep = team["rep"]
    account = await factory.account(rep, name="Acme")
    shared_doc = models.Document(title="Shared doc", filename="s.pdf", content_type="x/y", size=1,
                                 sha256="1" * 64, created_by_id=rep.id)
    shared_activity = models.Activity(type="MEETING", subject="Shared meeting",
                                      assigned_to_id=rep.id, created_by_id=rep.id)
    job = models.ImportJob(created_by_id=rep.id, status="DONE")
    db.add_all([shared_doc, shared_activity, job])
    await db.flush()
    db.add(models.DocumentLink(document_id=shared_doc.id, entity="ACCOUNT", record_id=account.id))
    db.add(models.ActivityLink(activity_id=shared_activity.id, entity="ACCOUNT",
                               record_id=account.id))
    shared = {
        "product": await factory.product(), "contact": await factory.contact(rep, "Shared"),
        "document": shared_doc, "activity": shared_activity, "job": job,
    }
    doomed = await furnish(factory, db, team, "Doomed", shared)
    kept = await furnish(factory, db, team, "Kept", shared)
    await bin_deal(db, doomed, 1)
    await db.commit()
    return {"doomed": doomed, "kept": kept, "account": account, **shared}


async def footprint(db: Any, opp_id: int) -> dict[str, Any]:
    """Every row that belongs to or names one deal."""
    await db.commit()

    async def rows(stmt: Any) -> list[Any]:
        return [tuple(r) for r in (await db.execute(stmt)).all()]

    m = models
    quotes = select(m.Quote.id).where(m.Quote.opportunity_id == opp_id)
    found = {
        "deal": await rows(select(m.Opportunity.number, m.Opportunity.name)
                           .where(m.Opportunity.id == opp_id)),
        "quotes": await rows(select(m.Quote.subject).where(m.Quote.opportunity_id == opp_id)),
        "lines": await rows(select(m.QuoteLine.id, m.QuoteLine.quantity)
                            .where(m.QuoteLine.quote_id.in_(quotes)).order_by(m.QuoteLine.id)),
        "contacts": await rows(select(m.OpportunityContact.contact_id,
                                      m.OpportunityContact.is_primary)
                               .where(m.OpportunityContact.opportunity_id == opp_id)
                               .order_by(m.OpportunityContact.contact_id)),
        "stage history": await rows(select(m.StageChange.id)
                                    .where(m.StageChange.opportunity_id == opp_id)),
        "field history": await rows(select(m.FieldChange.id)
                                    .where(m.FieldChange.opportunity_id == opp_id)),
        "leads": await rows(select(m.Lead.last_name)
                            .where(m.Lead.converted_opportunity_id == opp_id)),
        "import items": await rows(select(m.ImportItem.id).where(
            m.ImportItem.kind == "OPPORTUNITY", m.ImportItem.record_id == opp_id)),
    }
    for name, model, link, owner in (
        ("comments", m.Comment, None, None),
        ("documents", m.Document, m.DocumentLink, m.DocumentLink.document_id),
        ("activities", m.Activity, m.ActivityLink, m.ActivityLink.activity_id),
    ):
        if link is None:
            stmt = select(model.text).where(model.entity == "OPPORTUNITY",
                                            model.record_id == opp_id)
        else:
            stmt = select(owner).where(link.entity == "OPPORTUNITY", link.record_id == opp_id)
        found[name] = sorted(await rows(stmt))
    return found


async def everything(db: Any) -> dict[str, int]:
    """Rows per table."""
    await db.commit()
    counts = {}
    for table in Base.metadata.sorted_tables:
        counts[table.name] = await db.scalar(select(func.count()).select_from(table))
    return counts


async def test_purge_removes_the_deal_and_what_belongs_to_it_alone(
    team, purgeable, db, client_for
):
    # given
    doomed, kept = purgeable["doomed"], purgeable["kept"]
    kept_before = await footprint(db, kept.id)
    assert all(kept_before.values())  # the furnished deal has a row of every kind
    assert all((await footprint(db, doomed.id)).values())
    rep = await client_for(team["rep"])
    shown_before = await rep.data(LIVE)
    admin = await client_for(team["admin"])
    tables_before = await everything(db)

    # when
    data = await admin.data(PURGE, {"id": gid(doomed)})

    # then
    assert data["purgeOpportunity"] == {"purgedId": gid(doomed), "userErrors": []}
    assert not any((await footprint(db, doomed.id)).values())
    assert await footprint(db, kept.id) == kept_before
    tables_after = await everything(db)
    changed = {t: tables_before[t] - n for t, n in tables_after.items() if n != tables_before[t]}
    assert changed == {
        "opportunities": 1, "quotes": 1, "quote_lines": 2, "opportunity_contacts": 2,
        "stage_changes": 1, "field_changes": 1, "comments": 2, "document_links": 2,
        "documents": 1, "activity_links": 2, "activities": 1, "import_items": 1,
        "configuration_changes": -1,
    }
    # what was shared stays, on its other records; the lead stays converted, without the deal
    lead = await db.scalar(select(models.Lead).where(models.Lead.last_name == "Doomed lead"))
    assert (lead.is_converted, lead.converted_opportunity_id) == (True, None)
    assert await db.get(models.Contact, purgeable["contact"].id) is not None
    # the live deals and their count are as they were (the owner counts' triggers)
    assert await rep.data(LIVE) == shown_before
    assert shown_before["opportunities"]["totalCount"] == 1
    counted = await db.scalar(select(models.OpportunityOwnerCount.live)
                              .where(models.OpportunityOwnerCount.owner_id == team["rep"].id))
    assert counted == 1
    assert (await admin.data(BIN, {"first": 10}))["deletedOpportunities"]["totalCount"] == 0


async def test_purge_is_audited_and_the_number_is_not_given_again(
    team, purgeable, db, client_for
):
    # given
    doomed = purgeable["doomed"]
    admin = await client_for(team["admin"])

    # when
    await admin.data(PURGE, {"id": gid(doomed)})
    created = await admin.data("""
      mutation { createOpportunity(input: {name: "Next", expectedCloseDate: "2030-01-01",
                                           salesStage: "PROSPECTING"}) {
        opportunity { number } userErrors { code } } }
    """)

    # then
    audit = (await admin.data(AUDIT))["configurationChanges"]["nodes"]
    assert audit == [{
        "kind": "RECYCLE_BIN", "scope": "OPPORTUNITY", "key": doomed.number, "action": "PURGE",
        "before": {
            "id": gid(doomed), "number": doomed.number, "name": "Doomed", "amount": "1000.00",
            "currency": "EUR", "salesStage": "PROSPECTING",
            "assignedToId": gid(team["rep"]),
            "deletedAt": (NOW - dt.timedelta(hours=1)).isoformat(),
        },
        "after": None, "changedBy": {"username": "admin"},
    }]
    number = created["createOpportunity"]["opportunity"]["number"]
    numbers = [doomed.number, purgeable["kept"].number, number]
    assert [int(n.removeprefix("POT")) for n in numbers] == sorted(
        int(n.removeprefix("POT")) for n in numbers
    )
    assert len(set(numbers)) == 3


@pytest.mark.parametrize("who", ["manager", "rep"])
async def test_purge_is_for_admins_only(who, team, purgeable, db, client_for):
    # given
    doomed = purgeable["doomed"]
    client = await client_for(team[who])
    before = await everything(db)

    # when
    body = await client.query(PURGE, {"id": gid(doomed)})

    # then
    assert body["data"] is None
    [error] = body["errors"]
    assert (error["extensions"]["code"], error["path"]) == ("FORBIDDEN", ["purgeOpportunity"])
    assert await everything(db) == before
    assert (await footprint(db, doomed.id))["deal"] == [(doomed.number, "Doomed")]


async def test_purge_refuses_a_live_deal(team, purgeable, db, client_for):
    # given
    kept = purgeable["kept"]
    admin = await client_for(team["admin"])
    before = await everything(db)

    # when
    data = await admin.data(PURGE, {"id": gid(kept)})

    # then
    payload = data["purgeOpportunity"]
    assert payload["purgedId"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "id"], "INVALID")
    ]
    assert "delete it first" in payload["userErrors"][0]["message"]
    assert await everything(db) == before


@pytest.mark.parametrize("given", [
    to_global_id("Opportunity", 987654), to_global_id("Account", 1), "not-an-id",
])
async def test_purge_answers_not_found_for_an_unknown_id(given, team, purgeable, db, client_for):
    # given
    admin = await client_for(team["admin"])
    before = await everything(db)

    # when
    data = await admin.data(PURGE, {"id": given})

    # then
    assert data["purgeOpportunity"]["purgedId"] is None
    assert [(e["field"], e["code"]) for e in data["purgeOpportunity"]["userErrors"]] == [
        (["input", "id"], "NOT_FOUND")
    ]
    assert await everything(db) == before


async def test_a_purged_deal_is_gone_for_restore_too(team, purgeable, db, client_for):
    # given
    doomed = purgeable["doomed"]
    admin = await client_for(team["admin"])
    await admin.data(PURGE, {"id": gid(doomed)})

    # when
    restored = await admin.data(RESTORE, {"id": gid(doomed)})
    again = await admin.data(PURGE, {"id": gid(doomed)})

    # then
    assert restored["restoreOpportunity"]["userErrors"] == [{"code": "NOT_FOUND"}]
    assert [e["code"] for e in again["purgeOpportunity"]["userErrors"]] == ["NOT_FOUND"]


@pytest.mark.no_database
def test_every_foreign_key_to_a_deal_is_handled_by_the_purge():
    # given: the columns the purge deletes by, and the lead's conversion that it clears
    handled = {(c.table.name, c.name) for c in rules.OWNED_BY_DEAL}
    handled.add(("leads", "converted_opportunity_id"))

    # when
    referring = {
        (table.name, fk.parent.name) for table in Base.metadata.sorted_tables
        for fk in table.foreign_keys if fk.column.table.name == "opportunities"
    }

    # then: a new table referring to deals must say what a purge does with its rows
    assert referring == handled
