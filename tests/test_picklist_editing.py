"""addPicklistValue, updatePicklistValue and the configurationChanges audit (admin only).

Keys never change, so relabelling touches no record; a deactivated value stays on the records
that have it while new writes refuse it (INACTIVE); a picklist keeps an active value and the
sales stages an open, a won and a lost one. Every change is audited (who, when, before,
after); a refused one changes nothing and leaves no audit row; anyone but an admin gets a
top-level FORBIDDEN.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import models
from models.base import utcnow
from resolvers.ids import to_global_id

VALUE_FIELDS = """
  picklistValue { key label position isActive }
  salesStage { key name position probability forecastCategory isClosed isWon isActive }
  userErrors { field message code }
"""

ADD = """
mutation Add($input: AddPicklistValueInput!) {
  addPicklistValue(input: $input) {""" + VALUE_FIELDS + """}
}
"""

UPDATE = """
mutation Update($input: UpdatePicklistValueInput!) {
  updatePicklistValue(input: $input) {""" + VALUE_FIELDS + """}
}
"""

PICKLIST = """
query Picklist($name: String!, $all: Boolean! = false) {
  picklist(name: $name, includeInactive: $all) { key label position isActive }
}
"""

STAGES = """
query Stages($all: Boolean! = true) {
  salesStages(includeInactive: $all) {
    key name position probability forecastCategory isClosed isWon isActive
  }
}
"""

CHANGES = """
query Changes($first: Int, $after: String, $last: Int, $before: String,
              $kind: ConfigurationChangeKind) {
  configurationChanges(first: $first, after: $after, last: $last, before: $before,
                       kind: $kind) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges {
      cursor
      node { id kind scope key action before after changedBy { username } changedAt }
    }
  }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on ConfigurationChange { kind scope key action } }
}
"""

DEAL_FIELDS = """
  id type leadSource probability probabilityIsManual
  salesStage { key name probability isActive }
"""

CREATE_DEAL = """
mutation Create($input: CreateOpportunityInput!) {
  createOpportunity(input: $input) {
    opportunity {""" + DEAL_FIELDS + """}
    userErrors { field message code }
  }
}
"""

UPDATE_DEAL = """
mutation Update($input: UpdateOpportunityInput!) {
  updateOpportunity(input: $input) {
    opportunity { name""" + DEAL_FIELDS + """}
    userErrors { field message code }
  }
}
"""

CHANGE_STAGE = """
mutation Change($input: ChangeOpportunityStageInput!) {
  changeOpportunityStage(input: $input) {
    opportunity {""" + DEAL_FIELDS + """}
    userErrors { field message code }
  }
}
"""

DEAL = """
query Deal($id: ID!) {
  node(id: $id) { ... on Opportunity {""" + DEAL_FIELDS + """} }
}
"""

CLOSE = (dt.date.today() + dt.timedelta(days=30)).isoformat()
LEAD_SOURCES = [
    "COLD_CALL", "EXISTING_CUSTOMER", "SELF_GENERATED", "EMPLOYEE", "PARTNER",
    "PUBLIC_RELATIONS", "DIRECT_MAIL", "CONFERENCE", "TRADE_SHOW", "WEB_SITE", "WORD_OF_MOUTH",
    "OTHER",
]
STAGE_KEYS = [
    "PROSPECTING", "QUALIFICATION", "NEEDS_ANALYSIS", "VALUE_PROPOSITION", "ID_DECISION_MAKERS",
    "PERCEPTION_ANALYSIS", "PROPOSAL_PRICE_QUOTE", "NEGOTIATION_REVIEW", "CLOSED_WON",
    "CLOSED_LOST",
]
OPEN_STAGES = STAGE_KEYS[:8]


def problems(payload: dict[str, Any]) -> list[tuple[list[str], str]]:
    """(field path, code) of every userError, sorted."""
    return sorted((e["field"], e["code"]) for e in payload["userErrors"])


class Store:
    """Reads what the server committed, in a fresh session each time."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def state(self) -> dict[str, Any]:
        """Every picklist value and stage, and the audit, as plain tuples."""
        async with self.sessions() as s:
            values = (await s.execute(
                select(models.PicklistValue.picklist, models.PicklistValue.key,
                       models.PicklistValue.label, models.PicklistValue.position,
                       models.PicklistValue.is_active)
                .order_by(models.PicklistValue.picklist, models.PicklistValue.key)
            )).all()
            stages = (await s.execute(
                select(models.SalesStage.key, models.SalesStage.name, models.SalesStage.position,
                       models.SalesStage.probability, models.SalesStage.forecast_category,
                       models.SalesStage.is_closed, models.SalesStage.is_won,
                       models.SalesStage.is_active)
                .order_by(models.SalesStage.key)
            )).all()
            audit = await self.audit_count(s)
        return {"values": list(values), "stages": list(stages), "audit": audit}

    @staticmethod
    async def audit_count(s: AsyncSession) -> int:
        return int(
            await s.scalar(select(func.count()).select_from(models.ConfigurationChange)) or 0
        )

    async def audit(self) -> list[models.ConfigurationChange]:
        async with self.sessions() as s:
            stmt = select(models.ConfigurationChange).order_by(models.ConfigurationChange.id)
            return list((await s.scalars(stmt)).all())

    async def keys(self, picklist: str) -> list[tuple[str, int, bool]]:
        """(key, position, active) in order."""
        async with self.sessions() as s:
            if picklist == "salesStage":
                m: Any = models.SalesStage
                stmt = select(m.key, m.position, m.is_active)
            else:
                m = models.PicklistValue
                stmt = select(m.key, m.position, m.is_active).where(m.picklist == picklist)
            return [tuple(r) for r in (await s.execute(stmt.order_by(m.position, m.key))).all()]

    async def deal(self, pk: int) -> tuple[Any, ...]:
        async with self.sessions() as s:
            o = models.Opportunity
            row = (await s.execute(
                select(o.sales_stage, o.type, o.lead_source, o.probability, o.version)
                .where(o.id == pk)
            )).one()
            return tuple(row)


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession]) -> Store:
    return Store(sessions)


