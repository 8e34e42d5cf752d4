"""CSV export of opportunities: GET /export/opportunities.csv and `dealgraph export
opportunities` — columns, value formats, RFC 4180 quoting, visibility, filters, streaming."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

import models
from models.base import Base
from resolvers import exporting, importing
from resolvers.csv_fields import COLUMNS
from resolvers.errors import RequestError
from resolvers.ids import to_global_id
from resolvers.opportunity import OpportunityFilter
from resolvers.permissions import load_viewer
from tests.conftest import GraphQLClient, root

URL = "/export/opportunities.csv"
DEALGRAPH = str(Path(sys.executable).parent / "dealgraph")
KEYS = [c.key for c in COLUMNS]
UTC = dt.UTC


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def records_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def export(client: GraphQLClient, params: Any = None) -> Any:
    return await client.http.get(URL, params=params)


async def numbers(client: GraphQLClient, params: Any = None) -> list[str]:
    response = await export(client, params)
    assert response.status_code == 200, response.text
    return [r["number"] for r in records_of(response.text)]


async def custom_field(
    db: Any, admin: models.User, key: str, type: str, position: int, **kw: Any
) -> models.CustomFieldDefinition:
    d = models.CustomFieldDefinition(
        entity="OPPORTUNITY", key=key, label=kw.pop("label", key.removeprefix("cf_").title()),
        type=type, required=False, is_active=kw.pop("is_active", True), position=position,
        maps_to={}, created_by_id=admin.id, updated_by_id=admin.id, **kw,
    )
    db.add(d)
    await db.flush()
    return d


# --- columns and values ----------------------------------------------------------------


async def test_the_header_lists_the_standard_keys_then_the_active_custom_fields(
    team, factory, db, client_for
):
    # given: custom fields defined out of position order, one of them deactivated
    admin = team["admin"]
    await custom_field(db, admin, "cf_tags", "MULTI_PICKLIST", 2, options=["A", "B"])
    await custom_field(db, admin, "cf_region", "TEXT", 1, label="Sales region")
    await custom_field(db, admin, "cf_old", "TEXT", 3, is_active=False)
    await factory.opportunity(admin)
    await db.commit()
    client = await client_for(admin)

    # when
    by_key = await export(client)
    by_label = await export(client, {"labels": "true"})

    # then
    assert by_key.status_code == 200, by_key.text
    assert rows_of(by_key.text)[0] == [*KEYS, "cf_region", "cf_tags"]
    assert rows_of(by_label.text)[0] == [*(c.label for c in COLUMNS), "Sales region", "Tags"]
    assert KEYS[:4] == ["number", "name", "amount", "currency"]  # the documented order


async def test_every_value_is_written_in_its_documented_format(team, factory, db, client_for):
    # given: one deal with every kind of value, one with nulls where they are allowed
    admin, rep = team["admin"], team["rep"]
    for key, kind, position, extra in (
        ("cf_region", "TEXT", 1, {}), ("cf_score", "INTEGER", 2, {}),
        ("cf_margin", "DECIMAL", 3, {}), ("cf_flag", "BOOLEAN", 4, {}),
        ("cf_tags", "MULTI_PICKLIST", 5, {"options": ["Red", "Green", "Blue"]}),
        ("cf_due", "DATE", 6, {}), ("cf_seen", "DATETIME", 7, {}),
    ):
        await custom_field(db, admin, key, kind, position, **extra)
    account = await factory.account(rep, "Acme, Inc.")
    campaign = await factory.campaign(admin, "Spring Expo")
    with_email = await factory.contact(rep, "Rossi", first_name="Mario", email="mario@acme.it")
    no_email = await factory.contact(rep, "Bianchi", first_name="Anna")
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    updated = dt.datetime(2026, 2, 3, 4, 5, 6, 700000, tzinfo=UTC)
    full = await factory.opportunity(
        rep, "Big deal", "CLOSED_LOST", amount="1234.50", probability="0",
        close=dt.date(2027, 3, 31), account_id=account.id, campaign_id=campaign.id,
        currency="EUR", type="NEW_BUSINESS", next_step="Call back", lead_source="WEB_SITE",
        probability_is_manual=True, lost_reason="Price", actual_close_date=dt.date(2027, 4, 1),
        description="Plain", amount_source="MANUAL", created_at=created, updated_at=updated,
        custom_fields={
            "cf_region": "Nord", "cf_score": 7, "cf_margin": "12.500000", "cf_flag": False,
            "cf_tags": ["Red", "Blue"], "cf_due": "2027-01-31",
            "cf_seen": "2026-05-06T07:08:09+00:00",
        },
    )
    bare = await factory.opportunity(rep, "Bare deal", amount="0.00", close=dt.date(2027, 1, 1))
    for opp, contact in ((full, with_email), (bare, no_email)):
        db.add(models.OpportunityContact(
            opportunity_id=opp.id, contact_id=contact.id, is_primary=True
        ))
    await db.commit()
    client = await client_for(admin)

    # when
    response = await export(client)

    # then
    assert response.status_code == 200, response.text
    first, second = records_of(response.text)
    assert first == {
        "number": full.number, "name": "Big deal", "amount": "1234.50", "currency": "EUR",
        "account": "Acme, Inc.", "contact": "mario@acme.it", "expectedCloseDate": "2027-03-31",
        "actualCloseDate": "2027-04-01", "type": "NEW_BUSINESS", "nextStep": "Call back",
        "leadSource": "WEB_SITE", "salesStage": "CLOSED_LOST", "probability": "0.00",
        "probabilityIsManual": "true", "lostReason": "Price", "assignedTo": "rep",
        "campaign": "Spring Expo", "description": "Plain", "amountSource": "MANUAL",
        "createdBy": "rep", "createdAt": "2026-01-02T03:04:05+00:00",
        "updatedAt": "2026-02-03T04:05:06.700000+00:00",
        "cf_region": "Nord", "cf_score": "7", "cf_margin": "12.500000", "cf_flag": "false",
        "cf_tags": "Red | Blue", "cf_due": "2027-01-31", "cf_seen": "2026-05-06T07:08:09+00:00",
    }
    assert second["contact"] == "Anna Bianchi"  # no email: first and last name
    assert second["amount"] == "0.00"
    assert second["probability"] == "10.00"
    assert second["probabilityIsManual"] == "false"
    empty = ["account", "campaign", "actualCloseDate", "type", "nextStep", "leadSource",
             "lostReason", "description", *(k for k in first if k.startswith("cf_"))]
    assert {key: second[key] for key in empty} == dict.fromkeys(empty, "")


async def test_text_is_quoted_as_rfc_4180_says(team, factory, db, client_for):
    # given
    rep = team["rep"]
    tricky = 'He said "yes, at 10",\nthen left;\r\nback à lundi'
    opp = await factory.opportunity(rep, 'Deal, "quoted"', description=tricky)
    await db.commit()
    client = await client_for(rep)

    # when
    response = await export(client)
    head = await client.http.head(URL)

    # then
    for answer in (response, head):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.headers["content-disposition"] == (
            'attachment; filename="opportunities.csv"'
        )
    assert head.content == b""
    raw = response.content.decode("utf-8")
    assert raw.startswith(",".join(KEYS) + "\r\n")  # header of keys, CRLF, no BOM
    assert raw.endswith("\r\n")
    assert '"Deal, ""quoted"""' in raw
    assert '"He said ""yes, at 10"",\nthen left;\r\nback à lundi"' in raw
    [record] = records_of(raw)
    assert (record["number"], record["name"], record["description"]) == (
        opp.number, 'Deal, "quoted"', tricky
    )


