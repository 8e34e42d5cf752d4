"""Timelines (issue "The deal room", 4): Opportunity.timeline, Account.timeline (its own
events and those of its deals the viewer may see) and Lead.timeline — one connection of
stage changes, field changes, activities, comments, documents, quotes and the lead
conversion, newest first (ties: kind, then id, newest first), keyset-paged both ways, with a
`types` filter, and nothing of a record the viewer may not see.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import models
from resolvers.ids import to_global_id

ITEM = """
fragment Item on TimelineItem {
  __typename
  ... on StageChange { toStage { key } changedAt }
  ... on FieldChange { field newValue changedAt }
  ... on Activity { subject createdAt }
  ... on Comment { text createdAt }
  ... on Document { title createdAt }
  ... on Quote { subject createdAt }
  ... on LeadConversion {
    convertedAt lead { lastName } account { name } contact { lastName }
    opportunity { name } convertedBy { username }
  }
}
"""

TIMELINE = """
query Timeline($id: ID!, $first: Int, $after: String, $last: Int, $before: String,
               $types: [TimelineItemType!]) {
  node(id: $id) {
    ... on TimelineRecord {
      timeline(first: $first, after: $after, last: $last, before: $before, types: $types) {
        edges { cursor node { ...Item } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        totalCount
      }
    }
  }
}
""" + ITEM

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def gid(record: Any) -> str:
    return to_global_id(type(record).__name__, record.id)


def label(node: dict[str, Any]) -> str:
    """A short name for an item: its kind and what tells it apart."""
    kind = node["__typename"]
    detail = {
        "StageChange": lambda n: n["toStage"]["key"],
        "FieldChange": lambda n: n["field"],
        "Activity": lambda n: n["subject"],
        "Comment": lambda n: n["text"],
        "Document": lambda n: n["title"],
        "Quote": lambda n: n["subject"],
        "LeadConversion": lambda n: n["lead"]["lastName"] if n["lead"] else "?",
    }[kind](node)
    return f"{kind}:{detail}"


def labels(timeline: dict[str, Any]) -> list[str]:
    return [label(edge["node"]) for edge in timeline["edges"]]


class Room:
    """Arranges deal-room rows with chosen times."""

    def __init__(self, db: Any, author: models.User) -> None:
        self.db = db
        self.author = author

    async def add(self, obj: Any) -> Any:
        self.db.add(obj)
        await self.db.flush()
        return obj

    async def stage(self, opp: models.Opportunity, to: str, when: dt.datetime) -> Any:
        return await self.add(models.StageChange(
            opportunity_id=opp.id, from_stage=opp.sales_stage, to_stage=to, amount=opp.amount,
            probability=opp.probability, expected_close_date=opp.expected_close_date,
            changed_by_id=self.author.id, changed_at=when,
        ))

    async def field(self, opp: models.Opportunity, name: str, when: dt.datetime) -> Any:
        return await self.add(models.FieldChange(
            opportunity_id=opp.id, field=name, old_value=None, new_value="x",
            changed_by_id=self.author.id, changed_at=when,
        ))

    async def activity(self, subject: str, when: dt.datetime, *on: Any, **kw: Any) -> Any:
        activity = await self.add(models.Activity(
            type="CALL", subject=subject, assigned_to_id=self.author.id,
            created_by_id=self.author.id, created_at=when, updated_at=when, **kw,
        ))
        for record in on:
            await self.add(models.ActivityLink(
                activity_id=activity.id, entity=type(record).__name__.upper(),
                record_id=record.id,
            ))
        return activity

    async def comment(self, record: Any, text: str, when: dt.datetime, **kw: Any) -> Any:
        return await self.add(models.Comment(
            entity=type(record).__name__.upper(), record_id=record.id,
            author_id=self.author.id, text=text, created_at=when, updated_at=when, **kw,
        ))

    async def document(self, title: str, when: dt.datetime, *on: Any) -> Any:
        document = await self.add(models.Document(
            title=title, filename=f"{title}.pdf", content_type="application/pdf", size=1,
            sha256="0" * 64, created_by_id=self.author.id, created_at=when, updated_at=when,
        ))
        for record in on:
            await self.add(models.DocumentLink(
                document_id=document.id, entity=type(record).__name__.upper(),
                record_id=record.id,
            ))
        return document


async def timeline_of(client: Any, record: Any, **variables: Any) -> dict[str, Any]:
    body = await client.data(TIMELINE, {"id": gid(record), **variables})
    assert body["node"] is not None
    return body["node"]["timeline"]  # type: ignore[no-any-return]


@pytest.fixture
async def deal_room(team, factory, db) -> dict[str, Any]:
    """A rep's deal that came from a converted lead, with one item of every kind."""
    rep = team["rep"]
    room = Room(db, rep)
    account = await factory.account(rep, "Acme")
    contact = await factory.contact(rep, "Rossi")
    deal = await factory.opportunity(rep, "Fiat fleet", account_id=account.id, created_at=at(1))
    first_stage = (await db.scalars(
        models.StageChange.__table__.select().where(
            models.StageChange.opportunity_id == deal.id)
    )).first()
    await db.execute(models.StageChange.__table__.update().where(
        models.StageChange.id == first_stage).values(changed_at=at(1)))
    lead = await factory.lead(
        rep, "Bianchi", is_converted=True, converted_at=at(0),
        converted_account_id=account.id, converted_contact_id=contact.id,
        converted_opportunity_id=deal.id,
    )
    await room.stage(deal, "QUALIFICATION", at(10))
    await room.field(deal, "amount", at(20))
    await room.activity("Call Mario", at(30), deal)
    await room.comment(deal, "Looks good", at(40))
    await room.document("Offer", at(50), deal)
    product = await factory.product()
    quote = await factory.quote(deal, [(product, "1", "10", "0", "0")], subject="Q1")
    quote.created_at = at(60)
    await db.commit()
    return {"deal": deal, "account": account, "lead": lead, "contact": contact, "room": room}


EVERYTHING = [
    "Quote:Q1", "Document:Offer", "Comment:Looks good", "Activity:Call Mario",
    "FieldChange:amount", "StageChange:QUALIFICATION", "StageChange:PROSPECTING",
    "LeadConversion:Bianchi",
]


# --- order and content ---------------------------------------------------------------------


async def test_an_opportunity_timeline_merges_every_kind_newest_first(
    team, deal_room, client_for
):
    # when
    timeline = await timeline_of(await client_for(team["rep"]), deal_room["deal"])

    # then
    assert labels(timeline) == EVERYTHING
    assert timeline["totalCount"] == 8
    conversion = timeline["edges"][-1]["node"]
    assert conversion == {
        "__typename": "LeadConversion", "convertedAt": at(0).isoformat(),
        "lead": {"lastName": "Bianchi"}, "account": {"name": "Acme"},
        "contact": {"lastName": "Rossi"}, "opportunity": {"name": "Fiat fleet"},
        "convertedBy": {"username": "rep"},
    }
    assert timeline["pageInfo"]["hasNextPage"] is False


async def test_the_types_filter_picks_kinds(team, deal_room, client_for):
    client = await client_for(team["rep"])

    only = await timeline_of(
        client, deal_room["deal"], types=["STAGE_CHANGE", "LEAD_CONVERSION", "QUOTE"]
    )
    nothing = await timeline_of(client, deal_room["deal"], types=[])

    assert labels(only) == [
        "Quote:Q1", "StageChange:QUALIFICATION", "StageChange:PROSPECTING",
        "LeadConversion:Bianchi",
    ]
    assert only["totalCount"] == 4
    assert (labels(nothing), nothing["totalCount"]) == ([], 0)


async def test_items_at_the_same_instant_order_by_kind_then_newest_id(
    team, factory, db, client_for
):
    # given: a comment, two field changes and an activity at one instant
    rep = team["rep"]
    room = Room(db, rep)
    deal = await factory.opportunity(rep, "Tie", created_at=at(-10))
    await db.execute(models.StageChange.__table__.update().values(changed_at=at(-10)))
    await room.comment(deal, "c", at(5))
    await room.field(deal, "f1", at(5))
    await room.field(deal, "f2", at(5))
    await room.activity("a", at(5), deal)
    await db.commit()

    # when
    timeline = await timeline_of(await client_for(rep), deal, first=4)

    # then
    assert labels(timeline) == [
        "Activity:a", "Comment:c", "FieldChange:f2", "FieldChange:f1",
    ]


# --- paging -------------------------------------------------------------------------------


async def test_paging_forward_and_backward_visits_every_item_once(
    team, deal_room, client_for
):
    client = await client_for(team["rep"])
    deal = deal_room["deal"]

    # forward, three at a time
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await timeline_of(client, deal, first=3, after=after)
        seen += labels(page)
        pages += 1
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["totalCount"] == 8
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert (seen, pages) == (EVERYTHING, 3)

    # backward from the end, three at a time
    back: list[str] = []
    before = None
    while True:
        page = await timeline_of(client, deal, last=3, before=before)
        back = labels(page) + back
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert back == EVERYTHING


async def test_cursors_are_stable_when_new_items_arrive(team, deal_room, db, client_for):
    # given: the first page read
    client = await client_for(team["rep"])
    deal = deal_room["deal"]
    first = await timeline_of(client, deal, first=2)

    # when: a new comment arrives at the top
    await deal_room["room"].comment(deal, "Newest", at(90))
    await db.commit()
    rest = await timeline_of(client, deal, first=10, after=first["pageInfo"]["endCursor"])

    # then: the next page goes on where the first ended
    assert labels(first) == EVERYTHING[:2]
    assert labels(rest) == EVERYTHING[2:]
    assert rest["totalCount"] == 9


async def test_bad_paging_arguments_are_refused(team, deal_room, client_for):
    client = await client_for(team["rep"])
    for variables in ({"first": 101}, {"after": "not-a-cursor"}, {"first": 1, "last": 1}):
        body = await client.query(TIMELINE, {"id": gid(deal_room["deal"]), **variables})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", variables


async def test_a_list_of_deals_loads_their_timelines_in_a_constant_number_of_queries(
    team, factory, db, client_for, statements
):
    # given
    rep = team["rep"]
    room = Room(db, rep)
    for i in range(6):
        deal = await factory.opportunity(rep, f"D{i}")
        await room.comment(deal, f"c{i}", at(i))
        await room.activity(f"a{i}", at(i), deal)
    await db.commit()
    client = await client_for(rep)
    query = """
    query($first: Int) { opportunities(first: $first) { nodes { name
      timeline(first: 2) { totalCount nodes { __typename } } } } }"""

    # when
    counts = []
    for first in (2, 6):
        statements.count = 0
        body = await client.data(query, {"first": first})
        counts.append(statements.count)
        assert all(len(n["timeline"]["nodes"]) == 2 for n in body["opportunities"]["nodes"])
        assert all(n["timeline"]["totalCount"] == 3 for n in body["opportunities"]["nodes"])

    # then
    assert counts[0] == counts[1], counts


# --- accounts and leads ---------------------------------------------------------------------


async def test_an_account_timeline_holds_its_own_events_and_its_deals(
    team, factory, db, client_for
):
    # given: an account with an item of its own, two deals, and what they share
    rep = team["rep"]
    room = Room(db, rep)
    account = await factory.account(rep, "Acme")
    a = await factory.opportunity(rep, "A", account_id=account.id, created_at=at(-5))
    b = await factory.opportunity(rep, "B", account_id=account.id, created_at=at(-5))
    await db.execute(models.StageChange.__table__.update().values(changed_at=at(-5)))
    await room.comment(account, "On the account", at(1))
    await room.field(a, "amount", at(2))
    await room.stage(b, "QUALIFICATION", at(3))
    await room.activity("Shared call", at(4), account, a, b)  # one activity, three links
    await room.document("Shared offer", at(5), a, b)
    other = await factory.account(rep, "Other")
    elsewhere = await factory.opportunity(rep, "Elsewhere", account_id=other.id)
    await room.comment(elsewhere, "Not here", at(6))
    await db.commit()

    # when
    timeline = await timeline_of(await client_for(rep), account)

    # then
    assert labels(timeline) == [
        "Document:Shared offer", "Activity:Shared call", "StageChange:QUALIFICATION",
        "FieldChange:amount", "Comment:On the account", "StageChange:PROSPECTING",
        "StageChange:PROSPECTING",
    ]
    assert timeline["totalCount"] == 7


async def test_an_account_timeline_leaves_out_deals_the_viewer_may_not_see(
    team, factory, db, client_for
):
    # given: the rep's account holds a deal of another team's rep, and a deleted deal
    rep, stranger = team["rep"], team["other_rep"]
    room = Room(db, rep)
    account = await factory.account(rep, "Acme")
    theirs = await factory.opportunity(stranger, "Theirs", account_id=account.id)
    binned = await factory.opportunity(
        rep, "Binned", account_id=account.id, deleted_at=at(100)
    )
    product = await factory.product()
    await factory.quote(theirs, [(product, "1", "1", "0", "0")], subject="Their quote")
    await room.comment(theirs, "Their comment", at(1))
    await room.comment(binned, "Binned comment", at(2))
    await room.comment(account, "Mine", at(3))
    await db.commit()

    # when
    rep_view = await timeline_of(await client_for(rep), account)
    admin_view = await timeline_of(await client_for(team["admin"]), account)

    # then
    assert labels(rep_view) == ["Comment:Mine"]
    assert "Comment:Their comment" in labels(admin_view)
    assert "Quote:Their quote" in labels(admin_view)
    assert "Comment:Binned comment" not in labels(admin_view)


async def test_a_lead_timeline_holds_its_deal_room_and_its_conversion(
    team, factory, db, client_for
):
    # given
    rep = team["rep"]
    room = Room(db, rep)
    lead = await factory.lead(rep, "Verdi", is_converted=True, converted_at=at(9))
    await room.comment(lead, "Called", at(1))
    await room.activity("Meeting", at(2), lead)
    await room.document("Card", at(3), lead)
    await room.comment(lead, "Deleted", at(4), deleted_at=at(5))
    await room.activity("Cancelled", at(6), lead, deleted_at=at(7))
    await db.commit()

    # when
    timeline = await timeline_of(await client_for(rep), lead)

    # then: no deleted items; the conversion made nothing visible (all fields null)
    assert labels(timeline) == [
        "LeadConversion:Verdi", "Document:Card", "Activity:Meeting", "Comment:Called",
    ]
    assert timeline["edges"][0]["node"]["opportunity"] is None
    assert timeline["edges"][0]["node"]["convertedBy"] is None


async def test_a_conversion_shows_only_when_the_viewer_may_see_the_lead(
    team, factory, db, client_for
):
    # given: a lead of another team converted into the rep's deal
    rep = team["rep"]
    deal = await factory.opportunity(rep, "Mine", created_at=at(-1))
    await factory.lead(
        team["other_rep"], "Hidden", is_converted=True, converted_at=at(0),
        converted_opportunity_id=deal.id,
    )
    await db.commit()

    # when
    rep_view = await timeline_of(await client_for(rep), deal, types=["LEAD_CONVERSION"])
    admin_view = await timeline_of(
        await client_for(team["admin"]), deal, types=["LEAD_CONVERSION"]
    )

    # then
    assert labels(rep_view) == []
    assert labels(admin_view) == ["LeadConversion:Hidden"]


async def test_the_timeline_of_a_deal_the_viewer_may_not_see_is_not_there(
    team, deal_room, client_for
):
    body = await (await client_for(team["other_rep"])).data(
        TIMELINE, {"id": gid(deal_room["deal"])}
    )
    assert body["node"] is None


# --- from the mutations -----------------------------------------------------------------------


async def test_writes_show_up_at_the_top(team, factory, db, client_for):
    # given
    rep = team["rep"]
    deal = await factory.opportunity(rep, "Live", created_at=at(0))
    await db.commit()
    client = await client_for(rep)

    # when
    await client.data(
        """mutation($input: ChangeOpportunityStageInput!) {
             changeOpportunityStage(input: $input) { userErrors { code } } }""",
        {"input": {"id": gid(deal), "stage": "NEEDS_ANALYSIS"}},
    )

    # then: the stage change and the field changes it brought, then creation
    timeline = await timeline_of(client, deal)
    assert sorted(labels(timeline)[:3]) == [
        "FieldChange:probability", "FieldChange:salesStage", "StageChange:NEEDS_ANALYSIS",
    ]
    assert labels(timeline)[3:] == ["StageChange:PROSPECTING"]