@pytest.fixture
async def admin(team, client_for) -> Any:
    return await client_for(team["admin"])


async def add(client: Any, **input: Any) -> dict[str, Any]:
    return (await client.data(ADD, {"input": input}))["addPicklistValue"]


async def change(client: Any, **input: Any) -> dict[str, Any]:
    return (await client.data(UPDATE, {"input": input}))["updatePicklistValue"]


async def listed(client: Any, name: str, all: bool = False) -> list[dict[str, Any]]:
    return (await client.data(PICKLIST, {"name": name, "all": all}))["picklist"]


# --- addPicklistValue --------------------------------------------------------------------


async def test_add_puts_a_value_last_by_default_and_audits_it(team, admin, store):
    # given
    started = utcnow()

    # when
    payload = await add(admin, picklist="leadSource", key="TRADE_FAIR", label="  Trade Fair ")

    # then
    assert payload == {
        "picklistValue": {"key": "TRADE_FAIR", "label": "Trade Fair", "position": 13,
                          "isActive": True},
        "salesStage": None, "userErrors": [],
    }
    values = await listed(admin, "leadSource")
    assert [v["key"] for v in values] == [*LEAD_SOURCES, "TRADE_FAIR"]
    assert [v["position"] for v in values] == list(range(1, 14))
    [row] = await store.audit()
    assert (row.kind, row.scope, row.key, row.action, row.changed_by_id) == (
        "PICKLIST", "leadSource", "TRADE_FAIR", "CREATE", team["admin"].id
    )
    assert row.before is None
    assert row.after == {"key": "TRADE_FAIR", "label": "Trade Fair", "position": 13,
                         "isActive": True}
    assert started <= row.changed_at <= utcnow()


@pytest.mark.parametrize(
    ("position", "order"),
    [
        (1, ["NEW", "EXISTING_BUSINESS", "NEW_BUSINESS"]),
        (2, ["EXISTING_BUSINESS", "NEW", "NEW_BUSINESS"]),
        (3, ["EXISTING_BUSINESS", "NEW_BUSINESS", "NEW"]),
        (99, ["EXISTING_BUSINESS", "NEW_BUSINESS", "NEW"]),  # past the end: last
    ],
)
async def test_add_at_a_position_renumbers_the_list(position, order, admin, store):
    # when
    payload = await add(admin, picklist="opportunityType", key="NEW", label="New",
                        position=position)

    # then
    assert payload["userErrors"] == []
    assert payload["picklistValue"]["position"] == order.index("NEW") + 1
    assert await store.keys("opportunityType") == [
        (key, n, True) for n, key in enumerate(order, 1)
    ]


async def test_add_a_sales_stage(admin, store):
    # when
    payload = await add(
        admin, picklist="salesStage", key="CONTRACT_SENT", label="Contract Sent", position=9,
        probability="90", forecastCategory="COMMIT",
    )

    # then
    assert payload["userErrors"] == []
    assert payload["picklistValue"] == {
        "key": "CONTRACT_SENT", "label": "Contract Sent", "position": 9, "isActive": True,
    }
    assert payload["salesStage"] == {
        "key": "CONTRACT_SENT", "name": "Contract Sent", "position": 9, "probability": "90.00",
        "forecastCategory": "COMMIT", "isClosed": False, "isWon": False, "isActive": True,
    }
    stages = (await admin.data(STAGES))["salesStages"]
    assert [s["key"] for s in stages] == [*STAGE_KEYS[:8], "CONTRACT_SENT", *STAGE_KEYS[8:]]
    assert [s["position"] for s in stages] == list(range(1, 12))
    assert [v["label"] for v in await listed(admin, "salesStage")][8] == "Contract Sent"
    [row] = await store.audit()
    assert row.after == {
        "key": "CONTRACT_SENT", "label": "Contract Sent", "position": 9, "isActive": True,
        "probability": "90.00", "forecastCategory": "COMMIT", "isClosed": False, "isWon": False,
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"probability": "15"}, ("15.00", "PIPELINE", False, False)),
        ({"isClosed": True}, ("0.00", "OMITTED", True, False)),
        ({"isClosed": True, "isWon": True}, ("100.00", "CLOSED", True, True)),
        ({"isClosed": True, "isWon": True, "probability": 100, "forecastCategory": "COMMIT"},
         ("100.00", "COMMIT", True, True)),
    ],
)
async def test_a_new_stage_defaults_follow_its_state(given, expected, admin):
    # when
    payload = await add(admin, picklist="salesStage", key="EXTRA", label="Extra", **given)

    # then
    assert payload["userErrors"] == []
    stage = payload["salesStage"]
    assert (stage["probability"], stage["forecastCategory"], stage["isClosed"],
            stage["isWon"]) == expected
    assert stage["position"] == 11