@pytest.mark.no_database
def test_the_readme_documents_the_columns_in_export_order():
    readme = (root() / "README.md").read_text()
    section = readme.split("### CSV export and import")[1].split("\n## ")[0]
    documented = next(
        part.split() for part in section.split("`") if part.startswith("number name ")
    )
    assert documented == KEYS


# --- visibility ---------------------------------------------------------------------------


async def test_each_role_exports_only_what_it_may_see_and_never_the_recycle_bin(
    team, factory, db, client_for
):
    # given: one deal per owner, plus a deleted one of rep
    deals = {name: await factory.opportunity(user, f"{name} deal") for name, user in team.items()}
    deleted = await factory.opportunity(
        team["rep"], "binned", deleted_at=dt.datetime(2027, 1, 1, tzinfo=UTC)
    )
    await db.commit()

    def nums(*names: str) -> list[str]:
        return [deals[name].number for name in names]

    # when
    seen = {name: await numbers(await client_for(team[name])) for name in team}

    # then
    assert seen["rep"] == nums("rep")
    assert seen["manager"] == nums("manager", "rep", "rep2")
    assert seen["other_manager"] == nums("other_manager", "other_rep")
    assert seen["admin"] == nums(*team)
    assert all(deleted.number not in s for s in seen.values())


async def test_a_reference_the_viewer_may_not_see_is_written_empty(
    team, factory, db, client_for
):
    # given: rep's deal on an account and with a primary contact of other_rep, both private
    rep, other = team["rep"], team["other_rep"]
    account = await factory.account(other, "Hidden S.p.A.")
    contact = await factory.contact(other, "Verdi", email="verdi@hidden.it")
    deleted_account = await factory.account(rep, "Gone", deleted_at=dt.datetime.now(UTC))
    opp = await factory.opportunity(rep, account_id=account.id)
    gone = await factory.opportunity(rep, account_id=deleted_account.id)
    db.add(models.OpportunityContact(opportunity_id=opp.id, contact_id=contact.id,
                                     is_primary=True))
    await db.commit()

    # when
    as_rep = records_of((await export(await client_for(rep))).text)
    as_admin = records_of((await export(await client_for(team["admin"]))).text)

    # then: as GraphQL answers null for them
    assert [(r["account"], r["contact"]) for r in as_rep] == [("", ""), ("", "")]
    assert [(r["account"], r["contact"]) for r in as_admin] == [
        ("Hidden S.p.A.", "verdi@hidden.it"), ("", "")
    ]
    assert [r["number"] for r in as_rep] == [opp.number, gone.number]


