"""Activities and comments on records, the deal room's history through lead conversion, and
the cost of the deal room's lists.

An activity (CALL, MEETING, TASK, EMAIL) relates to one or more opportunities, accounts,
contacts or leads and is visible when any of them is; creating one takes edit rights on every
record it names, changing, completing or deleting it edit rights on one it relates to. A
comment sits on one record, visible with it; its author alone changes its text, its author or
an admin deletes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

import models
from models.base import utcnow
from resolvers.ids import to_global_id
from tests.conftest import GraphQLClient
from tests.test_query_count import count_statements

ACTIVITY_FIELDS = """
  id type subject body status startAt dueAt completedAt createdAt updatedAt
  assignedTo { username } createdBy { username } relatedTo { id __typename }
"""

CREATE = f"""
mutation Create($input: CreateActivityInput!) {{
  createActivity(input: $input) {{
    activity {{ {ACTIVITY_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

UPDATE = f"""
mutation Update($input: UpdateActivityInput!) {{
  updateActivity(input: $input) {{
    activity {{ {ACTIVITY_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

COMPLETE = """
mutation Complete($id: ID!) {
  completeActivity(input: {id: $id}) {
    activity { id status completedAt }
    userErrors { field code message }
  }
}
"""

DELETE = """
mutation Delete($id: ID!) {
  deleteActivity(input: {id: $id}) { deletedId userErrors { field code message } }
}
"""

ACTIVITIES_OF = """
query ActivitiesOf($id: ID!, $status: ActivityStatus) {
  node(id: $id) {
    ... on DealRoomRecord {
      activities(first: 20, status: $status) { totalCount nodes { id subject status } }
    }
  }
}
"""

ACTIVITY = f"""
query Activity($id: ID!) {{ node(id: $id) {{ ... on Activity {{ {ACTIVITY_FIELDS} }} }} }}
"""

ROOT_ACTIVITIES = """
query Activities($filter: ActivityFilter) {
  activities(first: 50, filter: $filter) { totalCount nodes { subject } }
}
"""

COMMENT_FIELDS = """
  id text createdAt updatedAt author { username } replyTo { id text } record { id }
"""

CREATE_COMMENT = f"""
mutation CreateComment($input: CreateCommentInput!) {{
  createComment(input: $input) {{
    comment {{ {COMMENT_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

UPDATE_COMMENT = f"""
mutation UpdateComment($input: UpdateCommentInput!) {{
  updateComment(input: $input) {{
    comment {{ {COMMENT_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

DELETE_COMMENT = """
mutation DeleteComment($id: ID!) {
  deleteComment(input: {id: $id}) { deletedId userErrors { field code message } }
}
"""

COMMENTS_OF = f"""
query CommentsOf($id: ID!) {{
  node(id: $id) {{
    ... on DealRoomRecord {{ comments(first: 20) {{ totalCount nodes {{ {COMMENT_FIELDS} }} }} }}
  }}
}}
"""

CONVERT = """
mutation Convert($input: ConvertLeadInput!) {
  convertLead(input: $input) {
    account { id } contact { id } opportunity { id }
    userErrors { field code message }
  }
}
"""

DEAL_ROOM_OF = """
query DealRoomOf($id: ID!) {
  node(id: $id) {
    ... on DealRoomRecord {
      documents(first: 10) { nodes { title } }
      activities(first: 10) { nodes { subject } }
      comments(first: 10) {
        nodes { text author { username } createdAt replyTo { text } record { id } }
      }
    }
  }
}
"""

WHEN = "2027-03-31T09:00:00+02:00"
LATER = "2027-03-31T10:30:00+02:00"


def gid(record: Any) -> str:
    return to_global_id(type(record).__name__, record.id)


def errors_of(result: dict[str, Any]) -> list[tuple[str, str]]:
    [payload] = result.values()
    return sorted((e["field"][-1] if e["field"] else "", e["code"]) for e in payload["userErrors"])


@pytest.fixture
async def records(team, factory, db) -> dict[str, Any]:
    """rep's deal, account, contact and lead; other_rep's deal."""
    rep = team["rep"]
    found = {
        "deal": await factory.opportunity(rep, name="Rep deal"),
        "account": await factory.account(rep, name="Rep account"),
        "contact": await factory.contact(rep, last_name="Rep contact"),
        "lead": await factory.lead(rep, last_name="Rep lead"),
        "foreign": await factory.opportunity(team["other_rep"], name="Other deal"),
    }
    await db.commit()
    return found


@pytest.fixture
def public_client_for(public_app, factory, db):
    async def make(user: models.User) -> GraphQLClient:
        token = await factory.token(user)
        await db.commit()
        return GraphQLClient(public_app, token)

    return make


async def create_activity(client: GraphQLClient, **fields: Any) -> dict[str, Any]:
    data = {"type": "CALL", "subject": "Call the buyer", **fields}
    result = await client.data(CREATE, {"input": data})
    assert result["createActivity"]["userErrors"] == []
    return result["createActivity"]["activity"]  # type: ignore[no-any-return]


# --- activities: create -------------------------------------------------------------------


async def test_an_activity_is_created_about_several_records(team, records, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    result = await client.data(CREATE, {"input": {
        "type": "MEETING", "subject": "  Kick-off  ", "body": "Agenda: scope, price",
        "startAt": WHEN, "dueAt": LATER,
        "relatedToIds": [gid(records["deal"]), gid(records["account"]), gid(records["deal"])],
    }})

    # then
    payload = result["createActivity"]
    assert payload["userErrors"] == []
    activity = payload["activity"]
    assert activity["type"] == "MEETING"
    assert activity["subject"] == "Kick-off"
    assert activity["body"] == "Agenda: scope, price"
    assert activity["status"] == "PLANNED"
    assert activity["completedAt"] is None
    assert dt.datetime.fromisoformat(activity["startAt"]) == dt.datetime.fromisoformat(WHEN)
    assert dt.datetime.fromisoformat(activity["dueAt"]) == dt.datetime.fromisoformat(LATER)
    assert activity["assignedTo"] == {"username": "rep"}
    assert activity["createdBy"] == {"username": "rep"}
    assert [r["id"] for r in activity["relatedTo"]] == [
        gid(records["deal"]), gid(records["account"])
    ]
    listed = await client.data(ACTIVITIES_OF, {"id": gid(records["account"])})
    assert listed["node"]["activities"]["nodes"] == [
        {"id": activity["id"], "subject": "Kick-off", "status": "PLANNED"}
    ]


async def test_an_activity_created_completed_is_stamped(team, records, client_for):
    client = await client_for(team["rep"])

    activity = await create_activity(
        client, type="EMAIL", status="COMPLETED", relatedToIds=[gid(records["lead"])]
    )

    assert activity["status"] == "COMPLETED"
    assert activity["completedAt"] is not None


async def test_creating_an_activity_reports_every_problem_and_creates_nothing(
    team, records, client_for, db
):
    # given
    client = await client_for(team["rep"])

    # when
    result = await client.data(CREATE, {"input": {
        "type": "TASK", "subject": "   ", "startAt": LATER, "dueAt": WHEN,
        "assignedToId": gid(team["other_rep"]),
        "relatedToIds": [gid(records["deal"]), gid(records["foreign"]), "junk",
                         to_global_id("Campaign", 1)],
    }})
    empty = await client.data(CREATE, {"input": {
        "type": "TASK", "subject": "Follow up", "relatedToIds": [], "dueAt": "2027-03-31T09:00:00",
    }})

    # then
    assert result["createActivity"]["activity"] is None
    assert errors_of(result) == [
        ("1", "NOT_FOUND"), ("2", "NOT_FOUND"), ("3", "INVALID"),
        ("assignedToId", "PERMISSION_DENIED"), ("dueAt", "INVALID"), ("subject", "REQUIRED"),
    ]
    assert errors_of(empty) == [("dueAt", "INVALID"), ("relatedToIds", "REQUIRED")]
    assert await db.scalar(select(func.count()).select_from(models.Activity)) == 0
    assert await db.scalar(select(func.count()).select_from(models.ActivityLink)) == 0


async def test_an_activity_about_a_record_one_may_only_read_is_refused(
    team, records, public_client_for
):
    client = await public_client_for(team["rep"])

    result = await client.data(CREATE, {"input": {
        "type": "CALL", "subject": "Call", "relatedToIds": [gid(records["foreign"])],
    }})

    assert errors_of(result) == [("0", "PERMISSION_DENIED")]


async def test_a_manager_assigns_an_activity_to_their_team(team, records, client_for):
    client = await client_for(team["manager"])

    activity = await create_activity(
        client, assignedToId=gid(team["rep2"]), relatedToIds=[gid(records["deal"])]
    )

    assert activity["assignedTo"] == {"username": "rep2"}
    assert activity["createdBy"] == {"username": "manager"}


# --- activities: update, complete, delete -------------------------------------------------


async def test_an_activity_is_updated_completed_and_reopened(team, records, client_for):
    # given
    client = await client_for(team["rep"])
    activity = await create_activity(client, relatedToIds=[gid(records["deal"])])

    # when
    updated = await client.data(UPDATE, {"input": {
        "id": activity["id"], "subject": "Call the CFO", "type": "TASK", "body": None,
        "relatedToIds": [gid(records["contact"]), gid(records["deal"])],
    }})
    done = await client.data(COMPLETE, {"id": activity["id"]})
    done_again = await client.data(COMPLETE, {"id": activity["id"]})
    reopened = await client.data(UPDATE, {"input": {"id": activity["id"], "status": "PLANNED"}})

    # then
    changed = updated["updateActivity"]["activity"]
    assert updated["updateActivity"]["userErrors"] == []
    assert (changed["subject"], changed["type"], changed["body"]) == ("Call the CFO", "TASK", None)
    assert {r["id"] for r in changed["relatedTo"]} == {
        gid(records["contact"]), gid(records["deal"])
    }
    assert changed["updatedAt"] >= activity["updatedAt"]
    completed = done["completeActivity"]["activity"]
    assert completed["status"] == "COMPLETED" and completed["completedAt"]
    assert done_again["completeActivity"]["activity"] == completed  # no change
    assert reopened["updateActivity"]["activity"]["status"] == "PLANNED"
    assert reopened["updateActivity"]["activity"]["completedAt"] is None
    planned = await client.data(ACTIVITIES_OF, {"id": gid(records["contact"]), "status": "PLANNED"})
    finished = await client.data(
        ACTIVITIES_OF, {"id": gid(records["contact"]), "status": "COMPLETED"}
    )
    assert planned["node"]["activities"]["totalCount"] == 1
    assert finished["node"]["activities"]["totalCount"] == 0


async def test_an_update_reports_every_problem_and_changes_nothing(team, records, client_for):
    # given
    client = await client_for(team["rep"])
    activity = await create_activity(client, startAt=WHEN, relatedToIds=[gid(records["deal"])])

    # when
    result = await client.data(UPDATE, {"input": {
        "id": activity["id"], "subject": None, "status": None, "dueAt": "2027-03-30T09:00:00Z",
        "assignedToId": None, "relatedToIds": [],
    }})

    # then
    assert errors_of(result) == [
        ("assignedToId", "REQUIRED"), ("dueAt", "INVALID"), ("relatedToIds", "REQUIRED"),
        ("status", "REQUIRED"), ("subject", "REQUIRED"),
    ]
    after = await client.data(ACTIVITY, {"id": activity["id"]})
    assert after["node"] == activity


@pytest.mark.parametrize("mutation", ["update", "complete", "delete"])
async def test_changing_an_activity_takes_edit_rights_on_a_record_it_is_about(
    mutation, team, records, client_for, public_client_for
):
    # given
    activity = await create_activity(
        await client_for(team["rep"]), relatedToIds=[gid(records["deal"])]
    )
    requests = {
        "update": (UPDATE, {"input": {"id": activity["id"], "subject": "Mine now"}}),
        "complete": (COMPLETE, {"id": activity["id"]}),
        "delete": (DELETE, {"id": activity["id"]}),
    }
    query, variables = requests[mutation]

    # when
    hidden = await (await client_for(team["other_rep"])).data(query, variables)
    read_only = await (await public_client_for(team["other_rep"])).data(query, variables)
    by_manager = await (await client_for(team["manager"])).data(query, variables)

    # then
    assert errors_of(hidden) == [("id", "NOT_FOUND")]
    assert errors_of(read_only) == [("id", "PERMISSION_DENIED")]
    assert errors_of(by_manager) == []


async def test_a_deleted_activity_vanishes(team, records, client_for):
    # given
    client = await client_for(team["rep"])
    activity = await create_activity(client, relatedToIds=[gid(records["deal"])])

    # when
    result = await client.data(DELETE, {"id": activity["id"]})

    # then
    assert result["deleteActivity"] == {"deletedId": activity["id"], "userErrors": []}
    assert (await client.data(ACTIVITY, {"id": activity["id"]}))["node"] is None
    listed = await client.data(ACTIVITIES_OF, {"id": gid(records["deal"])})
    assert listed["node"]["activities"]["totalCount"] == 0
    assert (await client.data(ROOT_ACTIVITIES))["activities"]["totalCount"] == 0
    assert errors_of(await client.data(COMPLETE, {"id": activity["id"]})) == [("id", "NOT_FOUND")]


# --- activities: visibility ---------------------------------------------------------------


@pytest.fixture
async def shared_activity(team, records, factory, db) -> dict[str, Any]:
    """An activity on rep's deal and other_rep's account (arranged directly)."""
    account = await factory.account(team["other_rep"], name="Other account")
    activity = models.Activity(type="CALL", subject="Shared call", assigned_to_id=team["rep"].id,
                               created_by_id=team["rep"].id)
    db.add(activity)
    await db.flush()
    db.add_all([
        models.ActivityLink(activity_id=activity.id, entity="OPPORTUNITY",
                            record_id=records["deal"].id),
        models.ActivityLink(activity_id=activity.id, entity="ACCOUNT", record_id=account.id),
    ])
    await db.commit()
    return {**records, "activity": activity, "other_account": account}


@pytest.mark.parametrize(("viewer", "related"), [
    ("rep", {"Opportunity"}), ("manager", {"Opportunity"}), ("rep2", None),
    ("other_rep", {"Account"}), ("other_manager", {"Account"}),
    ("admin", {"Opportunity", "Account"}),
])
async def test_an_activity_is_visible_through_any_visible_record(
    viewer, related, team, shared_activity, client_for
):
    # given
    client = await client_for(team[viewer])

    # when
    node = await client.data(ACTIVITY, {"id": gid(shared_activity["activity"])})
    listed = await client.data(ROOT_ACTIVITIES)

    # then
    if related is None:
        assert node["node"] is None
        assert listed["activities"]["totalCount"] == 0
    else:
        assert {r["__typename"] for r in node["node"]["relatedTo"]} == related
        assert listed["activities"]["nodes"] == [{"subject": "Shared call"}]


async def test_an_activity_about_a_deleted_record_only_is_not_visible_through_it(
    team, records, client_for, factory, db
):
    # given: other_rep's call, about rep's deal alone
    call = models.Activity(type="CALL", subject="Their call", assigned_to_id=team["other_rep"].id,
                           created_by_id=team["other_rep"].id)
    db.add(call)
    await db.flush()
    db.add(models.ActivityLink(activity_id=call.id, entity="OPPORTUNITY",
                               record_id=records["deal"].id))
    await db.commit()
    rep = await client_for(team["rep"])
    seen = await rep.data(ACTIVITY, {"id": gid(call)})
    deal = await db.get(models.Opportunity, records["deal"].id)
    assert deal is not None
    deal.deleted_at = utcnow()
    await db.commit()

    # when
    node = await rep.data(ACTIVITY, {"id": gid(call)})
    assignee = await (await client_for(team["other_rep"])).data(ACTIVITY, {"id": gid(call)})

    # then: rep saw it through the deal only; its assignee still does
    assert seen["node"]["subject"] == "Their call"
    assert node["node"] is None
    assert assignee["node"]["subject"] == "Their call"
    assert assignee["node"]["relatedTo"] == []


@pytest.fixture
async def colleagues_deal_activity(team, records, db) -> dict[str, Any]:
    """rep2's call about other_rep's deal alone (rep2 may not see that deal), and rep's call
    about rep's deal (a positive control: what rep does see)."""
    theirs = models.Activity(type="CALL", subject="Colleague call",
                             assigned_to_id=team["rep2"].id, created_by_id=team["other_rep"].id)
    mine = models.Activity(type="CALL", subject="Rep call", assigned_to_id=team["rep"].id,
                           created_by_id=team["rep"].id)
    db.add_all([theirs, mine])
    await db.flush()
    db.add_all([
        models.ActivityLink(activity_id=theirs.id, entity="OPPORTUNITY",
                            record_id=records["foreign"].id),
        models.ActivityLink(activity_id=mine.id, entity="OPPORTUNITY",
                            record_id=records["deal"].id),
    ])
    await db.commit()
    return {**records, "activity": theirs, "control": mine}


NODES = f"""
query Nodes($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on Activity {{ {ACTIVITY_FIELDS} }} }} }}
"""


@pytest.mark.parametrize(("viewer", "visible", "related"), [
    ("rep2", ["Colleague call"], []),  # the assignee
    ("manager", ["Colleague call", "Rep call"], []),  # the assignee's manager
    ("other_rep", ["Colleague call"], ["Opportunity"]),  # through the deal
    ("admin", ["Colleague call", "Rep call"], ["Opportunity"]),
    ("rep", ["Rep call"], None),  # a colleague: neither assignee, manager nor on the deal
])
async def test_an_activity_is_visible_to_its_assignee_and_their_managers(
    viewer, visible, related, team, colleagues_deal_activity, client_for
):
    # given
    client = await client_for(team[viewer])
    activity_id = gid(colleagues_deal_activity["activity"])
    deal_id = gid(colleagues_deal_activity["foreign"])

    # when
    node = await client.data(ACTIVITY, {"id": activity_id})
    nodes = await client.data(NODES, {"ids": [activity_id]})
    listed = await client.data(ROOT_ACTIVITIES)
    by_owner = await client.data(
        ROOT_ACTIVITIES, {"filter": {"assignedTo": [gid(team["rep2"])]}}
    )
    on_deal = await client.data(ACTIVITIES_OF, {"id": deal_id})

    # then
    assert sorted(n["subject"] for n in listed["activities"]["nodes"]) == visible
    assert listed["activities"]["totalCount"] == len(visible)
    if related is None:
        assert node["node"] is None
        assert nodes["nodes"] == [None]
        assert by_owner["activities"] == {"totalCount": 0, "nodes": []}
    else:
        assert node["node"]["subject"] == "Colleague call"
        assert node["node"]["assignedTo"] == {"username": "rep2"}
        assert [r["__typename"] for r in node["node"]["relatedTo"]] == related
        assert nodes["nodes"] == [node["node"]]
        assert by_owner["activities"] == {"totalCount": 1, "nodes": [{"subject": "Colleague call"}]}
    # the deal room shows the deal's activities to whoever sees the deal, and only to them
    if related:
        assert on_deal["node"]["activities"]["nodes"] == [
            {"id": activity_id, "subject": "Colleague call", "status": "PLANNED"}
        ]
    else:
        assert on_deal["node"] is None


async def test_under_public_sharing_every_activity_is_readable(
    team, colleagues_deal_activity, public_client_for
):
    client = await public_client_for(team["rep"])

    listed = await client.data(ROOT_ACTIVITIES)

    assert sorted(n["subject"] for n in listed["activities"]["nodes"]) == [
        "Colleague call", "Rep call"
    ]


@pytest.mark.parametrize("mutation", ["update", "complete", "delete"])
@pytest.mark.parametrize(("viewer", "expected"), [
    ("rep2", []),  # the assignee, who may change none of its records
    ("manager", []),  # the assignee's manager
    ("rep", [("id", "NOT_FOUND")]),  # a colleague who cannot see it
])
async def test_the_assignee_and_their_managers_change_the_activity(
    mutation, viewer, expected, team, colleagues_deal_activity, client_for, db
):
    # given
    activity = colleagues_deal_activity["activity"]
    pk, activity_id = activity.id, gid(activity)
    requests = {
        "update": (UPDATE, {"input": {"id": activity_id, "subject": "Call them back"}}),
        "complete": (COMPLETE, {"id": activity_id}),
        "delete": (DELETE, {"id": activity_id}),
    }
    query, variables = requests[mutation]

    # when
    result = await (await client_for(team[viewer])).data(query, variables)

    # then
    assert errors_of(result) == expected
    db.expire_all()
    stored = await db.get(models.Activity, pk)
    assert stored is not None
    changed = {
        "update": stored.subject == "Call them back",
        "complete": stored.status == "COMPLETED" and stored.completed_at is not None,
        "delete": stored.deleted_at is not None,
    }[mutation]
    assert changed is (expected == [])


async def test_under_public_sharing_one_who_only_reads_the_activity_may_not_complete_it(
    team, colleagues_deal_activity, public_client_for, db
):
    # given: rep reads everything, but is neither the assignee, their manager nor may
    # change the deal
    client = await public_client_for(team["rep"])
    activity = colleagues_deal_activity["activity"]

    # when
    result = await client.data(COMPLETE, {"id": gid(activity)})

    # then
    assert errors_of(result) == [("id", "PERMISSION_DENIED")]
    stored = await db.get(models.Activity, activity.id)
    assert stored is not None and stored.status == "PLANNED"


async def test_replacing_related_records_keeps_links_one_may_not_see(
    team, shared_activity, client_for
):
    # given: rep sees only the deal of the shared activity
    client = await client_for(team["rep"])
    activity_id = gid(shared_activity["activity"])

    # when
    result = await client.data(UPDATE, {"input": {
        "id": activity_id, "relatedToIds": [gid(shared_activity["contact"])],
    }})
    admin = await (await client_for(team["admin"])).data(ACTIVITY, {"id": activity_id})

    # then
    assert [r["id"] for r in result["updateActivity"]["activity"]["relatedTo"]] == [
        gid(shared_activity["contact"])
    ]
    assert {r["id"] for r in admin["node"]["relatedTo"]} == {
        gid(shared_activity["contact"]), gid(shared_activity["other_account"])
    }


async def test_the_activities_list_filters(team, records, client_for):
    # given
    client = await client_for(team["manager"])
    await create_activity(client, subject="A call", relatedToIds=[gid(records["deal"])])
    await create_activity(client, type="TASK", subject="A task", status="COMPLETED",
                          assignedToId=gid(team["rep"]), relatedToIds=[gid(records["lead"])])

    # when
    def subjects(result: dict[str, Any]) -> list[str]:
        return [n["subject"] for n in result["activities"]["nodes"]]

    by_status = await client.data(ROOT_ACTIVITIES, {"filter": {"status": ["COMPLETED"]}})
    by_type = await client.data(ROOT_ACTIVITIES, {"filter": {"type": ["CALL"]}})
    by_owner = await client.data(ROOT_ACTIVITIES, {"filter": {"assignedTo": [gid(team["rep"])]}})
    by_record = await client.data(ROOT_ACTIVITIES, {"filter": {"relatedTo": gid(records["lead"])}})
    by_search = await client.data(ROOT_ACTIVITIES, {"filter": {"search": "CALL"}})

    # then
    assert subjects(by_status) == ["A task"]
    assert subjects(by_type) == ["A call"]
    assert subjects(by_owner) == ["A task"]
    assert subjects(by_record) == ["A task"]
    assert subjects(by_search) == ["A call"]


# --- comments -----------------------------------------------------------------------------


async def comment(client: GraphQLClient, record: Any, text: str, reply_to: str | None = None
                  ) -> dict[str, Any]:
    result = await client.data(CREATE_COMMENT, {"input": {
        "recordId": gid(record), "text": text, "replyToId": reply_to,
    }})
    assert result["createComment"]["userErrors"] == []
    return result["createComment"]["comment"]  # type: ignore[no-any-return]


async def test_comments_and_replies_on_a_record(team, records, client_for):
    # given
    rep = await client_for(team["rep"])
    manager = await client_for(team["manager"])

    # when
    first = await comment(rep, records["deal"], "  They want a discount.  ")
    reply = await comment(manager, records["deal"], "Not more than 5%.", first["id"])
    listed = await rep.data(COMMENTS_OF, {"id": gid(records["deal"])})

    # then
    assert first["text"] == "They want a discount."
    assert first["author"] == {"username": "rep"}
    assert first["record"] == {"id": gid(records["deal"])}
    assert first["replyTo"] is None
    assert reply["replyTo"] == {"id": first["id"], "text": "They want a discount."}
    assert [c["text"] for c in listed["node"]["comments"]["nodes"]] == [
        "They want a discount.", "Not more than 5%."
    ]


async def test_a_comment_is_refused_with_every_problem(team, records, client_for, db):
    # given
    client = await client_for(team["rep"])
    on_account = await comment(client, records["account"], "About the account")

    # when
    wrong_thread = await client.data(CREATE_COMMENT, {"input": {
        "recordId": gid(records["deal"]), "text": " ", "replyToId": on_account["id"],
    }})
    invisible = await client.data(CREATE_COMMENT, {"input": {
        "recordId": gid(records["foreign"]), "text": "Hi", "replyToId": "junk",
    }})

    # then
    assert errors_of(wrong_thread) == [("replyToId", "INVALID"), ("text", "REQUIRED")]
    assert errors_of(invisible) == [("recordId", "NOT_FOUND"), ("replyToId", "NOT_FOUND")]
    assert await db.scalar(select(func.count()).select_from(models.Comment)) == 1


async def test_only_the_author_changes_a_comment(team, records, client_for):
    # given
    rep = await client_for(team["rep"])
    first = await comment(rep, records["deal"], "Draft")

    # when
    by_manager = await (await client_for(team["manager"])).data(
        UPDATE_COMMENT, {"input": {"id": first["id"], "text": "Edited by the boss"}}
    )
    by_admin = await (await client_for(team["admin"])).data(
        UPDATE_COMMENT, {"input": {"id": first["id"], "text": "Edited by the admin"}}
    )
    by_outsider = await (await client_for(team["other_rep"])).data(
        UPDATE_COMMENT, {"input": {"id": first["id"], "text": "Hacked"}}
    )
    by_author = await rep.data(UPDATE_COMMENT, {"input": {"id": first["id"], "text": "Final"}})

    # then
    assert errors_of(by_manager) == [("id", "PERMISSION_DENIED")]
    assert errors_of(by_admin) == [("id", "PERMISSION_DENIED")]
    assert errors_of(by_outsider) == [("id", "NOT_FOUND")]
    assert by_author["updateComment"]["userErrors"] == []
    assert by_author["updateComment"]["comment"]["text"] == "Final"


async def test_under_public_sharing_an_author_who_lost_edit_rights_cannot_edit(
    team, records, client_for, public_client_for, db
):
    # given: rep comments, then the deal goes to other_rep
    first = await comment(await client_for(team["rep"]), records["deal"], "Mine")
    deal = await db.get(models.Opportunity, records["deal"].id)
    assert deal is not None
    deal.assigned_to_id = team["other_rep"].id
    await db.commit()
    client = await public_client_for(team["rep"])

    # when
    result = await client.data(UPDATE_COMMENT, {"input": {"id": first["id"], "text": "Still?"}})
    new = await client.data(CREATE_COMMENT, {"input": {"recordId": gid(deal), "text": "Hi"}})

    # then
    assert errors_of(result) == [("id", "PERMISSION_DENIED")]
    assert errors_of(new) == [("recordId", "PERMISSION_DENIED")]


async def test_the_author_or_an_admin_deletes_a_comment(team, records, client_for):
    # given
    rep = await client_for(team["rep"])
    first = await comment(rep, records["deal"], "First")
    second = await comment(rep, records["deal"], "Second")
    reply = await comment(rep, records["deal"], "A reply", first["id"])

    # when
    by_manager = await (await client_for(team["manager"])).data(DELETE_COMMENT, {"id": first["id"]})
    by_admin = await (await client_for(team["admin"])).data(DELETE_COMMENT, {"id": first["id"]})
    by_author = await rep.data(DELETE_COMMENT, {"id": second["id"]})
    listed = await rep.data(COMMENTS_OF, {"id": gid(records["deal"])})

    # then
    assert errors_of(by_manager) == [("id", "PERMISSION_DENIED")]
    assert by_admin["deleteComment"] == {"deletedId": first["id"], "userErrors": []}
    assert by_author["deleteComment"] == {"deletedId": second["id"], "userErrors": []}
    [left] = listed["node"]["comments"]["nodes"]
    assert left["id"] == reply["id"]
    assert left["replyTo"] is None  # the comment it answered was deleted


@pytest.mark.parametrize(("viewer", "sees"), [
    ("rep", True), ("manager", True), ("admin", True), ("rep2", False), ("other_rep", False),
])
async def test_comments_are_visible_with_their_record(
    viewer, sees, team, records, client_for
):
    # given
    made = await comment(await client_for(team["rep"]), records["lead"], "Hot lead")
    client = await client_for(team[viewer])

    # when
    node = await client.data(
        "query($id: ID!) { node(id: $id) { ... on Comment { text } } }", {"id": made["id"]}
    )

    # then
    assert node["node"] == ({"text": "Hot lead"} if sees else None)


# --- lead conversion carries the history --------------------------------------------------


@pytest.fixture
async def lead_history(team, records, factory, db, client_for) -> dict[str, Any]:
    """rep's lead with an activity, a document and a thread of two comments."""
    lead = records["lead"]
    client = await client_for(team["rep"])
    await create_activity(client, subject="Discovery call", relatedToIds=[gid(lead)])
    first = await comment(client, lead, "Interested in 50 seats")
    await comment(client, lead, "Budget approved", first["id"])
    document = models.Document(title="RFP", filename="rfp.pdf", content_type="application/pdf",
                               size=3, sha256="a" * 64, created_by_id=team["rep"].id)
    db.add(document)
    await db.flush()
    db.add(models.DocumentLink(document_id=document.id, entity="LEAD", record_id=lead.id))
    await db.commit()
    return {"lead": lead, "client": client}


async def test_conversion_carries_activities_documents_and_comments(lead_history):
    # given
    client = lead_history["client"]
    lead = lead_history["lead"]

    # when
    result = await client.data(CONVERT, {"input": {
        "leadId": gid(lead),
        "opportunity": {"expectedCloseDate": "2027-06-30", "salesStage": "PROSPECTING"},
    }})

    # then
    created = result["convertLead"]
    assert created["userErrors"] == []
    rooms = {
        name: (await client.data(DEAL_ROOM_OF, {"id": created[name]["id"]}))["node"]
        for name in ("opportunity", "account", "contact")
    }
    kept = (await client.data(DEAL_ROOM_OF, {"id": gid(lead)}))["node"]
    for name, room in rooms.items():
        assert room["activities"]["nodes"] == [{"subject": "Discovery call"}], name
        assert room["documents"]["nodes"] == [{"title": "RFP"}], name
    comments = rooms["opportunity"]["comments"]["nodes"]
    assert [(c["text"], c["author"]["username"]) for c in comments] == [
        ("Interested in 50 seats", "rep"), ("Budget approved", "rep")
    ]
    assert comments[1]["replyTo"] == {"text": "Interested in 50 seats"}
    assert {c["record"]["id"] for c in comments} == {created["opportunity"]["id"]}
    assert [c["createdAt"] for c in comments] == [c["createdAt"] for c in kept["comments"]["nodes"]]
    assert rooms["account"]["comments"]["nodes"] == []
    assert kept["activities"]["nodes"] == [{"subject": "Discovery call"}]
    assert kept["documents"]["nodes"] == [{"title": "RFP"}]
    assert len(kept["comments"]["nodes"]) == 2


async def test_without_a_deal_the_comments_go_to_the_account(lead_history):
    # given
    client = lead_history["client"]

    # when
    result = await client.data(CONVERT, {"input": {"leadId": gid(lead_history["lead"])}})

    # then
    account = (await client.data(DEAL_ROOM_OF, {"id": result["convertLead"]["account"]["id"]}))
    contact = (await client.data(DEAL_ROOM_OF, {"id": result["convertLead"]["contact"]["id"]}))
    assert [c["text"] for c in account["node"]["comments"]["nodes"]] == [
        "Interested in 50 seats", "Budget approved"
    ]
    assert contact["node"]["comments"]["nodes"] == []
    assert contact["node"]["activities"]["nodes"] == [{"subject": "Discovery call"}]


async def test_a_reused_account_already_linked_is_not_linked_twice(
    team, lead_history, factory, db
):
    # given: the account the conversion reuses already has the lead's activity
    account = await factory.account(team["rep"], name="Bianchi S.r.l.")
    activity_id = await db.scalar(select(models.Activity.id))
    db.add(models.ActivityLink(activity_id=activity_id, entity="ACCOUNT", record_id=account.id))
    await db.commit()
    client = lead_history["client"]

    # when
    result = await client.data(CONVERT, {"input": {"leadId": gid(lead_history["lead"])}})

    # then
    assert result["convertLead"]["account"]["id"] == gid(account)
    room = await client.data(DEAL_ROOM_OF, {"id": gid(account)})
    assert room["node"]["activities"]["nodes"] == [{"subject": "Discovery call"}]


# --- statement counts ---------------------------------------------------------------------

DEAL_ROOM_PAGE = """
query DealRoomPage($first: Int!) {
  %s(first: $first) {
    nodes {
      id
      documents(first: 5) {
        totalCount
        nodes { title createdBy { username } linkedTo { id } }
      }
      activities(first: 5) {
        totalCount
        nodes { subject assignedTo { username } relatedTo { id } }
      }
      planned: activities(first: 5, status: PLANNED) { totalCount nodes { subject } }
      comments(first: 5) {
        totalCount
        nodes { text author { username } replyTo { text } record { id } }
      }
    }
  }
}
"""

ROOT_PAGES = """
query RootPages($first: Int!) {
  documents(first: $first) { totalCount nodes { title createdBy { username } linkedTo { id } } }
  activities(first: $first) {
    totalCount nodes { subject assignedTo { username } relatedTo { id } }
  }
}
"""


@pytest.fixture
async def busy_records(team, factory, db) -> None:
    """12 records of each kind for rep, each with 2 documents (shared with another record),
    3 activities and 3 comments (replies)."""
    rep = team["rep"]
    made: dict[str, list[Any]] = {"OPPORTUNITY": [], "ACCOUNT": [], "CONTACT": [], "LEAD": []}
    for i in range(12):
        made["OPPORTUNITY"].append(await factory.opportunity(rep, name=f"D{i}"))
        made["ACCOUNT"].append(await factory.account(rep, name=f"A{i}"))
        made["CONTACT"].append(await factory.contact(rep, last_name=f"C{i}"))
        made["LEAD"].append(await factory.lead(rep, last_name=f"L{i}"))
    for i in range(12):  # the records' kinds interleaved: any 8 in a row link to all kinds
        for entity, rows in made.items():
            record = rows[i]
            other = made["ACCOUNT"][(i + 1) % 12]
            for d in range(2):
                document = models.Document(
                    title=f"{entity} {i} doc {d}", filename="f.txt", content_type="text/plain",
                    size=1, sha256=f"{d:064}", created_by_id=rep.id,
                )
                activity = models.Activity(type="CALL", subject=f"{entity} {i} call {d}",
                                           assigned_to_id=rep.id, created_by_id=rep.id)
                db.add_all([document, activity])
                await db.flush()
                db.add_all([
                    models.DocumentLink(document_id=document.id, entity=entity,
                                        record_id=record.id),
                    models.ActivityLink(activity_id=activity.id, entity=entity,
                                        record_id=record.id),
                ])
                if entity != "ACCOUNT":
                    db.add_all([
                        models.DocumentLink(document_id=document.id, entity="ACCOUNT",
                                            record_id=other.id),
                        models.ActivityLink(activity_id=activity.id, entity="ACCOUNT",
                                            record_id=other.id),
                    ])
            parent = None
            for c in range(3):
                note = models.Comment(entity=entity, record_id=record.id, author_id=rep.id,
                                      text=f"note {c}", reply_to_id=parent)
                db.add(note)
                await db.flush()
                parent = note.id
    await db.commit()


@pytest.mark.parametrize("records_field", ["opportunities", "accounts", "contacts", "leads"])
@pytest.mark.parametrize("viewer", ["rep", "manager", "admin"])
async def test_the_deal_room_of_a_page_costs_the_same_for_2_and_10_records(
    records_field, viewer, team, busy_records, client_for, statements
):
    # given
    client = await client_for(team[viewer])
    query = DEAL_ROOM_PAGE % records_field

    # when
    small = await count_statements(client, statements, query, {"first": 2})
    large = await count_statements(client, statements, query, {"first": 10})
    page = await client.data(query, {"first": 10})

    # then
    print(f"{records_field} as {viewer}: first 2 → {small}, first 10 → {large} statements")
    assert small == large
    nodes = page[records_field]["nodes"]
    assert len(nodes) == 10
    assert all(n["documents"]["totalCount"] >= 2 for n in nodes)
    assert all(len(n["documents"]["nodes"]) == min(5, n["documents"]["totalCount"]) for n in nodes)
    assert all(n["activities"]["totalCount"] >= 2 for n in nodes)
    assert all(n["comments"]["totalCount"] == 3 for n in nodes)
    assert all(c["record"]["id"] == n["id"] for n in nodes for c in n["comments"]["nodes"])


@pytest.mark.parametrize("viewer", ["rep", "manager", "admin"])
async def test_the_root_deal_room_lists_cost_the_same_for_8_and_50(
    viewer, team, busy_records, client_for, statements
):
    # given
    client = await client_for(team[viewer])

    # when
    small = await count_statements(client, statements, ROOT_PAGES, {"first": 8})
    large = await count_statements(client, statements, ROOT_PAGES, {"first": 50})
    page = await client.data(ROOT_PAGES, {"first": 50})

    # then
    assert small == large
    assert len(page["documents"]["nodes"]) == 50
    assert len(page["activities"]["nodes"]) == 50
    assert page["documents"]["totalCount"] == 96