@pytest.mark.parametrize(
    ("input", "expected"),
    [
        ({"picklist": "nope"}, [(["input", "picklist"], "INVALID")]),
        ({"picklist": " "}, [(["input", "picklist"], "REQUIRED")]),
        ({"key": " "}, [(["input", "key"], "REQUIRED")]),
        ({"key": "trade_fair"}, [(["input", "key"], "INVALID")]),
        ({"key": "1ST"}, [(["input", "key"], "INVALID")]),
        ({"key": "TRADE-FAIR"}, [(["input", "key"], "INVALID")]),
        ({"key": "K" * 65}, [(["input", "key"], "INVALID")]),
        ({"key": "PARTNER"}, [(["input", "key"], "DUPLICATE")]),
        ({"label": "  "}, [(["input", "label"], "REQUIRED")]),
        ({"label": "x" * 129}, [(["input", "label"], "TOO_LONG")]),
        ({"label": "partner"}, [(["input", "label"], "DUPLICATE")]),
        ({"position": 0}, [(["input", "position"], "OUT_OF_RANGE")]),
        ({"probability": "50"}, [(["input", "probability"], "INVALID")]),
        ({"forecastCategory": "COMMIT", "isClosed": True, "isWon": False},
         [(["input", "forecastCategory"], "INVALID"), (["input", "isClosed"], "INVALID"),
          (["input", "isWon"], "INVALID")]),
        ({"picklist": "salesStage", "key": "CLOSED_WON", "probability": "100"},
         [(["input", "key"], "DUPLICATE")]),
        ({"picklist": "salesStage"}, [(["input", "probability"], "REQUIRED")]),
        ({"picklist": "salesStage", "probability": "100.01"},
         [(["input", "probability"], "OUT_OF_RANGE")]),
        ({"picklist": "salesStage", "probability": "-1"},
         [(["input", "probability"], "OUT_OF_RANGE")]),
        ({"picklist": "salesStage", "probability": "10", "isWon": True},
         [(["input", "isWon"], "INVALID")]),
        ({"picklist": "salesStage", "isClosed": True, "isWon": True, "probability": "90"},
         [(["input", "probability"], "INVALID")]),
        ({"picklist": "salesStage", "isClosed": True, "probability": "5"},
         [(["input", "probability"], "INVALID")]),
        ({"picklist": "salesStage", "label": "closed won", "probability": "100",
          "isClosed": True, "isWon": True}, [(["input", "label"], "DUPLICATE")]),
    ],
)
async def test_add_refuses_bad_input_and_changes_nothing(input, expected, admin, store):
    # given
    before = await store.state()

    # when
    payload = await add(admin, **{"picklist": "leadSource", "key": "TRADE_FAIR",
                                  "label": "Trade Fair", **input})

    # then
    assert payload["picklistValue"] is None and payload["salesStage"] is None
    assert problems(payload) == expected
    assert all(e["message"] for e in payload["userErrors"])
    assert await store.state() == before


async def test_add_reports_every_problem_at_once(admin, store):
    # given
    before = await store.state()

    # when
    payload = await add(admin, picklist="salesStage", key="bad key", label=" ", position=-3,
                        probability="120", isWon=True)

    # then
    assert problems(payload) == [
        (["input", "isWon"], "INVALID"), (["input", "key"], "INVALID"),
        (["input", "label"], "REQUIRED"), (["input", "position"], "OUT_OF_RANGE"),
        (["input", "probability"], "OUT_OF_RANGE"),
    ]
    assert await store.state() == before


async def test_an_unknown_picklist_message_names_the_known_ones(admin):
    # when
    payload = await add(admin, picklist="colour", key="RED", label="Red")

    # then
    [error] = payload["userErrors"]
    assert "colour" in error["message"] and "leadSource" in error["message"]
    assert "salesStage" in error["message"]


# --- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["manager", "rep"])
async def test_add_by_a_non_admin_is_forbidden_and_changes_nothing(who, team, client_for, store):
    # given
    client = await client_for(team[who])
    before = await store.state()

    # when
    body = await client.query(ADD, {"input": {
        "picklist": "leadSource", "key": "TRADE_FAIR", "label": "Trade Fair",
    }})

    # then
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == ["addPicklistValue"]
    assert await store.state() == before