async def test_without_a_valid_token_the_export_is_refused_like_graphql(
    team, factory, db, anonymous_client
):
    # given
    await factory.opportunity(team["rep"])
    await db.commit()

    # when
    missing = await export(anonymous_client)
    browser = await anonymous_client.http.get(URL, headers={"Accept": "text/html"})
    unknown = await anonymous_client.http.get(URL, headers={"Authorization": "Bearer nope"})

    # then
    for response in (missing, browser, unknown):
        assert response.status_code == 401
        body = response.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "POT" not in response.text


# --- filters ------------------------------------------------------------------------------


async def test_http_query_parameters_filter_like_the_graphql_list(team, factory, db, client_for):
    # given
    rep, rep2 = team["rep"], team["rep2"]
    account = await factory.account(rep, "Acme")
    campaign = await factory.campaign(rep, "Expo")
    a = await factory.opportunity(rep, "Alpha", "PROSPECTING", "100.00",
                                  close=dt.date(2027, 1, 10), account_id=account.id,
                                  type="NEW_BUSINESS", lead_source="WEB_SITE")
    b = await factory.opportunity(rep, "Beta", "QUALIFICATION", "500.00",
                                  close=dt.date(2027, 2, 10), campaign_id=campaign.id)
    c = await factory.opportunity(rep2, "Gamma", "CLOSED_WON", "900.00",
                                  close=dt.date(2027, 3, 10))
    d = await factory.opportunity(rep2, "Delta", "NEGOTIATION_REVIEW", "50.00",
                                  close=dt.date(2027, 4, 10))
    await db.commit()
    client = await client_for(team["manager"])
    rep_id, rep2_id = to_global_id("User", rep.id), to_global_id("User", rep2.id)

    # when / then
    assert await numbers(client, {"stage": ["PROSPECTING", "CLOSED_WON"]}) == [a.number, c.number]
    assert await numbers(client, {"stage": "QUALIFICATION,NEGOTIATION_REVIEW"}) == [
        b.number, d.number
    ]
    assert await numbers(client, {"assignedTo": rep2_id}) == [c.number, d.number]
    assert await numbers(client, {"assignedTo": f"{rep_id},{rep2_id}", "isClosed": "false"}) == [
        a.number, b.number, d.number
    ]
    assert await numbers(client, {"account": to_global_id("Account", account.id)}) == [a.number]
    assert await numbers(client, {"campaign": to_global_id("Campaign", campaign.id)}) == [b.number]
    assert await numbers(
        client, {"expectedCloseDateFrom": "2027-02-01", "expectedCloseDateTo": "2027-03-31"}
    ) == [b.number, c.number]
    assert await numbers(client, {"amountMin": "100", "amountMax": "500.00"}) == [
        a.number, b.number
    ]
    assert await numbers(client, {"type": "NEW_BUSINESS", "leadSource": "WEB_SITE"}) == [a.number]
    assert await numbers(client, {"forecastCategory": "commit,CLOSED"}) == [c.number, d.number]
    assert await numbers(client, {"isWon": "true"}) == [c.number]
    assert await numbers(client, {"search": "ELT"}) == [d.number]
    assert await numbers(client, {"search": "", "stage": ""}) == [a.number, b.number, c.number,
                                                                  d.number]  # blank: not given


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"amountMin": "lots"}, "amountMin"),
        ({"isClosed": "maybe"}, "isClosed"),
        ({"expectedCloseDateFrom": "31/03/2027"}, "expectedCloseDateFrom"),
        ({"forecastCategory": "SOMEDAY"}, "forecastCategory"),
        ({"assignedTo": "rep"}, "assignedTo"),
        ({"account": to_global_id("Campaign", 1)}, "account"),
        ({"stages": "PROSPECTING"}, "stages"),
        ({"search": ["a", "b"]}, "more than once"),
        ({"labels": "yes"}, "labels"),
        ({"customFields": '[{"key": "cf_nothing", "eq": 1}]'}, "cf_nothing"),
        ({"customFields": "not json"}, "customFields"),
    ],
)
async def test_a_bad_filter_parameter_is_a_400_that_says_which(
    team, factory, db, client_for, params, mentions
):
    # given
    await factory.opportunity(team["rep"])
    await db.commit()
    client = await client_for(team["rep"])

    # when
    response = await export(client, params)

    # then
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert mentions in error["message"]