@pytest.mark.parametrize("who", ["manager", "rep"])
@pytest.mark.parametrize(
    "input",
    [
        {"picklist": "leadSource", "key": "PARTNER", "label": "Resellers"},
        {"picklist": "salesStage", "key": "QUALIFICATION", "isActive": False},
        {"picklist": "salesStage", "key": "NOPE", "probability": "500"},  # checks come after
    ],
)
async def test_update_by_a_non_admin_is_forbidden_and_changes_nothing(
    who, input, team, client_for, store
):
    # given
    client = await client_for(team[who])
    before = await store.state()

    # when
    body = await client.query(UPDATE, {"input": input})

    # then
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert await store.state() == before


@pytest.mark.parametrize("who", ["manager", "rep"])
async def test_configuration_changes_are_forbidden_to_non_admins(who, team, admin, client_for):
    # given
    await change(admin, picklist="leadSource", key="PARTNER", label="Resellers")
    client = await client_for(team[who])
    [change_id] = [
        e["node"]["id"] for e in
        (await admin.data(CHANGES))["configurationChanges"]["edges"]
    ]

    # when
    body = await client.query(CHANGES, {"first": 5})
    node = await client.data(NODE, {"id": change_id})

    # then
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert node == {"node": None}


# --- updatePicklistValue: labels and positions ----------------------------------------


async def test_relabel_keeps_the_key_on_records(team, factory, db, admin, client_for, store):
    # given
    opp = await factory.opportunity(
        team["rep"], stage="QUALIFICATION", type="NEW_BUSINESS", lead_source="COLD_CALL"
    )
    await db.commit()
    deal_before = await store.deal(opp.id)

    # when
    source = await change(admin, picklist="leadSource", key="COLD_CALL", label="Cold Calling")
    stage = await change(admin, picklist="salesStage", key="QUALIFICATION", label="Qualifying")

    # then
    assert source["userErrors"] == [] and stage["userErrors"] == []
    assert source["picklistValue"] == {
        "key": "COLD_CALL", "label": "Cold Calling", "position": 1, "isActive": True,
    }
    assert source["salesStage"] is None
    assert stage["picklistValue"]["label"] == "Qualifying"
    assert stage["salesStage"]["name"] == "Qualifying"
    assert (await listed(admin, "leadSource"))[0] == {
        "key": "COLD_CALL", "label": "Cold Calling", "position": 1, "isActive": True,
    }
    assert (await listed(admin, "salesStage"))[1]["label"] == "Qualifying"
    assert (await admin.data(STAGES))["salesStages"][1]["name"] == "Qualifying"
    assert await store.deal(opp.id) == deal_before
    rep = await client_for(team["rep"])
    read = await rep.data(DEAL, {"id": to_global_id("Opportunity", opp.id)})
    assert read["node"]["leadSource"] == "COLD_CALL"
    assert read["node"]["salesStage"] == {
        "key": "QUALIFICATION", "name": "Qualifying", "probability": "20.00", "isActive": True,
    }


@pytest.mark.parametrize(
    ("key", "position", "order"),
    [
        ("PARTNER", 1, ["PARTNER", *[k for k in LEAD_SOURCES if k != "PARTNER"]]),
        ("COLD_CALL", 3, ["EXISTING_CUSTOMER", "SELF_GENERATED", "COLD_CALL",
                          *LEAD_SOURCES[3:]]),
        ("COLD_CALL", 12, [*LEAD_SOURCES[1:], "COLD_CALL"]),
        ("COLD_CALL", 50, [*LEAD_SOURCES[1:], "COLD_CALL"]),  # past the end: last
    ],
)
async def test_moving_a_value_renumbers_the_others_in_order(key, position, order, admin, store):
    # when
    payload = await change(admin, picklist="leadSource", key=key, position=position)

    # then
    assert payload["userErrors"] == []
    assert payload["picklistValue"]["position"] == order.index(key) + 1
    assert await store.keys("leadSource") == [(k, n, True) for n, k in enumerate(order, 1)]
    assert [v["key"] for v in await listed(admin, "leadSource")] == order


async def test_moving_a_stage_keeps_inactive_ones_in_the_numbering(admin, store):
    # given
    await change(admin, picklist="salesStage", key="VALUE_PROPOSITION", isActive=False)

    # when
    payload = await change(admin, picklist="salesStage", key="CLOSED_LOST", position=1)

    # then
    assert payload["userErrors"] == []
    assert await store.keys("salesStage") == [
        (k, n, k != "VALUE_PROPOSITION")
        for n, k in enumerate(["CLOSED_LOST", *STAGE_KEYS[:9]], 1)
    ]
    visible = (await admin.data(STAGES, {"all": False}))["salesStages"]
    assert [s["key"] for s in visible] == [
        "CLOSED_LOST", *[k for k in STAGE_KEYS[:9] if k != "VALUE_PROPOSITION"]
    ]


@pytest.mark.parametrize(
    ("input", "expected"),
    [
        ({"key": "NOPE"}, [(["input", "key"], "NOT_FOUND")]),
        ({"key": " "}, [(["input", "key"], "REQUIRED")]),
        ({"picklist": "colour"}, [(["input", "picklist"], "INVALID")]),
        ({"label": " "}, [(["input", "label"], "REQUIRED")]),
        ({"label": None}, [(["input", "label"], "REQUIRED")]),
        ({"label": "y" * 129}, [(["input", "label"], "TOO_LONG")]),
        ({"label": "Web Site"}, [(["input", "label"], "DUPLICATE")]),
        ({"position": 0}, [(["input", "position"], "OUT_OF_RANGE")]),
        ({"position": None}, [(["input", "position"], "REQUIRED")]),
        ({"isActive": None}, [(["input", "isActive"], "REQUIRED")]),
        ({"probability": "10"}, [(["input", "probability"], "INVALID")]),
        ({"isWon": True, "isClosed": True},
         [(["input", "isClosed"], "INVALID"), (["input", "isWon"], "INVALID")]),
        ({"picklist": "salesStage", "key": "PROSPECTING", "probability": "101"},
         [(["input", "probability"], "OUT_OF_RANGE")]),
        ({"picklist": "salesStage", "key": "PROSPECTING", "probability": "10.123"},
         [(["input", "probability"], "INVALID")]),
        ({"picklist": "salesStage", "key": "PROSPECTING", "probability": None},
         [(["input", "probability"], "REQUIRED")]),
        ({"picklist": "salesStage", "key": "PROSPECTING", "isWon": True},
         [(["input", "isWon"], "INVALID")]),
        ({"picklist": "salesStage", "key": "CLOSED_WON", "isClosed": False},
         [(["input", "isClosed"], "INVALID")]),
        ({"picklist": "salesStage", "key": "CLOSED_WON", "probability": "95"},
         [(["input", "probability"], "INVALID")]),
        ({"picklist": "salesStage", "key": "PROSPECTING", "label": "Qualification"},
         [(["input", "label"], "DUPLICATE")]),
        ({"picklist": "salesStage", "key": "NOPE", "label": "Nope"},
         [(["input", "key"], "NOT_FOUND")]),
    ],
)
async def test_update_refuses_bad_input_and_changes_nothing(input, expected, admin, store):
    # given
    before = await store.state()

    # when
    payload = await change(admin, **{"picklist": "leadSource", "key": "PARTNER", **input})

    # then
    assert payload["picklistValue"] is None and payload["salesStage"] is None
    assert problems(payload) == expected
    assert all(e["message"] for e in payload["userErrors"])
    assert await store.state() == before


async def test_update_reports_every_problem_at_once(admin, store):
    # given
    before = await store.state()

    # when
    payload = await change(admin, picklist="salesStage", key="PROSPECTING", label="",
                           position=0, probability="-5", isWon=True)

    # then
    assert problems(payload) == [
        (["input", "isWon"], "INVALID"), (["input", "label"], "REQUIRED"),
        (["input", "position"], "OUT_OF_RANGE"), (["input", "probability"], "OUT_OF_RANGE"),
    ]
    assert await store.state() == before


async def test_a_stage_that_changes_state_gets_the_states_defaults(admin, store):
    # when: an open stage becomes won, another lost, the first lost one open again
    won = await change(admin, picklist="salesStage", key="NEGOTIATION_REVIEW", isClosed=True,
                       isWon=True)
    lost = await change(admin, picklist="salesStage", key="PROPOSAL_PRICE_QUOTE",
                        isClosed=True, forecastCategory="PIPELINE")
    reopened = await change(admin, picklist="salesStage", key="CLOSED_LOST", isClosed=False,
                            probability="5")

    # then
    assert won["userErrors"] == reopened["userErrors"] == lost["userErrors"] == []
    assert won["salesStage"] | {"key": None} == {
        "key": None, "name": "Negotiation/Review", "position": 8, "probability": "100.00",
        "forecastCategory": "CLOSED", "isClosed": True, "isWon": True, "isActive": True,
    }
    assert (reopened["salesStage"]["probability"], reopened["salesStage"]["forecastCategory"],
            reopened["salesStage"]["isClosed"]) == ("5.00", "PIPELINE", False)
    assert (lost["salesStage"]["probability"], lost["salesStage"]["forecastCategory"],
            lost["salesStage"]["isClosed"], lost["salesStage"]["isWon"]) == (
        "0.00", "PIPELINE", True, False)


async def test_an_update_that_changes_nothing_records_no_audit_row(admin, store):
    # when
    payload = await change(admin, picklist="leadSource", key="PARTNER", label="Partner",
                           position=5, isActive=True)

    # then
    assert payload["userErrors"] == []
    assert payload["picklistValue"] == {
        "key": "PARTNER", "label": "Partner", "position": 5, "isActive": True,
    }
    assert await store.audit() == []