async def test_custom_field_conditions_filter_the_export(team, factory, db, client_for):
    # given
    admin = team["admin"]
    await custom_field(db, admin, "cf_tags", "MULTI_PICKLIST", 1, options=["A", "B"])
    tagged = await factory.opportunity(admin, custom_fields={"cf_tags": ["B"]})
    await factory.opportunity(admin, custom_fields={"cf_tags": ["A"]})
    await db.commit()
    client = await client_for(admin)

    # when
    found = await numbers(client, {"customFields": '[{"key": "cf_tags", "contains": "B"}]'})

    # then
    assert found == [tagged.number]


@pytest.mark.no_database
def test_filter_from_params_and_from_json_build_the_same_filter():
    # given
    user = to_global_id("User", 3)
    params = {
        "stage": ["PROSPECTING,QUALIFICATION", " CLOSED_WON "], "assignedTo": user,
        "expectedCloseDateFrom": "2027-01-01", "amountMin": "10.50", "isClosed": "FALSE",
        "forecastCategory": "pipeline", "search": "  acme ",
    }
    document = json.dumps({
        "stage": ["PROSPECTING", "QUALIFICATION", "CLOSED_WON"], "assignedTo": [user],
        "expectedCloseDateFrom": "2027-01-01", "amountMin": 10.50, "isClosed": False,
        "forecastCategory": ["PIPELINE"], "search": "acme", "isWon": None,
    })

    # when
    from_params = exporting.filter_from_params(params)
    from_json = exporting.filter_from_json(document)

    # then
    assert from_params == from_json == OpportunityFilter(
        stage=("PROSPECTING", "QUALIFICATION", "CLOSED_WON"), assigned_to=(user,),
        expected_close_date_from=dt.date(2027, 1, 1), amount_min=Decimal("10.5"),
        is_closed=False, forecast_category=("PIPELINE",), search="acme",
    )
    assert exporting.filter_from_params({}) == OpportunityFilter()