# --- deactivation ----------------------------------------------------------------------------


async def test_a_deactivated_value_stays_on_deals_but_new_writes_refuse_it(
    team, factory, db, admin, client_for, store
):
    # given: rep's deal has the values that are about to be deactivated
    opp = await factory.opportunity(
        team["rep"], stage="QUALIFICATION", type="NEW_BUSINESS", lead_source="PARTNER"
    )
    other = await factory.opportunity(team["rep"], name="Other", stage="PROSPECTING")
    await db.commit()
    deal_before = await store.deal(opp.id)
    rep = await client_for(team["rep"])

    # when
    for picklist, key in (("opportunityType", "NEW_BUSINESS"), ("leadSource", "PARTNER"),
                          ("salesStage", "QUALIFICATION")):
        payload = await change(admin, picklist=picklist, key=key, isActive=False)
        assert payload["userErrors"] == []
        assert payload["picklistValue"]["isActive"] is False

    # then: the deal is untouched and still reads fine
    assert await store.deal(opp.id) == deal_before
    read = (await rep.data(DEAL, {"id": to_global_id("Opportunity", opp.id)}))["node"]
    assert (read["type"], read["leadSource"], read["salesStage"]["key"],
            read["salesStage"]["isActive"]) == ("NEW_BUSINESS", "PARTNER", "QUALIFICATION", False)
    # ... the lists leave them out unless asked
    assert "PARTNER" not in [v["key"] for v in await listed(rep, "leadSource")]
    assert {"key": "PARTNER", "label": "Partner", "position": 5, "isActive": False} in (
        await listed(rep, "leadSource", all=True)
    )
    assert "QUALIFICATION" not in [
        s["key"] for s in (await rep.data(STAGES, {"all": False}))["salesStages"]
    ]
    # ... a new deal may not take them
    created = (await rep.data(CREATE_DEAL, {"input": {
        "name": "New", "expectedCloseDate": CLOSE, "salesStage": "QUALIFICATION",
        "type": "NEW_BUSINESS", "leadSource": "PARTNER",
    }}))["createOpportunity"]
    assert problems(created) == [
        (["input", "leadSource"], "INACTIVE"), (["input", "salesStage"], "INACTIVE"),
        (["input", "type"], "INACTIVE"),
    ]
    # ... nor may another deal be changed to them
    other_id = to_global_id("Opportunity", other.id)
    updated = (await rep.data(UPDATE_DEAL, {"input": {
        "id": other_id, "type": "NEW_BUSINESS", "leadSource": "PARTNER",
        "salesStage": "QUALIFICATION",
    }}))["updateOpportunity"]
    assert problems(updated) == [
        (["input", "leadSource"], "INACTIVE"), (["input", "salesStage"], "INACTIVE"),
        (["input", "type"], "INACTIVE"),
    ]
    staged = (await rep.data(CHANGE_STAGE, {"input": {"id": other_id, "stage": "QUALIFICATION"}}))
    assert problems(staged["changeOpportunityStage"]) == [(["input", "stage"], "INACTIVE")]
    # ... but the deal that has them can still be edited in other ways, keeping them
    kept = (await rep.data(UPDATE_DEAL, {"input": {
        "id": to_global_id("Opportunity", opp.id), "name": "Renamed",
    }}))["updateOpportunity"]
    assert kept["userErrors"] == []
    assert (kept["opportunity"]["name"], kept["opportunity"]["type"],
            kept["opportunity"]["leadSource"], kept["opportunity"]["salesStage"]["key"]) == (
        "Renamed", "NEW_BUSINESS", "PARTNER", "QUALIFICATION")


async def test_a_reactivated_value_is_accepted_again(team, admin, client_for):
    # given
    await change(admin, picklist="leadSource", key="WEB_SITE", isActive=False)
    rep = await client_for(team["rep"])

    # when
    payload = await change(admin, picklist="leadSource", key="WEB_SITE", isActive=True)
    created = (await rep.data(CREATE_DEAL, {"input": {
        "name": "New", "expectedCloseDate": CLOSE, "salesStage": "PROSPECTING",
        "leadSource": "WEB_SITE",
    }}))["createOpportunity"]

    # then
    assert payload["userErrors"] == []
    assert created["userErrors"] == []
    assert created["opportunity"]["leadSource"] == "WEB_SITE"


async def test_a_picklist_keeps_at_least_one_active_value(admin, store):
    # given
    first = await change(admin, picklist="opportunityType", key="EXISTING_BUSINESS",
                         isActive=False)
    before = await store.state()

    # when
    payload = await change(admin, picklist="opportunityType", key="NEW_BUSINESS",
                           isActive=False)

    # then
    assert first["userErrors"] == []
    assert problems(payload) == [(["input", "isActive"], "INVALID")]
    assert "last active value" in payload["userErrors"][0]["message"]
    assert await store.state() == before


@pytest.mark.parametrize(
    ("key", "input", "field", "word"),
    [
        ("CLOSED_WON", {"isActive": False}, "isActive", "won"),
        ("CLOSED_WON", {"isWon": False}, "isWon", "won"),
        ("CLOSED_WON", {"isWon": False, "isClosed": False}, "isWon", "won"),
        ("CLOSED_LOST", {"isActive": False}, "isActive", "lost"),
        ("CLOSED_LOST", {"isWon": True}, "isWon", "lost"),
        ("CLOSED_LOST", {"isClosed": False}, "isClosed", "lost"),
    ],
)
async def test_the_last_won_or_lost_stage_stays(key, input, field, word, admin, store):
    # given
    before = await store.state()

    # when
    payload = await change(admin, picklist="salesStage", key=key, **input)

    # then
    assert problems(payload) == [(["input", field], "INVALID")]
    assert f"last active {word} stage" in payload["userErrors"][0]["message"]
    assert await store.state() == before


@pytest.mark.parametrize(
    ("input", "field"),
    [({"isActive": False}, "isActive"), ({"isClosed": True}, "isClosed"),
     ({"isClosed": True, "isWon": True}, "isClosed")],
)
async def test_the_last_open_stage_stays(input, field, admin, store):
    # given: every open stage but NEGOTIATION_REVIEW deactivated
    for key in OPEN_STAGES[:-1]:
        assert (await change(admin, picklist="salesStage", key=key, isActive=False))[
            "userErrors"] == []
    before = await store.state()

    # when
    payload = await change(admin, picklist="salesStage", key="NEGOTIATION_REVIEW", **input)

    # then
    assert problems(payload) == [(["input", field], "INVALID")]
    assert "last active open stage" in payload["userErrors"][0]["message"]
    assert await store.state() == before


async def test_with_a_second_won_stage_the_first_may_go(admin):
    # given
    added = await add(admin, picklist="salesStage", key="WON_ONLINE", label="Won Online",
                      isClosed=True, isWon=True)

    # when
    payload = await change(admin, picklist="salesStage", key="CLOSED_WON", isActive=False)
    refused = await change(admin, picklist="salesStage", key="WON_ONLINE", isActive=False)

    # then
    assert added["userErrors"] == [] and payload["userErrors"] == []
    assert problems(refused) == [(["input", "isActive"], "INVALID")]


async def test_concurrent_deactivations_leave_one_active_value(team, factory, db, app, store):
    # given: two admins, each deactivating one of the two opportunity types at once
    from tests.conftest import GraphQLClient

    second = await factory.user("admin2", "ADMIN")
    tokens = [await factory.token(team["admin"]), await factory.token(second)]
    await db.commit()
    clients = [GraphQLClient(app, t) for t in tokens]

    # when
    results = await asyncio.gather(*[
        change(c, picklist="opportunityType", key=k, isActive=False)
        for c, k in zip(clients, ["EXISTING_BUSINESS", "NEW_BUSINESS"], strict=True)
    ])

    # then
    assert sorted(len(r["userErrors"]) for r in results) == [0, 1]
    assert [active for _, _, active in await store.keys("opportunityType")].count(True) == 1
    assert len(await store.audit()) == 1


async def test_concurrent_adds_get_distinct_positions(team, app, admin, store):
    # when
    results = await asyncio.gather(*[
        add(admin, picklist="campaignStatus", key=f"EXTRA_{n}", label=f"Extra {n}")
        for n in range(5)
    ])

    # then
    assert all(r["userErrors"] == [] for r in results)
    keys = await store.keys("campaignStatus")
    assert [position for _, position, _ in keys] == list(range(1, 11))
    assert sorted(k for k, _, _ in keys[5:]) == [f"EXTRA_{n}" for n in range(5)]


# --- stage probability -------------------------------------------------------------------


async def test_a_new_stage_probability_applies_to_later_stage_changes_only(
    team, factory, db, admin, client_for, store
):
    # given: a deal already in NEEDS_ANALYSIS (25) and one about to enter it
    inside = await factory.opportunity(team["rep"], name="Inside", stage="NEEDS_ANALYSIS")
    entering = await factory.opportunity(team["rep"], name="Entering", stage="PROSPECTING")
    await db.commit()
    inside_before = await store.deal(inside.id)
    rep = await client_for(team["rep"])

    # when
    payload = await change(admin, picklist="salesStage", key="NEEDS_ANALYSIS", probability="33")
    moved = (await rep.data(CHANGE_STAGE, {"input": {
        "id": to_global_id("Opportunity", entering.id), "stage": "NEEDS_ANALYSIS",
    }}))["changeOpportunityStage"]
    created = (await rep.data(CREATE_DEAL, {"input": {
        "name": "New", "expectedCloseDate": CLOSE, "salesStage": "NEEDS_ANALYSIS",
    }}))["createOpportunity"]

    # then
    assert payload["userErrors"] == []
    assert payload["salesStage"]["probability"] == "33.00"
    assert await store.deal(inside.id) == inside_before
    assert inside_before[3] == Decimal("25.00")
    read = (await rep.data(DEAL, {"id": to_global_id("Opportunity", inside.id)}))["node"]
    assert (read["probability"], read["salesStage"]["probability"]) == ("25.00", "33.00")
    assert moved["opportunity"]["probability"] == "33.00"
    assert created["opportunity"]["probability"] == "33.00"
    [row] = await store.audit()
    assert (row.before["probability"], row.after["probability"]) == ("25.00", "33.00")