@pytest.mark.no_database
@pytest.mark.parametrize(
    ("document", "mentions"),
    [
        ("{", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"isClosed": "nope"}', "isClosed"),
        ('{"amountMax": true}', "amountMax"),
        ('{"stage": [1]}', "stage"),
        ('{"colour": "red"}', "colour"),
        ('{"customFields": [{"key": "cf_a", "between": 1}]}', "between"),
    ],
)
def test_a_bad_filter_json_says_what_is_wrong(document, mentions):
    with pytest.raises(RequestError) as refused:
        exporting.filter_from_json(document)
    assert mentions in str(refused.value)


# --- streaming ----------------------------------------------------------------------------


async def test_rows_are_read_in_keyset_batches_and_arrive_in_id_order(
    team, factory, db, monkeypatch, statements, engine
):
    # given: five visible deals among hidden and deleted ones, in batches of two
    rep, other = team["rep"], team["other_rep"]
    account = await factory.account(rep, "Acme")
    visible = []
    for i in range(5):
        await factory.opportunity(other, f"hidden {i}", account_id=account.id)
        visible.append(await factory.opportunity(rep, f"mine {i}", account_id=account.id))
    await factory.opportunity(rep, "binned", deleted_at=dt.datetime.now(UTC))
    await db.commit()
    viewer = await load_viewer(db, rep, "PRIVATE")
    monkeypatch.setattr(exporting, "BATCH_SIZE", 2)
    statements.count, statements.sql = 0, []
    batches: list[tuple[str, Any]] = []

    def deals(conn: Any, cursor: Any, sql: str, parameters: Any, *args: Any) -> None:
        if "FROM opportunities" in sql:
            batches.append((sql, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", deals)

    # when
    try:
        rows = [row async for row in exporting.export_rows(db, viewer, None, False)]
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", deals)

    # then
    assert [row[0] for row in rows[1:]] == [opp.number for opp in visible]
    assert {row[KEYS.index("account")] for row in rows[1:]} == {"Acme"}
    assert len(batches) == 3  # 2 + 2 + 1 rows; a short batch is the last
    assert all("LIMIT" in sql for sql, _ in batches)
    assert [sql.count("opportunities.id >") for sql, _ in batches] == [0, 1, 1]  # keyset
    # no offset paging (SQLite's compiler writes OFFSET with a bound 0)
    assert all("OFFSET" not in sql or 0 in tuple(params) for sql, params in batches)
    # per batch: the deals plus one query per relation (accounts, campaigns none, users,
    # primary contacts), plus the custom field definitions once
    queries = [sql for sql in statements.sql if sql != "BEGIN"]
    assert len(queries) == 1 + 3 * 4, queries


async def test_csv_text_comes_in_chunks_header_first(team, factory, db, monkeypatch):
    # given
    rep = team["rep"]
    for i in range(6):
        await factory.opportunity(rep, f"deal {i}")
    await db.commit()
    viewer = await load_viewer(db, rep, "PRIVATE")
    monkeypatch.setattr(exporting, "BATCH_SIZE", 2)
    monkeypatch.setattr(exporting, "CHUNK_SIZE", 200)

    # when
    chunks = [chunk async for chunk in exporting.export_csv(db, viewer, None)]

    # then
    assert chunks[0] == ",".join(KEYS) + "\r\n"
    assert len(chunks) > 3
    assert [r[1] for r in rows_of("".join(chunks))[1:]] == [f"deal {i}" for i in range(6)]


async def test_the_http_export_streams_every_batch(team, factory, db, client_for, monkeypatch):
    # given
    rep = team["rep"]
    made = [await factory.opportunity(rep, f"deal {i}") for i in range(7)]
    await db.commit()
    client = await client_for(rep)
    monkeypatch.setattr(exporting, "BATCH_SIZE", 2)

    # when
    async with client.http.stream("GET", URL) as response:
        body = "".join([chunk async for chunk in response.aiter_text()])

    # then
    assert response.status_code == 200
    assert [r["number"] for r in records_of(body)] == [opp.number for opp in made]


# --- command line -------------------------------------------------------------------------


@pytest.fixture
def cli(migrated_url: str, tmp_path: Path) -> Any:
    """Runs the installed `dealgraph` against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALGRAPH_")}
    env.update(COLUMNS="200", NO_COLOR="1", DEALGRAPH_DATA_DIR=str(tmp_path / "data"))

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [DEALGRAPH, "export", "opportunities", *args, "--database-url", migrated_url],
            env=env, cwd=tmp_path, capture_output=True, timeout=120, check=False,
        )

    return run


async def test_the_command_writes_csv_to_stdout_or_to_a_file(team, factory, db, cli, tmp_path):
    # given
    rep, other = team["rep"], team["other_rep"]
    mine = await factory.opportunity(rep, "Caffè, grande", "CLOSED_WON", description="a\nb")
    theirs = await factory.opportunity(other, "Theirs", "PROSPECTING")
    await factory.opportunity(rep, "binned", deleted_at=dt.datetime.now(UTC))
    await db.commit()
    target = tmp_path / "out" / "deals.csv"
    target.parent.mkdir()

    # when
    to_stdout = cli()
    to_file = cli("-o", str(target))
    as_rep = cli("--as", "rep", "--labels")

    # then: the first active admin by default
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.startswith((",".join(KEYS) + "\r\n").encode())
    records = records_of(to_stdout.stdout.decode("utf-8"))
    assert [(r["number"], r["name"], r["description"]) for r in records] == [
        (mine.number, "Caffè, grande", "a\nb"), (theirs.number, "Theirs", "")
    ]
    assert to_file.returncode == 0, to_file.stderr
    assert to_file.stdout == b""
    assert target.read_bytes() == to_stdout.stdout
    assert list(target.parent.iterdir()) == [target]  # no partial file left behind
    assert as_rep.returncode == 0, as_rep.stderr
    rep_rows = rows_of(as_rep.stdout.decode("utf-8"))
    assert rep_rows[0] == [c.label for c in COLUMNS]
    assert [row[0] for row in rep_rows[1:]] == [mine.number]


async def test_the_command_filters_with_filter_json(team, factory, db, cli):
    # given
    rep = team["rep"]
    await factory.opportunity(rep, "open", "PROSPECTING", "100.00")
    won = await factory.opportunity(rep, "won", "CLOSED_WON", "2000.00")
    await factory.opportunity(rep, "small win", "CLOSED_WON", "5.00")
    await db.commit()

    # when
    result = cli("--filter-json", '{"isWon": true, "amountMin": 1000}')
    refused = cli("--filter-json", '{"isWon": "often"}')

    # then
    assert result.returncode == 0, result.stderr
    assert [r["number"] for r in records_of(result.stdout.decode())] == [won.number]
    assert refused.returncode == 1
    assert b"isWon" in refused.stderr
    assert refused.stdout == b""
    assert b"Traceback" not in refused.stderr


async def test_the_command_refuses_an_unknown_user_or_no_admin(team, factory, db, cli, tmp_path):
    # given
    await factory.opportunity(team["rep"])
    team["rep2"].is_active = False
    await db.commit()
    target = tmp_path / "never.csv"

    # when
    unknown = cli("--as", "nobody", "-o", str(target))
    inactive = cli("--as", "rep2")
    team["admin"].is_active = False
    await db.commit()
    no_admin = cli()

    # then
    for result, mentions in ((unknown, b"nobody"), (inactive, b"rep2"), (no_admin, b"--as")):
        assert result.returncode == 1, result.stderr
        assert mentions in result.stderr
        assert result.stdout == b""
        assert b"Traceback" not in result.stderr
    assert not target.exists()


# --- round trip ---------------------------------------------------------------------------

READ_ONLY = {c.key for c in COLUMNS if c.read_only}  # not written back by an import


async def remove_every_deal(engine: Any) -> None:
    """Delete the opportunities and every row that depends on them, keeping the rest."""
    doomed = {"opportunities"}
    tables = list(reversed(Base.metadata.sorted_tables))
    for _ in tables:  # whatever refers to a doomed table is doomed too
        doomed |= {t.name for t in tables
                   if any(fk.column.table.name in doomed for fk in t.foreign_keys)}
    async with engine.begin() as connection:
        for table in tables:
            if table.name in doomed:
                await connection.execute(table.delete())


async def test_export_then_import_into_a_database_without_deals_gives_back_every_field(
    team, factory, db, sessions, engine
):
    # given: deals using every column, exported by an admin
    admin, rep, rep2 = team["admin"], team["rep"], team["rep2"]
    db.add(models.Currency(code="USD", rate=Decimal("1.10"), is_base=False))
    for key, kind, position, extra in (
        ("cf_region", "TEXT", 1, {}), ("cf_score", "INTEGER", 2, {}),
        ("cf_margin", "DECIMAL", 3, {}), ("cf_flag", "BOOLEAN", 4, {}),
        ("cf_tags", "MULTI_PICKLIST", 5, {"options": ["Red", "Green", "Blue"]}),
        ("cf_due", "DATE", 6, {}), ("cf_seen", "DATETIME", 7, {}),
    ):
        await custom_field(db, admin, key, kind, position, **extra)
    account = await factory.account(rep, "Acme, Inc.")
    campaign = await factory.campaign(admin, "Spring Expo")
    with_email = await factory.contact(rep, "Rossi", first_name="Mario", email="mario@acme.it")
    no_email = await factory.contact(rep2, "Bianchi", first_name="Anna")
    custom = {
        "cf_region": "Nord", "cf_score": 7, "cf_margin": "12.500000", "cf_flag": True,
        "cf_tags": ["Red", "Blue"], "cf_due": "2027-01-31",
        "cf_seen": "2026-05-06T07:08:09+00:00",
    }
    deals = [
        await factory.opportunity(
            rep, 'Caffè "grande", subito', "NEEDS_ANALYSIS", "1234.50", probability="33.00",
            probability_is_manual=True, close=dt.date(2027, 3, 31), account_id=account.id,
            campaign_id=campaign.id, currency="USD", type="NEW_BUSINESS",
            next_step="Call, then mail", lead_source="WEB_SITE",
            description='Line one, "quoted"\nline two', custom_fields=custom,
        ),
        await factory.opportunity(
            rep2, "Won deal", "CLOSED_WON", "99.99", probability="100.00",
            close=dt.date(2026, 6, 30), actual_close_date=dt.date(2026, 7, 2),
            type="EXISTING_BUSINESS", custom_fields={"cf_tags": ["Green"], "cf_flag": False},
        ),
        await factory.opportunity(
            admin, "Lost deal", "CLOSED_LOST", "0.00", probability="0.00",
            close=dt.date(2026, 5, 1), actual_close_date=dt.date(2026, 5, 3),
            lost_reason="Too expensive; chose a competitor",
        ),
        await factory.opportunity(rep, "Plain deal", "PROSPECTING", close=dt.date(2027, 1, 1)),
    ]
    for opp, contact in ((deals[0], with_email), (deals[1], no_email)):
        db.add(models.OpportunityContact(
            opportunity_id=opp.id, contact_id=contact.id, is_primary=True
        ))
    await db.commit()
    async with sessions() as session:
        viewer = await load_viewer(session, admin, "PRIVATE")
        exported = "".join([c async for c in exporting.export_csv(session, viewer, None)])

    # when: imported into the same database once its deals are gone
    await remove_every_deal(engine)
    report = await importing.import_opportunities(
        sessions, viewer, exported.encode("utf-8"), importing.Options()
    )
    async with sessions() as session:
        again = "".join([c async for c in exporting.export_csv(session, viewer, None)])

    # then: every field an import writes is the same
    assert (report.created, report.failed, report.errors) == (4, 0, []), report
    before, after = records_of(exported), records_of(again)
    assert len(after) == len(before) == 4
    assert before[0]["contact"] == "mario@acme.it" and before[1]["contact"] == "Anna Bianchi"
    assert before[0]["cf_tags"] == "Red | Blue"
    for old, new in zip(before, after, strict=True):
        assert {k: v for k, v in new.items() if k not in READ_ONLY} == {
            k: v for k, v in old.items() if k not in READ_ONLY
        }
    assert rows_of(again)[0] == rows_of(exported)[0]