# --- the audit -----------------------------------------------------------------------------


async def test_every_change_is_audited_with_who_when_before_and_after(team, admin, store):
    # given
    started = utcnow()

    # when
    await change(admin, picklist="leadSource", key="PARTNER", label="Reseller", position=1)
    await change(admin, picklist="salesStage", key="PROSPECTING", isActive=False)
    data = await admin.data(CHANGES)

    # then
    edges = data["configurationChanges"]["edges"]
    assert [e["node"]["key"] for e in edges] == ["PROSPECTING", "PARTNER"]  # newest first
    stage, source = (e["node"] for e in edges)
    assert source | {"id": None, "changedAt": None} == {
        "id": None, "changedAt": None, "kind": "PICKLIST", "scope": "leadSource",
        "key": "PARTNER", "action": "UPDATE", "changedBy": {"username": "admin"},
        "before": {"key": "PARTNER", "label": "Partner", "position": 5, "isActive": True},
        "after": {"key": "PARTNER", "label": "Reseller", "position": 1, "isActive": True},
    }
    assert stage["before"] == {
        "key": "PROSPECTING", "label": "Prospecting", "position": 1, "isActive": True,
        "probability": "10.00", "forecastCategory": "PIPELINE", "isClosed": False,
        "isWon": False,
    }
    assert stage["after"] == stage["before"] | {"isActive": False}
    for node in (stage, source):
        changed_at = dt.datetime.fromisoformat(node["changedAt"])
        assert changed_at.tzinfo is not None
        assert started - dt.timedelta(seconds=1) <= changed_at <= utcnow()
    assert len(await store.audit()) == 2


async def test_configuration_changes_page_newest_first(team, db, admin):
    # given: five picklist changes and one custom-field change recorded by someone else
    for n in range(5):
        await change(admin, picklist="industry", key="BANKING", label=f"Banking {n}")
    db.add(models.ConfigurationChange(
        kind="CUSTOM_FIELD", scope="OPPORTUNITY", key="cf_x", action="CREATE", before=None,
        after={"key": "cf_x"}, changed_by_id=team["admin"].id,
    ))
    await db.commit()

    # when
    every = (await admin.data(CHANGES, {"first": 10}))["configurationChanges"]
    first = (await admin.data(CHANGES, {"first": 2, "kind": "PICKLIST"}))["configurationChanges"]
    cursor = first["pageInfo"]["endCursor"]
    second = (await admin.data(CHANGES, {"first": 2, "after": cursor, "kind": "PICKLIST"}))[
        "configurationChanges"]
    rest = (await admin.data(CHANGES, {
        "first": 2, "after": second["pageInfo"]["endCursor"], "kind": "PICKLIST",
    }))["configurationChanges"]
    back = (await admin.data(CHANGES, {
        "last": 2, "before": rest["edges"][0]["cursor"], "kind": "PICKLIST",
    }))["configurationChanges"]
    custom = (await admin.data(CHANGES, {"kind": "CUSTOM_FIELD"}))["configurationChanges"]

    # then
    labels = [e["node"]["after"].get("label") for e in every["edges"]]
    assert labels == [None, "Banking 4", "Banking 3", "Banking 2", "Banking 1", "Banking 0"]
    assert every["totalCount"] == 6
    assert [e["node"]["after"]["label"] for e in first["edges"]] == ["Banking 4", "Banking 3"]
    assert first["totalCount"] == 5
    assert first["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["after"]["label"] for e in second["edges"]] == ["Banking 2", "Banking 1"]
    assert [e["node"]["after"]["label"] for e in rest["edges"]] == ["Banking 0"]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert [e["node"]["after"]["label"] for e in back["edges"]] == ["Banking 2", "Banking 1"]
    assert [(e["node"]["kind"], e["node"]["key"]) for e in custom["edges"]] == [
        ("CUSTOM_FIELD", "cf_x")
    ]


async def test_a_configuration_change_is_a_node_for_admins(admin):
    # given
    await change(admin, picklist="industry", key="MEDIA", label="Media & Press")
    [edge] = (await admin.data(CHANGES))["configurationChanges"]["edges"]

    # when
    data = await admin.data(NODE, {"id": edge["node"]["id"]})

    # then
    assert data["node"] == {
        "id": edge["node"]["id"], "kind": "PICKLIST", "scope": "industry", "key": "MEDIA",
        "action": "UPDATE",
    }


async def test_configuration_changes_refuse_a_page_too_large(admin):
    # when
    body = await admin.query(CHANGES, {"first": 101})

    # then
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
