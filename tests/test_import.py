"""CSV import of opportunities: reading what people have (encodings, delimiters, quoting,
numbers, dates, headers and values in English and Italian), the mutation rules per row,
duplicates, the report and the failed-rows file, dry run, all or nothing, undo, visibility,
the command line (including a killed import), GraphQL upload and polling, and the round
trip from an export."""

from __future__ import annotations

import asyncio
import codecs
import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import models
from models.base import Base
from resolvers import exporting, importing, processes
from resolvers.csv_fields import HEADERS, normalise
from resolvers.dates import today
from resolvers.ids import to_global_id
from resolvers.permissions import Viewer, load_viewer
from server.app import create_app
from server.settings import Settings
from tests.conftest import Factory, GraphQLClient

FIXTURES = Path(__file__).parent / "fixtures"
DEALGRAPH = str(Path(sys.executable).parent / "dealgraph")
D = Decimal


# --- arranging --------------------------------------------------------------------------


async def person(db: AsyncSession, username: str, full_name: str, role: str = "SALES_REP",
                 manager: models.User | None = None) -> models.User:
    user = models.User(username=username, full_name=full_name, role=role,
                       email=f"{username}@example.com",
                       manager_id=manager.id if manager else None)
    db.add(user)
    await db.flush()
    return user


@pytest.fixture
async def crm(factory: Factory, db: AsyncSession) -> dict[str, Any]:
    """People, accounts, campaigns and a contact the fixtures refer to."""
    admin = await person(db, "admin", "Administrator", "ADMIN")
    boss = await person(db, "boss", "Bruno Boss", "MANAGER")
    mrossi = await person(db, "mrossi", "Mario Rossi", "SALES_REP", boss)
    lbianchi = await person(db, "lbianchi", "Laura Bianchi", "SALES_REP", boss)
    jsmith = await person(db, "jsmith", "John Smith", "SALES_REP", boss)
    outsider = await person(db, "outsider", "Olga Outsider", "SALES_REP")
    world = {
        "admin": admin, "boss": boss, "mrossi": mrossi, "lbianchi": lbianchi,
        "jsmith": jsmith, "outsider": outsider,
        "alfa": await factory.account(mrossi, "Società Alfa S.p.A."),
        "globex": await factory.account(jsmith, "Globex, Inc."),
        "initech": await factory.account(jsmith, "Initech"),
        "fiera": await factory.campaign(admin, "Fiera di Milano"),
        "expo": await factory.campaign(admin, "Spring Expo"),
        "homer": await factory.contact(jsmith, "Simpson", first_name="Homer"),
    }
    await db.commit()
    return world


async def viewer_of(sessions: async_sessionmaker[AsyncSession], user: models.User) -> Viewer:
    async with sessions() as session:
        return await load_viewer(session, user, "PRIVATE")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


async def run(
    sessions: async_sessionmaker[AsyncSession], user: models.User, data: bytes | str,
    job: bool = False, **options: Any,
) -> importing.Report:
    """Import as `user`; with job=True as the command line does (a recorded job)."""
    viewer = await viewer_of(sessions, user)
    raw = data.encode() if isinstance(data, str) else data
    opts = importing.Options(**options)
    if not job:
        return await importing.import_opportunities(sessions, viewer, raw, opts)
    table = importing.read_table(raw)
    created = await importing.create_job(sessions, viewer, "test.csv", opts, len(table.rows))
    return await importing.run_job(sessions, viewer, table, opts, "test.csv", created.id)


async def deals(sessions: async_sessionmaker[AsyncSession]) -> dict[str, models.Opportunity]:
    async with sessions() as session:
        stmt = select(models.Opportunity).where(models.Opportunity.deleted_at.is_(None))
        return {o.name: o for o in (await session.scalars(stmt)).all()}


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def history(sessions: async_sessionmaker[AsyncSession], opp_id: int) -> list[tuple[Any, ...]]:
    async with sessions() as session:
        stmt = (select(models.StageChange.from_stage, models.StageChange.to_stage)
                .where(models.StageChange.opportunity_id == opp_id)
                .order_by(models.StageChange.id))
        return [tuple(r) for r in (await session.execute(stmt)).all()]


def problems(report: importing.Report) -> list[tuple[int, str | None]]:
    return [(i.line, i.column) for i in report.errors]


# --- reading: pure functions --------------------------------------------------------------


@pytest.mark.no_database
@pytest.mark.parametrize(("data", "encoding", "expected"), [
    ("Società;€".encode(), "utf-8", "Società;€"),
    (codecs.BOM_UTF8 + "Società;€".encode(), "utf-8-sig", "Società;€"),
    ("Società;€ — ok".encode("cp1252"), "windows-1252", "Società;€ — ok"),
    ("Società".encode("latin-1") + b"\x81", "iso-8859-1", "Società\x81"),
    ("Società\tx".encode("utf-16"), "utf-16", "Società\tx"),
])
def test_the_encoding_is_detected(data: bytes, encoding: str, expected: str) -> None:
    assert importing.decode(data) == (expected, encoding)


@pytest.mark.no_database
@pytest.mark.parametrize(("text", "delimiter"), [
    ("a,b,c\n1,2,3\n", ","),
    ("a;b;c\n1,5;2,5;3\n", ";"),
    ("a\tb\tc\n1, 2;\t2\t3\n", "\t"),
    ("a|b|c\n1,2|x;y|3\n", "|"),
    ('name;description\n"x";"a, b, c, d, e"\n"y";"f, g"\n', ";"),
    ('name,description\nx,"a; b; c; d"\ny,"e; f; g"\n', ","),
    ("name\nonly one column\n", ","),
])
def test_the_delimiter_is_detected(text: str, delimiter: str) -> None:
    assert importing.sniff_delimiter(text) == delimiter


@pytest.mark.no_database
@pytest.mark.parametrize(("text", "decimal_comma", "expected"), [
    ("1.234,56", True, "1234.56"), ("1,234.56", False, "1234.56"),
    ("1.234,56", False, "1234.56"), ("1,234.56", True, "1234.56"),
    ("1234,56", False, "1234.56"), ("980,5", True, "980.5"),
    ("1.234.567", False, "1234567"), ("1,234,567", True, "1234567"),
    ("1.234", True, "1234"), ("1.234", False, "1.234"),
    ("1,234", False, "1234"), ("1,234", True, "1.234"),
    ("€ 1 234,56", True, "1234.56"), ("1\u00a0234,56 €", True, "1234.56"),
    ("EUR 1.500,00", True, "1500.00"), ("$1,500.00", False, "1500.00"),
    ("1'234.50", False, "1234.50"), ("25%", False, "25"), ("25 %", True, "25"),
    ("12,5%", True, "12.5"), ("15000.00000000", False, "15000.00000000"), ("-3", False, "-3"),
])
def test_numbers_in_every_notation(text: str, decimal_comma: bool, expected: str) -> None:
    assert importing.parse_number(text, decimal_comma) == Decimal(expected)


@pytest.mark.no_database
@pytest.mark.parametrize("text", ["molto", "1,2,3.4.5", "NaN", "Infinity", "1..2", ""])
def test_what_is_not_a_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a number"):
        importing.parse_number(text, True)


@pytest.mark.no_database
@pytest.mark.parametrize(("values", "default", "expected"), [
    (["1.234,56", "45.000"], False, True),
    (["1,234.56", "45,000"], True, False),
    (["980,5"], False, True),
    (["15000.00000000"], True, False),
    (["1.234.567"], False, True),
    (["45.000"], True, True), (["45.000"], False, False),
    ([], True, True),
])
def test_the_decimal_separator_is_read_from_the_file(
    values: list[str], default: bool, expected: bool
) -> None:
    assert importing.decimal_comma_of(values, default) is expected


@pytest.mark.no_database
@pytest.mark.parametrize(("text", "expected"), [
    ("2027-03-31", dt.date(2027, 3, 31)), ("2027-3-1", dt.date(2027, 3, 1)),
    ("2027-03-31 10:00:00", dt.date(2027, 3, 31)), ("2027-03-31T10:00:00+02:00",
                                                      dt.date(2027, 3, 31)),
    ("31/03/2027", dt.date(2027, 3, 31)), ("31.03.2027", dt.date(2027, 3, 31)),
    ("31-03-2027", dt.date(2027, 3, 31)), ("1/2/2027", dt.date(2027, 2, 1)),
    ("02/01/2026 09:15", dt.date(2026, 1, 2)), ("2027/03/31", dt.date(2027, 3, 31)),
])
def test_dates_in_every_form(text: str, expected: dt.date) -> None:
    assert importing.parse_date(text) == expected


@pytest.mark.no_database
@pytest.mark.parametrize("text", ["31/02/2027", "2027-13-01", "domani", "03/31/27", "31 marzo"])
def test_what_is_not_a_date_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a date"):
        importing.parse_date(text)


@pytest.mark.no_database
def test_headers_map_by_key_english_label_vtiger_label_and_italian_label() -> None:
    expected = {
        "name": ["name", "Opportunity Name", "Potential Name", "Nome Opportunità",
                 "NOME OPPORTUNITA", "nome  opportunità"],
        "number": ["Potential No", "Opportunity No"],
        "amount": ["Amount", "Ammontare", "Ammontare (€)", "AMMONTARE"],
        "account": ["Organization Name", "Related To", "Nome Azienda", "nome azienda"],
        "expectedCloseDate": ["Expected Close Date", "Data di chiusura attesa",
                              "DATA DI CHIUSURA ATTESA"],
        "type": ["Type", "Tipo"], "nextStep": ["Next Step", "Prossimo Step"],
        "leadSource": ["Lead Source", "Fonte Lead"],
        "salesStage": ["Sales Stage", "Stadio di vendita"],
        "assignedTo": ["Assigned To", "Assegnato a", "assegnato A"],
        "probability": ["Probability", "Probabilità (%)", "probabilita (%)", "PROBABILITÀ"],
        "campaign": ["Campaign Source", "Fonte Campagna"],
        "description": ["Description", "Descrizione"],
        "createdAt": ["Created Time", "createdAt"], "amountSource": ["amountSource"],
    }
    for key, headers in expected.items():
        for header in headers:
            assert HEADERS[normalise(header)].key == key, header


@pytest.mark.no_database
def test_headers_map_from_vtenexts_own_labels_the_accent_a_backtick() -> None:
    # VTECRM/vtenext modules/Potentials/language/it_it.lang.php and en_us.lang.php
    expected = {
        "name": ["Nome Opportunita`", "Potential Name"],
        "number": ["Numero Opportunita`", "Numero Opportunità"],
        "account": ["Collegato a", "Related To"],
        "amount": ["Ammontare"],
        "expectedCloseDate": ["Data di chiusura attesa", "Data chiusura attesa:"],
        "actualCloseDate": ["Data chiusura effettiva", "Effective closing date"],
        "salesStage": ["Stadio di vendita", "Stadio vendita:"],
        "probability": ["Probabilita` (%)", "Probabilita`  (%):", "Probabilità (%)"],
        "leadSource": ["Fonte Lead"], "campaign": ["Fonte Campagna"],
        "assignedTo": ["Assegnato a"], "nextStep": ["Prossimo Step"],
        "type": ["Tipo", "Tipo Opportunita`", "Opportunity Type"],
        "description": ["Descrizione"], "currency": ["Valuta"],
        "createdAt": ["Orario creazione", "Time created"],
        "updatedAt": ["Orario modifica", "Modified Time"],
        "createdBy": ["Creatore", "Creator"],
    }
    for key, headers in expected.items():
        for header in headers:
            assert HEADERS[normalise(header)].key == key, header


@pytest.mark.no_database
def test_records_keep_the_line_they_start_on() -> None:
    table = importing.read_table(fixture("multiline_quoted.csv"))
    assert table.delimiter == ";" and table.encoding == "utf-8"
    assert [line for line, _ in table.rows] == [2, 5, 7]
    assert table.rows[0][1][0] == "Rinnovo; contratto"
    assert table.rows[0][1][5] == (
        'Riga uno; con punto e virgola\nRiga due, con virgola\nRiga "tre"'
    )


@pytest.mark.no_database
@pytest.mark.parametrize(("data", "says"), [
    (b"", "empty"), (b" \r\n \r\n", "empty"), (b"PK\x03\x04\x14\x00", "xlsx"),
    (b"name,amount\nx,\x001\n", "NUL"),
])
def test_unusable_files_are_refused_before_anything(data: bytes, says: str) -> None:
    with pytest.raises(importing.UnusableInput, match=says):
        importing.read_table(data)


# --- what people have --------------------------------------------------------------------


async def test_a_vtenext_export_with_its_own_labels_imports_completely(crm, sessions, engine):
    # given: a Potentials export as vtenext writes it (include/utils/ExportUtils.php): UTF-8,
    # every cell quoted, semicolons, CRLF; its field labels in its field order, the accent a
    # backtick; raw values (dates 2027-03-31, amounts 1234.56, probabilities 10.000); the
    # picklists by their it_it labels, "--Nessuno--" when empty; "Collegato a" and "Fonte
    # Campagna" as Module::::Name; the assignee by user name
    data = fixture("vtenext_opportunita.csv")
    table = importing.read_table(data)
    assert table.headers[:3] == ["Nome Opportunita`", "Numero Opportunita`", "Collegato a"]

    # when
    report = await run(sessions, crm["admin"], data, create_missing_accounts=True)

    # then: every row
    assert (report.created, report.failed, report.errors) == (9, 0, []), report.errors
    assert (report.encoding, report.delimiter) == ("utf-8", ";")
    assert report.warnings == [
        "Column 'Numero Opportunita`' is read-only (numbers are given on create); ignored.",
        "Column 'Orario modifica' is read-only; ignored.",
        "Column 'Orario creazione' is read-only; ignored.",
        "Column 'Creatore' is read-only; ignored.",
    ]
    got = await deals(sessions)
    alfa, globex, initech = crm["alfa"].id, crm["globex"].id, crm["initech"].id
    fiera, expo = crm["fiera"].id, crm["expo"].id
    mrossi, lbianchi, jsmith, admin = (crm[u].id for u in ("mrossi", "lbianchi", "jsmith",
                                                            "admin"))
    async with sessions() as session:
        beta = (await session.scalars(select(models.Account).where(
            models.Account.name == "Beta S.r.l."))).one()
    assert {n: (o.sales_stage, o.type, o.lead_source, o.account_id, o.campaign_id,
                o.assigned_to_id, o.amount, o.probability, o.probability_is_manual)
            for n, o in got.items()} == {
        "Fornitura caffè": ("CLOSED_WON", "NEW_BUSINESS", "TRADE_SHOW", alfa, fiera, mrossi,
                            D("1234.56"), D("100.00"), False),
        "Manutenzione impianti": ("QUALIFICATION", "EXISTING_BUSINESS", "WORD_OF_MOUTH", alfa,
                                  None, mrossi, D("12500.00"), D("20.00"), False),
        "Consulenza ESG": ("NEGOTIATION_REVIEW", "NEW_BUSINESS", "WEB_SITE", beta.id, fiera,
                           lbianchi, D("980.50"), D("85.00"), True),
        "Licenze software": ("PROSPECTING", None, None, alfa, None, lbianchi, D("45000.00"),
                             D("10.00"), False),
        "Rinnovo Initech": ("PROPOSAL_PRICE_QUOTE", "EXISTING_BUSINESS", "COLD_CALL", initech,
                            expo, jsmith, D("3000.00"), D("65.00"), False),
        "Analisi Globex": ("ID_DECISION_MAKERS", "NEW_BUSINESS", "DIRECT_MAIL", globex, None,
                           jsmith, D("7500.00"), D("40.00"), False),
        "Formazione Initech": ("NEEDS_ANALYSIS", "NEW_BUSINESS", "EXISTING_CUSTOMER", initech,
                               None, jsmith, D("0.00"), D("25.00"), False),
        "Portale clienti": ("VALUE_PROPOSITION", "NEW_BUSINESS", "SELF_GENERATED", globex,
                            None, jsmith, D("18000.00"), D("30.00"), False),
        "Audit sicurezza": ("PERCEPTION_ANALYSIS", "EXISTING_BUSINESS", "CONFERENCE", initech,
                            None, admin, D("6400.00"), D("50.00"), False),
    }
    caffe, consulenza, licenze = (got["Fornitura caffè"], got["Consulenza ESG"],
                                  got["Licenze software"])
    assert (caffe.expected_close_date, caffe.actual_close_date, caffe.next_step,
            caffe.description) == (dt.date(2027, 3, 31), dt.date(2026, 11, 20),
                                   "Chiamare l'ufficio acquisti", "Sconto 5%; consegna a maggio")
    assert consulenza.description == "Prima riga\r\nSeconda riga; con punto e virgola"
    assert licenze.description == 'Cliente storico — rinnovo, "priorità" alta'
    assert beta.assigned_to_id == admin
    for deal in got.values():  # numbers are given on create, never taken from the file
        assert not deal.number.startswith("POT10")
        assert await history(sessions, deal.id) == [(None, deal.sales_stage)]
        assert deal.actual_close_date is None or deal.sales_stage == "CLOSED_WON"
    assert await count(engine, "accounts") == 4


async def test_a_windows_1252_file_imports_with_its_accents(crm, sessions):
    data = ("Nome Opportunità;Data di chiusura attesa;Stadio di vendita;Ammontare;Descrizione\n"
            "Caffè;30/06/2027;Qualificazione;€ 1.000;Cliente storico — rinnovo\n"
            ).encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")

    report = await run(sessions, crm["admin"], data)

    assert (report.created, report.failed, report.encoding) == (1, 0, "windows-1252")
    deal = (await deals(sessions))["Caffè"]
    assert (deal.amount, deal.description) == (D("1000.00"), "Cliente storico — rinnovo")


async def test_an_english_vtiger_export_imports_with_the_right_values(crm, sessions):
    # when
    report = await run(sessions, crm["admin"], fixture("vtiger_potentials.csv"))

    # then
    assert (report.created, report.failed, report.errors) == (3, 0, [])
    assert (report.encoding, report.delimiter) == ("utf-8", ",")
    assert sorted(report.warnings) == sorted([
        "Column 'Potential No' is read-only (numbers are given on create); ignored.",
        "Column 'Created Time' is read-only; ignored.",
        "Column 'Modified Time' is read-only; ignored.",
    ])
    got = await deals(sessions)
    widgets, gadget, pilot = (got["Widgets, annual contract"], got["Gadget rollout"],
                              got["Pilot"])
    assert (widgets.amount, widgets.expected_close_date, widgets.sales_stage,
            widgets.probability, widgets.probability_is_manual, widgets.assigned_to_id,
            widgets.account_id, widgets.campaign_id, widgets.type, widgets.lead_source,
            widgets.next_step, widgets.description) == (
        D("15000.00"), dt.date(2027, 3, 31), "PROPOSAL_PRICE_QUOTE", D("65.00"), False,
        crm["jsmith"].id, crm["globex"].id, crm["expo"].id, "NEW_BUSINESS", "TRADE_SHOW",
        "Send proposal", 'Includes "premium" support')
    assert (gadget.amount, gadget.sales_stage, gadget.probability, gadget.actual_close_date,
            gadget.assigned_to_id, gadget.type, gadget.lead_source) == (
        D("1234567.89"), "CLOSED_WON", D("100.00"), today(), crm["jsmith"].id,
        "EXISTING_BUSINESS", "WEB_SITE")
    assert (pilot.amount, pilot.sales_stage, pilot.probability, pilot.probability_is_manual,
            pilot.assigned_to_id, pilot.account_id) == (
        D("2500.00"), "ID_DECISION_MAKERS", D("55.00"), True, crm["admin"].id,
        crm["initech"].id)
    async with sessions() as session:
        link = (await session.scalars(select(models.OpportunityContact).where(
            models.OpportunityContact.opportunity_id == widgets.id))).one()
    assert (link.contact_id, link.is_primary) == (crm["homer"].id, True)


@pytest.mark.parametrize(("name", "encoding", "delimiter", "expected"), [
    ("utf8_bom.csv", "utf-8-sig", ",", {
        "Caffè espresso": (D("99.90"), dt.date(2027, 5, 5), "VALUE_PROPOSITION", "EMPLOYEE"),
        "Tè verde": (D("1250.00"), dt.date(2027, 5, 6), "VALUE_PROPOSITION", "EMPLOYEE"),
    }),
    ("tab_delimited.tsv", "utf-8", "\t", {
        "Tab deal one": (D("1500.00"), dt.date(2027, 5, 5), "NEEDS_ANALYSIS", None),
        "Tab deal two": (D("2000.00"), dt.date(2027, 5, 6), "NEEDS_ANALYSIS", None),
    }),
    ("pipe_delimited.csv", "utf-8", "|", {
        "Pipe deal": (D("750.00"), dt.date(2027, 7, 7), "PROSPECTING", None),
        "Pipe | quoted": (D("1000.50"), dt.date(2027, 7, 8), "PERCEPTION_ANALYSIS", None),
    }),
])
async def test_bom_tab_and_pipe_files_import(crm, sessions, name, encoding, delimiter, expected):
    # given
    assert fixture(name).startswith(codecs.BOM_UTF8) is (encoding == "utf-8-sig")

    # when
    report = await run(sessions, crm["admin"], fixture(name))

    # then
    assert (report.created, report.failed, report.warnings) == (2, 0, [])
    assert (report.encoding, report.delimiter) == (encoding, delimiter)
    got = await deals(sessions)
    assert {n: (o.amount, o.expected_close_date, o.sales_stage, o.lead_source)
            for n, o in got.items()} == expected
    assert {o.assigned_to_id for o in got.values()} == {crm["jsmith"].id}
    assert {o.account_id for o in got.values()} == {crm["initech"].id}
    if name == "tab_delimited.tsv":
        assert got["Tab deal one"].description == "A comma, and a semicolon; inside"
        assert got["Tab deal two"].description == "Quoted\ttab"


async def test_an_iso_8859_1_file_imports_with_its_accents(crm, sessions):
    data = ("Nome Opportunità;Data di chiusura attesa;Stadio di vendita;Ammontare\n"
            "Città di Forlì;30/06/2027;Qualificazione;1.000\n").encode("iso-8859-1")

    report = await run(sessions, crm["admin"], data)

    assert (report.created, report.failed) == (1, 0)
    deal = (await deals(sessions))["Città di Forlì"]
    assert (deal.amount, deal.sales_stage) == (D("1000.00"), "QUALIFICATION")


async def test_quoted_fields_keep_their_delimiters_quotes_and_newlines(crm, sessions):
    # when
    report = await run(sessions, crm["admin"], fixture("multiline_quoted.csv"))

    # then: the third record starts on line 7, after two multi-line ones
    assert (report.created, report.failed) == (2, 1)
    assert problems(report) == [(7, "Stadio di vendita")]
    assert "'Quasi chiusa' is not a sales stage" in report.errors[0].message
    got = await deals(sessions)
    assert got["Rinnovo; contratto"].description == (
        'Riga uno; con punto e virgola\nRiga due, con virgola\nRiga "tre"'
    )
    assert got["Secondo"].description == "Una\nDue"


async def test_picklists_match_keys_english_and_italian_labels_and_references_natural_keys(
    crm, sessions
):
    rows = [
        "name;expectedCloseDate;salesStage;type;leadSource;assignedTo;account;campaign",
        "k;2027-01-01;PERCEPTION_ANALYSIS;NEW_BUSINESS;WEB_SITE;JSMITH;initech;SPRING EXPO",
        "en;2027-01-01;Perception Analysis;New Business;Web Site;John Smith;INITECH;spring expo",
        "it;2027-01-01;Analisi di percezione;Nuovo Business;Web Site;john  smith;Initech;"
        "Spring Expo",
        "acc;2027-01-01;analisi di PERCEZIONE;nuovo BUSINESS;WEB SITE;jsmith@example.com;Initech;",
    ]

    report = await run(sessions, crm["admin"], "\n".join(rows))

    assert (report.created, report.errors) == (4, [])
    got = await deals(sessions)
    assert {(o.sales_stage, o.type, o.lead_source, o.assigned_to_id, o.account_id)
            for o in got.values()} == {("PERCEPTION_ANALYSIS", "NEW_BUSINESS", "WEB_SITE",
                                        crm["jsmith"].id, crm["initech"].id)}
    assert {o.campaign_id for o in got.values()} == {crm["expo"].id, None}


VTENEXT_LABELS = {  # it_it, as in VTECRM/vtenext modules/Potentials/language/it_it.lang.php
    "salesStage": {
        "In Prospettiva": "PROSPECTING", "Qualificazione": "QUALIFICATION",
        "Da Analizzare": "NEEDS_ANALYSIS", "Proposto il valore": "VALUE_PROPOSITION",
        "Potere decisionale": "ID_DECISION_MAKERS",
        "Analisi di percezione": "PERCEPTION_ANALYSIS",
        "Proposta/Preventivo Prezzo": "PROPOSAL_PRICE_QUOTE",
        "Proposta/Prezzo Preventivo": "PROPOSAL_PRICE_QUOTE",  # include/language/it_it
        "Trattativa/Revisione": "NEGOTIATION_REVIEW", "Chiuso VINTO": "CLOSED_WON",
        "Chiuso Vinto": "CLOSED_WON",
    },
    "type": {"Business Esistente": "EXISTING_BUSINESS", "Nuovo Business": "NEW_BUSINESS"},
    "leadSource": {
        "Chiamata a freddo": "COLD_CALL", "Cliente Esistente": "EXISTING_CUSTOMER",
        "Autogenerato": "SELF_GENERATED", "Dipendente": "EMPLOYEE", "Partner": "PARTNER",
        "Pubbliche relazioni": "PUBLIC_RELATIONS", "Mail Diretta": "DIRECT_MAIL",
        "Conferenza": "CONFERENCE", "Fiera": "TRADE_SHOW", "Web Site": "WEB_SITE",
        "Passaparola": "WORD_OF_MOUTH", "Altro": "OTHER",
    },
}


@pytest.mark.parametrize("column", ["salesStage", "type", "leadSource"])
async def test_every_vtenext_value_label_is_read(crm, sessions, column):
    # given: a row per label of vtenext's (the stage column: Closed Lost needs a reason)
    labels = VTENEXT_LABELS[column]
    header = "name;expectedCloseDate;salesStage;type;leadSource;lostReason"
    rows = []
    for i, label in enumerate([*labels, "--Nessuno--", "--None--"]):
        cells = {"salesStage": "Qualificazione", "type": "", "leadSource": "", column: label}
        rows.append(f"deal {i};2027-01-01;{cells['salesStage']};{cells['type']};"
                    f"{cells['leadSource']};")
    if column == "salesStage":
        rows[-2:] = ["lost;2027-01-01;Chiuso PERSO;;;Price"]  # and a blank stage is missing

    # when
    report = await run(sessions, crm["admin"], "\n".join([header, *rows]))

    # then
    assert (report.failed, report.errors) == (0, [])
    got = await deals(sessions)
    attribute = {"salesStage": "sales_stage", "type": "type", "leadSource": "lead_source"}
    values = [getattr(got[f"deal {i}"], attribute[column]) for i in range(len(labels))]
    assert values == list(labels.values())
    if column == "salesStage":
        assert got["lost"].sales_stage == "CLOSED_LOST"
    else:  # vtenext's empty picklist, in Italian and in English
        blank = [getattr(got[f"deal {i}"], attribute[column])
                 for i in range(len(labels), len(labels) + 2)]
        assert blank == [None, None]


async def test_a_vtenext_reference_names_its_module(crm, sessions):
    rows = [
        "Nome Opportunita`;Data di chiusura attesa;Stadio di vendita;Collegato a;Fonte Campagna",
        "azienda;2027-01-01;Qualificazione;Accounts::::Initech;Campaigns::::Spring Expo",
        "persona;2027-01-01;Qualificazione;Contacts::::Homer Simpson;",
        "lead;2027-01-01;Qualificazione;Leads::::Initech;",
        "campagna sbagliata;2027-01-01;Qualificazione;;Accounts::::Initech",
    ]

    report = await run(sessions, crm["admin"], "\n".join(rows))

    assert report.created == 2
    assert [(i.line, i.column, i.message) for i in report.errors] == [
        (4, "Collegato a", "'Leads::::Initech' is not an account"),
        (5, "Fonte Campagna", "'Accounts::::Initech' is not a campaign"),
    ]
    got = await deals(sessions)
    assert (got["azienda"].account_id, got["azienda"].campaign_id) == (
        crm["initech"].id, crm["expo"].id)
    async with sessions() as session:
        link = (await session.scalars(select(models.OpportunityContact).where(
            models.OpportunityContact.opportunity_id == got["persona"].id))).one()
    assert (got["persona"].account_id, link.contact_id, link.is_primary) == (
        None, crm["homer"].id, True)


# --- failures, reported by line and column --------------------------------------------------


async def test_failed_rows_are_reported_by_line_and_column_and_come_back_as_a_file_to_fix(
    crm, sessions
):
    # when
    report = await run(sessions, crm["admin"], fixture("bad_rows.csv"))

    # then: the good rows are written, each bad one is reported and not written
    assert (report.total, report.processed, report.created, report.failed) == (8, 8, 1, 7)
    assert problems(report) == [
        (3, "Data di chiusura attesa"), (4, "Stadio di vendita"), (5, "Nome Azienda"),
        (6, "Ammontare"), (7, "Assegnato a"), (8, "Nome Opportunità"), (9, "Nome Azienda"),
    ]
    messages = [i.message for i in report.errors]
    assert "'31/02/2027' is not a date" in messages[0]
    assert "'Quasi chiusa' is not a sales stage; use one of: PROSPECTING" in messages[1]
    assert "No account named 'Nuova Azienda S.r.l.'" in messages[2]
    assert messages[3] == "'molto' is not a number"
    assert messages[4] == "No user 'nessuno'."
    assert messages[5] == "Name is required."
    assert set(await deals(sessions)) == {"Buono"}

    # and the failed rows, with an error column, fixed and imported again, all pass
    assert report.failed_rows_csv is not None
    failed = list(csv.reader(io.StringIO(report.failed_rows_csv, newline=""), delimiter=";"))
    assert failed[0] == [*importing.read_table(fixture("bad_rows.csv")).headers,
                         "Import error"]
    assert [r[0] for r in failed[1:]] == [
        "Data sbagliata", "Stadio sconosciuto", "Azienda sconosciuta", "Importo sbagliato",
        "Utente sconosciuto", "", "Ultimo buono",
    ]
    assert failed[1][-1].startswith("line 3: Data di chiusura attesa: '31/02/2027'")
    fixes = {"31/02/2027": "28/02/2027", "Quasi chiusa": "Chiuso VINTO", "molto": "8.000,00",
             "nessuno": "mrossi"}
    for row in failed[1:]:
        row[:-1] = [fixes.get(cell, cell) for cell in row[:-1]]
        row[0] = row[0] or "Senza nome"
    out = io.StringIO()
    csv.writer(out, delimiter=";").writerows(failed)
    again = await run(sessions, crm["admin"], out.getvalue().encode("utf-8-sig"),
                      create_missing_accounts=True)
    assert (again.created, again.failed, again.errors, again.warnings) == (7, 0, [], [])
    got = await deals(sessions)
    assert len(got) == 8
    assert (got["Data sbagliata"].expected_close_date, got["Importo sbagliato"].amount,
            got["Stadio sconosciuto"].sales_stage) == (
        dt.date(2027, 2, 28), D("8000.00"), "CLOSED_WON")
    assert got["Azienda sconosciuta"].account_id == got["Ultimo buono"].account_id is not None


async def test_every_unreadable_cell_of_a_row_is_reported_at_once(crm, sessions):
    data = ("Opportunity Name,Amount,Expected Close Date,Sales Stage,Probability\n"
            "x,lots,2027-02-30,Prospecting,high\n")

    report = await run(sessions, crm["admin"], data)

    assert problems(report) == [(2, "Amount"), (2, "Expected Close Date"), (2, "Probability")]
    assert report.failed_rows_csv is not None
    assert list(csv.reader(io.StringIO(report.failed_rows_csv)))[1][-1] == (
        "line 2: Amount: 'lots' is not a number; Expected Close Date: '2027-02-30' is not "
        "a date (use 2027-03-31 or 31/03/2027); Probability: 'high' is not a number"
    )


async def test_every_problem_of_a_row_is_reported_at_once_unreadable_cells_and_rules(
    crm, sessions, engine
):
    # given: a row with five problems, two of the rules' (no name, an unknown stage) and
    # three unreadable cells (a number, a date, a user); a row whose only problem is an
    # unreadable cell; a good row
    data = ("Nome Opportunità;Ammontare;Data di chiusura attesa;Stadio di vendita;Assegnato a\n"
            ";molto;31/02/2027;Quasi chiusa;nessuno\n"
            "Quasi buono;1.000,00;31/02/2027;Qualificazione;jsmith\n"
            "Buono;1.000,00;31/03/2027;Qualificazione;jsmith\n")

    # when
    report = await run(sessions, crm["admin"], data)

    # then: all five, in the order of the columns; nothing of the bad rows is written
    assert (report.created, report.failed) == (1, 2)
    assert [(i.line, i.column, i.message) for i in report.errors] == [
        (2, "Nome Opportunità", "Name is required."),
        (2, "Ammontare", "'molto' is not a number"),
        (2, "Data di chiusura attesa",
         "'31/02/2027' is not a date (use 2027-03-31 or 31/03/2027)"),
        (2, "Stadio di vendita", "'Quasi chiusa' is not a sales stage; use one of: "
         "PROSPECTING, QUALIFICATION, NEEDS_ANALYSIS, VALUE_PROPOSITION, ID_DECISION_MAKERS, "
         "PERCEPTION_ANALYSIS, PROPOSAL_PRICE_QUOTE, NEGOTIATION_REVIEW, CLOSED_WON, "
         "CLOSED_LOST."),
        (2, "Assegnato a", "No user 'nessuno'."),
        (3, "Data di chiusura attesa",
         "'31/02/2027' is not a date (use 2027-03-31 or 31/03/2027)"),
    ]
    assert report.failed_rows_csv is not None
    reasons = [r[-1] for r in csv.reader(io.StringIO(report.failed_rows_csv), delimiter=";")]
    assert reasons[1].startswith(
        "line 2: Nome Opportunità: Name is required.; Ammontare: 'molto' is not a number; "
        "Data di chiusura attesa: '31/02/2027' is not a date")
    assert reasons[1].endswith("; Assegnato a: No user 'nessuno'.")
    assert set(await deals(sessions)) == {"Buono"}
    assert await count(engine, "stage_changes") == 1


async def test_an_overwriting_row_reports_every_problem_and_changes_nothing(
    crm, sessions, existing
):
    # given: a row matching an existing deal, with an unreadable amount and an unknown stage
    data = ("Opportunity Name,Amount,Sales Stage,Next Step\n"
            "Existing deal,lots,Almost won,Call again\n")

    # when
    report = await run(sessions, crm["admin"], data, duplicates="overwrite", match=("name",))

    # then
    assert (report.updated, report.failed) == (0, 1)
    assert problems(report) == [(2, "Amount"), (2, "Sales Stage")]
    deal = (await deals(sessions))["Existing deal"]
    assert (deal.version, deal.amount, deal.sales_stage, deal.next_step) == (
        existing.version, D("1000.00"), "PROSPECTING", None)


async def test_the_mutation_rules_apply_to_every_row(crm, sessions):
    rows = [
        "Opportunity Name;Amount;Expected Close Date;Sales Stage;Probability;Lost Reason;Currency",
        "lost, no reason;10;2027-01-01;Closed Lost;;;",
        "lost, with reason;10;2027-01-01;Closed Lost;;Price;",
        "negative;-5;2027-01-01;Prospecting;;;",
        "too precise;1,005;2027-01-01;Prospecting;;;",
        "over 100;10;2027-01-01;Prospecting;120;;",
        "no stage;10;2027-01-01;;;;",
        "no date;10;;Prospecting;;;",
        "bad currency;10;2027-01-01;Prospecting;;;XYZ",
        "x" * 256 + ";10;2027-01-01;Prospecting;;;",
    ]

    report = await run(sessions, crm["admin"], "\n".join(rows))

    assert report.created == 1
    assert problems(report) == [
        (2, "Lost Reason"), (4, "Amount"), (5, "Amount"), (6, "Probability"),
        (7, "Sales Stage"), (8, "Expected Close Date"), (9, "Currency"),
        (10, "Opportunity Name"),
    ]
    lost = (await deals(sessions))["lost, with reason"]
    assert (lost.lost_reason, lost.probability, lost.actual_close_date) == (
        "Price", D("0.00"), today())


async def test_mandatory_layout_fields_and_custom_fields_are_enforced_and_read(
    crm, sessions, db
):
    # given: the layout makes Next Step mandatory; custom fields of several types, one required
    admin = crm["admin"]
    for key, kind, required, options in (
        ("cf_region", "PICKLIST", True, ["Nord", "Sud"]), ("cf_margin", "DECIMAL", False, None),
        ("cf_due", "DATE", False, None), ("cf_flag", "BOOLEAN", False, None),
        ("cf_tags", "MULTI_PICKLIST", False, ["Red", "Green", "Blue"]),
        ("cf_score", "INTEGER", False, None),
    ):
        db.add(models.CustomFieldDefinition(
            entity="OPPORTUNITY", key=key, label=key[3:].title(), type=kind, required=required,
            options=options, is_active=True, position=0, maps_to={}, created_by_id=admin.id,
            updated_by_id=admin.id,
        ))
    db.add(models.Layout(entity="OPPORTUNITY", updated_by_id=admin.id, blocks=[
        {"label": "Main", "fields": [{"key": "name"}, {"key": "nextStep", "required": True}]},
    ]))
    await db.commit()
    rows = [
        "Nome Opportunità;Data di chiusura attesa;Stadio di vendita;Prossimo Step;Region;"
        "cf_margin;Due;Flag;Tags;Score",
        "buono;31/12/2027;In Prospettiva;Chiamare;Nord;12,5;31/01/2028;sì;Red; Blue;1.000",
        "senza step;31/12/2027;In Prospettiva;;Nord;;;;;",
        "senza regione;31/12/2027;In Prospettiva;Chiamare;;;;;;",
        "regione sbagliata;31/12/2027;In Prospettiva;Chiamare;Est;;;forse;;1,5",
    ]

    # when
    report = await run(sessions, admin, "\n".join(rows).replace("Red; Blue", '"Red; Blue"'))

    # then
    assert report.created == 1
    assert problems(report) == [  # row 5: all three of its problems at once
        (3, "Prossimo Step"), (4, "Region"), (5, "Region"), (5, "Region"), (5, "Flag"),
        (5, "Score"),
    ]
    assert "Region (cf_region) is required" in report.errors[1].message
    deal = (await deals(sessions))["buono"]
    assert deal.custom_fields == {
        "cf_region": "Nord", "cf_margin": "12.500000", "cf_due": "2028-01-31",
        "cf_flag": True, "cf_tags": ["Red", "Blue"], "cf_score": 1000,
    }
    refused = await run(sessions, admin, "\n".join([rows[0], rows[4].replace("forse", "no")
                                                     .replace("1,5", "2")]))
    assert problems(refused) == [(2, "Region"), (2, "Region")]  # invalid, hence missing
    assert "'Est' is not one of: Nord, Sud" in refused.errors[0].message


async def test_unknown_and_read_only_columns_are_ignored_with_a_warning(crm, sessions):
    data = ("number,name,Colore preferito,createdAt,amountSource,expectedCloseDate,salesStage,"
            "Import error\nPOT999,x,blu,2020-01-01,QUOTE,2027-01-01,PROSPECTING,old error\n")

    report = await run(sessions, crm["admin"], data)

    assert (report.created, report.failed) == (1, 0)
    assert report.warnings == [
        "Column 'number' is read-only (numbers are given on create); ignored.",
        "Column 'Colore preferito' is not a field; ignored.",
        "Column 'createdAt' is read-only; ignored.",
        "Column 'amountSource' is read-only; ignored.",
    ]
    deal = (await deals(sessions))["x"]
    assert (deal.number, deal.amount_source) != ("POT999", "QUOTE")


async def test_a_row_with_more_cells_than_the_header_is_refused(crm, sessions):
    data = ("name;expectedCloseDate;salesStage;description\n"
            "ok;2027-01-01;PROSPECTING;fine;;\n"
            "shifted;2027-01-01;PROSPECTING;Rossi; Bianchi\n")

    report = await run(sessions, crm["admin"], data)

    assert report.created == 1 and problems(report) == [(3, None)]
    assert "quote values that hold the delimiter ';'" in report.errors[0].message


async def test_a_mapping_overrides_the_automatic_one(crm, sessions):
    data = ("Titolo;Valore;Amount;Quando;Fase\n"
            "mapped;1.500,00;999;31/12/2027;Chiuso VINTO\n")

    report = await run(sessions, crm["admin"], data, mapping={
        "Titolo": "name", "valore": "Amount", "Amount": None, "Quando": "expectedCloseDate",
        "Fase": "Sales Stage", "Missing": "description",
    })

    assert (report.created, report.errors) == (1, [])
    assert report.warnings == ["The mapping names column 'Missing', which the file does not have."]
    deal = (await deals(sessions))["mapped"]
    assert (deal.amount, deal.sales_stage) == (D("1500.00"), "CLOSED_WON")
    with pytest.raises(importing.UnusableInput, match="'Titolo' to 'colour'") as caught:
        await run(sessions, crm["admin"], data, mapping={"Titolo": "colour"})
    assert caught.value.field == "mapping"


async def test_a_file_without_a_known_column_or_with_bad_options_is_unusable(crm, sessions):
    with pytest.raises(importing.UnusableInput, match="No column of the file"):
        await run(sessions, crm["admin"], "Colore;Sapore\nblu;dolce\n")
    with pytest.raises(importing.UnusableInput, match="needs the fields to match on"):
        await run(sessions, crm["admin"], fixture("duplicates.csv"), duplicates="merge")
    with pytest.raises(importing.UnusableInput, match="Cannot match on 'colour'"):
        await run(sessions, crm["admin"], fixture("duplicates.csv"), match=("colour",))
    assert await deals(sessions) == {}


# --- accounts --------------------------------------------------------------------------------


async def test_unknown_accounts_fail_unless_creation_is_asked_and_are_created_once(
    crm, sessions, engine
):
    data = ("Opportunity Name,Organization Name,Expected Close Date,Sales Stage\n"
            "one,New Co,2027-01-01,Prospecting\n"
            "two,NEW CO,2027-01-01,Prospecting\n"
            "refused,Other Co,2027-01-01,Nowhere\n"
            "three,Other Co,2027-01-01,Prospecting\n")

    refused = await run(sessions, crm["admin"], data)
    assert (refused.created, refused.failed) == (0, 4)
    # (every problem of a row at once: the unknown account and the unknown stage)
    assert problems(refused) == [(2, "Organization Name"), (3, "Organization Name"),
                                 (4, "Organization Name"), (4, "Sales Stage"),
                                 (5, "Organization Name")]

    created = await run(sessions, crm["admin"], data, create_missing_accounts=True, job=True)
    assert (created.created, created.failed) == (3, 1)
    got = await deals(sessions)
    assert got["one"].account_id == got["two"].account_id != got["three"].account_id
    async with sessions() as session:
        names = (await session.scalars(select(models.Account.name).order_by(
            models.Account.id))).all()
        items = (await session.execute(select(models.ImportItem.kind, models.ImportItem.action)
                                       .order_by(models.ImportItem.id))).all()
    # the refused row's account was taken back; the next row created it for good
    assert names == ["Società Alfa S.p.A.", "Globex, Inc.", "Initech", "New Co", "Other Co"]
    assert sorted(items) == sorted([("ACCOUNT", "CREATED")] * 2
                                   + [("OPPORTUNITY", "CREATED")] * 3)


# --- duplicates ------------------------------------------------------------------------------


@pytest.fixture
async def existing(crm, factory, db) -> models.Opportunity:
    deal = await factory.opportunity(
        crm["jsmith"], "Existing deal", "PROSPECTING", "1000.00", close=dt.date(2027, 8, 31),
        account_id=crm["initech"].id,
    )
    await db.commit()
    return deal


async def test_duplicates_are_skipped(crm, sessions, existing):
    report = await run(sessions, crm["admin"], fixture("duplicates.csv"), match=("name",))

    assert (report.created, report.updated, report.skipped) == (1, 0, 1)
    deal = (await deals(sessions))["Existing deal"]
    assert (deal.amount, deal.sales_stage, deal.next_step, deal.version) == (
        D("1000.00"), "PROSPECTING", None, 1)


async def test_duplicates_are_overwritten_with_the_stage_change_recorded(
    crm, sessions, existing
):
    report = await run(sessions, crm["admin"], fixture("duplicates.csv"),
                       match=("name", "account"), duplicates="overwrite")

    assert (report.created, report.updated, report.skipped, report.failed) == (1, 1, 0, 0)
    deal = (await deals(sessions))["Existing deal"]
    assert (deal.amount, deal.sales_stage, deal.probability, deal.next_step, deal.version) == (
        D("5000.00"), "NEGOTIATION_REVIEW", D("80.00"), "Sign the contract", 2)
    assert await history(sessions, deal.id) == [
        (None, "PROSPECTING"), ("PROSPECTING", "NEGOTIATION_REVIEW"),
    ]


async def test_duplicates_are_merged_filling_only_empty_fields(crm, sessions, existing):
    report = await run(sessions, crm["admin"], fixture("duplicates.csv"),
                       match=("name",), duplicates="merge")

    assert (report.created, report.updated, report.skipped) == (1, 1, 0)
    deal = (await deals(sessions))["Existing deal"]
    assert (deal.amount, deal.sales_stage, deal.next_step) == (
        D("1000.00"), "PROSPECTING", "Sign the contract")
    again = await run(sessions, crm["admin"], fixture("duplicates.csv"),
                      match=("name",), duplicates="merge")
    assert (again.created, again.updated, again.skipped) == (0, 0, 2)  # nothing left to fill


async def test_rows_repeating_in_the_file_are_duplicates_too(crm, sessions):
    data = ("name,amount,expectedCloseDate,salesStage\n"
            "twice,1,2027-01-01,PROSPECTING\nTWICE,2,2027-01-01,QUALIFICATION\n")

    skipped = await run(sessions, crm["admin"], data, match=("name",))
    assert (skipped.created, skipped.skipped) == (1, 0 + 1)
    overwritten = await run(sessions, crm["admin"], data.replace("twice", "thrice", 1)
                            .replace("TWICE", "THRICE"), match=("name",),
                            duplicates="overwrite", batch_size=10)
    assert (overwritten.created, overwritten.updated) == (1, 1)
    deal = (await deals(sessions))["THRICE"]  # the file's name, overwritten too
    assert (deal.amount, deal.sales_stage) == (D("2.00"), "QUALIFICATION")


async def test_an_export_matched_by_number_overwrites_the_same_deals(crm, sessions, existing):
    # given: the export of a deal, edited in a spreadsheet (semicolons, decimal comma)
    viewer = await viewer_of(sessions, crm["admin"])
    async with sessions() as session:
        exported = "".join([c async for c in exporting.export_csv(session, viewer, None)])
    rows = list(csv.DictReader(io.StringIO(exported, newline="")))
    rows[0].update(amount="7.654,32", salesStage="Chiuso VINTO", name="Renamed deal")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=";")
    writer.writeheader()
    writer.writerows(rows)

    # when
    report = await run(sessions, crm["admin"], out.getvalue(), match=("number",),
                       duplicates="overwrite")

    # then
    assert (report.created, report.updated, report.failed) == (0, 1, 0), report.errors
    deal = (await deals(sessions))["Renamed deal"]
    assert (deal.id, deal.amount, deal.sales_stage) == (existing.id, D("7654.32"), "CLOSED_WON")


# --- dry run, all or nothing, undo ------------------------------------------------------------


TABLES = ("opportunities", "stage_changes", "accounts", "opportunity_contacts", "import_jobs",
          "import_items", "number_sequences")


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    state: dict[str, Any] = {t: await count(engine, t) for t in TABLES}
    async with engine.connect() as connection:
        state["numbers"] = (await connection.execute(text(
            "SELECT prefix, next_value FROM number_sequences ORDER BY prefix"))).all()
    return state


async def test_a_dry_run_reports_exactly_what_would_happen_and_writes_nothing(
    crm, sessions, engine, existing
):
    # given
    before = await snapshot(engine)
    data = fixture("bad_rows.csv")
    options = {"create_missing_accounts": True, "match": ("name",), "duplicates": "overwrite"}

    # when
    dry = await run(sessions, crm["admin"], data, dry_run=True, **options)

    # then
    assert await snapshot(engine) == before
    assert dry.written is False
    real = await run(sessions, crm["admin"], data, **options)
    assert (dry.created, dry.updated, dry.skipped, dry.failed, dry.errors, dry.warnings,
            dry.failed_rows_csv) == (real.created, real.updated, real.skipped, real.failed,
                                     real.errors, real.warnings, real.failed_rows_csv)
    assert real.written and real.created == 3


async def test_all_or_nothing_writes_nothing_unless_every_row_passes(crm, sessions, engine):
    before = await snapshot(engine)

    refused = await run(sessions, crm["admin"], fixture("bad_rows.csv"), all_or_nothing=True,
                        job=True, create_missing_accounts=True)

    assert (refused.written, refused.created, refused.failed) == (False, 3, 5)
    after = await snapshot(engine)
    assert {k: after[k] for k in after if k != "import_jobs"} == {
        k: before[k] for k in before if k != "import_jobs"}
    async with sessions() as session:
        job = (await session.scalars(select(models.ImportJob))).one()
    assert (job.status, job.failed, job.created) == ("FAILED", 5, 3)  # the job is kept
    assert job.failed_rows_csv is not None

    passed = await run(sessions, crm["admin"], fixture("vtiger_potentials.csv"),
                       all_or_nothing=True, batch_size=1)
    assert (passed.written, passed.created) == (True, 3)
    assert len(await deals(sessions)) == 3


async def test_undo_removes_what_the_import_created_and_restores_what_it_overwrote(
    crm, sessions, engine, existing, factory, db
):
    # given: an import that overwrote a deal, created another and an account
    before = await snapshot(engine)
    data = fixture("duplicates.csv").replace(b"Initech", b"Brand New Co", 2)
    report = await run(sessions, crm["admin"], data, job=True, match=("name",),
                       duplicates="overwrite", create_missing_accounts=True)
    assert (report.created, report.updated) == (1, 1)
    overwritten = (await deals(sessions))["Existing deal"]
    assert (overwritten.amount, overwritten.account_id) != (D("1000.00"), crm["initech"].id)

    # when
    async with sessions() as session:
        viewer = await load_viewer(session, crm["admin"], "PRIVATE")
        await importing.undo_import(session, viewer, report.job_id or 0)
        await session.commit()

    # then
    got = await deals(sessions)
    assert set(got) == {"Existing deal"}
    deal = got["Existing deal"]
    assert (deal.amount, deal.sales_stage, deal.probability, deal.next_step, deal.account_id,
            deal.actual_close_date) == (D("1000.00"), "PROSPECTING", D("10.00"), None,
                                        crm["initech"].id, None)
    assert await history(sessions, deal.id) == [
        (None, "PROSPECTING"), ("PROSPECTING", "NEGOTIATION_REVIEW"),
        ("NEGOTIATION_REVIEW", "PROSPECTING"),
    ]
    after = await snapshot(engine)
    assert (after["accounts"], after["opportunities"]) == (before["accounts"],
                                                          before["opportunities"])
    async with sessions() as session:
        job = await session.get(models.ImportJob, report.job_id)
        assert job is not None and job.status == "UNDONE" and job.undone_at is not None
        viewer = await load_viewer(session, crm["admin"], "PRIVATE")
        with pytest.raises(importing.ValidationFailed, match="already undone"):
            await importing.undo_import(session, viewer, job.id)


async def test_undo_keeps_later_work_deals_changed_since_go_to_the_recycle_bin(
    crm, sessions, factory, db
):
    # given: an import, then one of its deals quoted and its account given a contact
    report = await run(sessions, crm["admin"], fixture("bad_rows.csv"), job=True,
                       create_missing_accounts=True)
    got = await deals(sessions)
    quoted = got["Ultimo buono"]
    product = await factory.product()
    await factory.quote(quoted, [(product, "1", "10", "0", "0")])
    await factory.contact(crm["admin"], "Verdi", account_id=quoted.account_id)
    await db.commit()

    # when
    async with sessions() as session:
        viewer = await load_viewer(session, crm["admin"], "PRIVATE")
        job = await importing.undo_import(session, viewer, report.job_id or 0)
        await session.commit()

    # then
    assert set(await deals(sessions)) == set()
    async with sessions() as session:
        binned = await session.get(models.Opportunity, quoted.id)
        assert binned is not None and binned.deleted_at is not None
        assert await session.get(models.Opportunity, got["Buono"].id) is None
        assert (await session.get(models.Account, quoted.account_id)) is not None
    assert any("recycle bin" in w for w in job.warnings)
    assert any("account(s) are in use" in w for w in job.warnings)


# --- visibility --------------------------------------------------------------------------------


async def test_a_rep_imports_only_as_themselves_within_their_visibility(crm, sessions):
    # given: a rep, and rows for them, for a colleague, and with an account they cannot see
    data = ("Opportunity Name,Assigned To,Organization Name,Expected Close Date,Sales Stage\n"
            "mine,,,2027-01-01,Prospecting\n"
            "mine too,mrossi,,2027-01-01,Prospecting\n"
            "colleague's,lbianchi,,2027-01-01,Prospecting\n"
            "outsider's,outsider,,2027-01-01,Prospecting\n"
            "hidden account,,Globex Inc.,2027-01-01,Prospecting\n"
            "hidden account,,\"Globex, Inc.\",2027-01-01,Prospecting\n")

    rep = await run(sessions, crm["mrossi"], data)
    manager = await run(sessions, crm["boss"], data.replace("mine", "boss's"))

    assert rep.created == 2
    assert problems(rep) == [(4, "Assigned To"), (5, "Assigned To"), (6, "Organization Name"),
                             (7, "Organization Name")]
    assert rep.errors[0].message == "You may not assign records to 'lbianchi'."
    assert manager.created == 4  # the team's, not the outsider's; Globex is jsmith's, in team
    assert problems(manager) == [(5, "Assigned To"), (6, "Organization Name")]
    got = await deals(sessions)
    assert got["mine"].assigned_to_id == got["mine too"].assigned_to_id == crm["mrossi"].id
    assert got["colleague's"].assigned_to_id == crm["lbianchi"].id


async def test_a_rep_cannot_overwrite_deals_they_cannot_see(crm, sessions, existing):
    # the existing deal is jsmith's: mrossi's "match" does not see it and creates their own
    report = await run(sessions, crm["mrossi"], fixture("duplicates.csv").replace(
        b"jsmith", b"mrossi").replace(b"Initech", b""), match=("name",), duplicates="overwrite")

    assert (report.created, report.updated) == (2, 0)
    async with sessions() as session:
        theirs = await session.get(models.Opportunity, existing.id)
        assert theirs is not None and theirs.amount == D("1000.00")


async def test_a_reps_export_re_imports_as_the_rep_leaving_the_deals_of_others_alone(
    crm, sessions, factory, db, existing
):
    # given: a rep's export holds only what the rep sees
    await factory.opportunity(crm["mrossi"], "Rossi's deal", "QUALIFICATION", "500.00",
                              account_id=crm["alfa"].id)
    await db.commit()
    viewer = await viewer_of(sessions, crm["mrossi"])
    async with sessions() as session:
        exported = "".join([c async for c in exporting.export_csv(session, viewer, None)])
    assert "Rossi's deal" in exported and "Existing deal" not in exported

    # when: edited and imported back by the rep, matched by number
    report = await run(sessions, crm["mrossi"], exported.replace("500.00", "750.00"),
                       match=("number",), duplicates="overwrite")

    # then
    assert (report.created, report.updated, report.failed) == (0, 1, 0), report.errors
    got = await deals(sessions)
    assert got["Rossi's deal"].amount == D("750.00")
    assert (got["Existing deal"].amount, got["Existing deal"].version) == (D("1000.00"), 1)


# --- speed: references in bulk, batches written whole -------------------------------------------


async def test_a_batch_costs_the_same_queries_whatever_its_size(
    crm, sessions, engine, statements
):
    def rows(n: int) -> str:
        return "\n".join(
            ["Nome Opportunità;Ammontare;Nome Azienda;Data di chiusura attesa;"
             "Stadio di vendita;Assegnato a;Fonte Campagna"]
            + [f"d{i};{i},50;Initech;31/12/2027;In Prospettiva;jsmith;Spring Expo"
               for i in range(n)]
        )

    await run(sessions, crm["admin"], rows(5))
    small = statements.count
    statements.count = 0
    await run(sessions, crm["admin"], rows(400), batch_size=1000)
    large = statements.count

    assert large <= small + 2, statements.sql[-40:]
    assert await count(engine, "opportunities") == 405


# --- command line ------------------------------------------------------------------------------


@pytest.fixture
def cli(migrated_url: str, tmp_path: Path) -> Any:
    """Runs the installed `dealgraph import ...` against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALGRAPH_")}
    env.update(COLUMNS="200", NO_COLOR="1", DEALGRAPH_DATA_DIR=str(tmp_path / "data"))

    def run_cli(*args: str, extra_env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DEALGRAPH, "import", *args, "--database-url", migrated_url],
            env={**env, **(extra_env or {})}, cwd=tmp_path, capture_output=True, text=True,
            timeout=300, check=False,
        )

    run_cli.env = env  # type: ignore[attr-defined]
    return run_cli


async def test_the_command_imports_reports_failures_and_takes_the_fixed_file_back(
    crm, sessions, engine, cli, tmp_path
):
    # when: the Italian export, as the default admin
    ok = cli("opportunities", str(FIXTURES / "vtenext_opportunita.csv"),
             "--create-missing-accounts")

    # then
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[:2] == [
        "vtenext_opportunita.csv: 9 rows (utf-8, delimiter ';')",
        "created 9, updated 0, skipped 0, failed 0",
    ]
    assert "warning: Column 'Creatore' is read-only; ignored." in ok.stdout
    assert "Traceback" not in ok.stderr

    # when: a file with bad rows, as a rep
    failed_rows = tmp_path / "da correggere.csv"
    bad = cli("opportunities", str(FIXTURES / "bad_rows.csv"), "--as", "jsmith",
              "--failed-rows", str(failed_rows))

    # then
    assert bad.returncode == 1, bad.stderr
    out = bad.stdout.splitlines()
    assert "created 1, updated 0, skipped 0, failed 7" in out
    assert "line 3, column Data di chiusura attesa: '31/02/2027' is not a date (use 2027-03-31 "\
        "or 31/03/2027)" in out
    assert "line 8, column Nome Opportunità: Name is required." in out
    assert f"failed rows written to {failed_rows}" in out
    content = failed_rows.read_bytes()
    assert content.startswith(codecs.BOM_UTF8)

    # when: the failed rows, fixed, imported again
    fixed = (content.decode("utf-8-sig").replace("31/02/2027", "28/02/2027")
             .replace("Quasi chiusa", "In Prospettiva").replace("molto", "1")
             .replace("nessuno", "jsmith").replace("\r\n;", "\r\nSenza nome;"))
    failed_rows.write_text(fixed, encoding="utf-8-sig", newline="")
    again = cli("opportunities", str(failed_rows), "--as", "jsmith",
                "--create-missing-accounts")

    # then
    assert again.returncode == 0, again.stdout + again.stderr
    assert "created 7, updated 0, skipped 0, failed 0" in again.stdout
    assert await count(engine, "opportunities") == 17
    async with sessions() as session:
        jobs = (await session.scalars(select(models.ImportJob).order_by(
            models.ImportJob.id))).all()
    assert [(j.status, j.created, j.failed, j.created_by_id) for j in jobs] == [
        ("DONE", 9, 0, crm["admin"].id), ("DONE", 1, 7, crm["jsmith"].id),
        ("DONE", 7, 0, crm["jsmith"].id),
    ]

    # when: undone
    undo = cli("undo", str(jobs[2].id), "--as", "jsmith")

    # then
    assert undo.returncode == 0, undo.stderr
    assert f"import {jobs[2].id} (da correggere.csv) undone: 7 created deals removed" \
        in undo.stdout
    assert await count(engine, "opportunities") == 10
    refused = cli("undo", str(jobs[0].id), "--as", "jsmith")  # the admin's: not visible
    assert refused.returncode == 1 and "No import with id" in refused.stderr


async def test_the_command_dry_run_all_or_nothing_and_unusable_input(
    crm, sessions, engine, cli, tmp_path
):
    before = await snapshot(engine)

    dry = cli("opportunities", str(FIXTURES / "bad_rows.csv"), "--dry-run")
    assert dry.returncode == 1, dry.stderr
    assert "dry run: nothing was written" in dry.stdout
    assert "created 1, updated 0, skipped 0, failed 7" in dry.stdout
    clean_dry = cli("opportunities", str(FIXTURES / "vtiger_potentials.csv"), "--dry-run")
    assert clean_dry.returncode == 0, clean_dry.stderr
    assert await snapshot(engine) == before  # not even a job

    all_or_nothing = cli("opportunities", str(FIXTURES / "bad_rows.csv"), "--all-or-nothing")
    assert all_or_nothing.returncode == 1
    assert "all or nothing: 7 rows failed, so nothing was written" in all_or_nothing.stdout
    assert await count(engine, "opportunities") == before["opportunities"]
    assert await count(engine, "import_jobs") == 1

    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"Colore": "name", "Data": "expectedCloseDate",
                                   "Fase": "salesStage"}))
    colours = tmp_path / "colours.csv"
    colours.write_text("Colore;Data;Fase\nblu;31/12/2027;Chiuso VINTO\n")
    mapped = cli("opportunities", str(colours), "--mapping", str(mapping))
    assert mapped.returncode == 0, mapped.stdout + mapped.stderr

    bad_mapping = tmp_path / "bad.json"
    bad_mapping.write_text("[1, 2]")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    for args, says in (
        ((str(empty),), "The file is empty."),
        ((str(tmp_path / "missing.csv"),), "cannot read"),
        ((str(colours),), "No column of the file is an opportunity field"),
        ((str(colours), "--mapping", str(bad_mapping)), "must be a JSON object"),
        ((str(colours), "--duplicates", "merge"), "needs the fields to match on"),
        ((str(colours), "--match", "colour"), "cannot match on 'colour'"),
        ((str(colours), "--as", "nobody"), "no user named 'nobody'"),
    ):
        result = cli("opportunities", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert says in " ".join(result.stderr.split()), (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert await count(engine, "import_jobs") == 2


def large_file(path: Path, rows: int) -> None:
    lines = ["Nome Opportunità;Ammontare;Nome Azienda;Data di chiusura attesa;"
             "Stadio di vendita;Assegnato a"]
    lines += [f"Affare {i};{i % 1000}.{i % 997:03d},{i % 100:02d};Initech;"
              f"{1 + i % 28:02d}/{1 + i % 12:02d}/2027;In Prospettiva;jsmith" for i in range(rows)]
    path.write_bytes("\r\n".join(lines).encode("cp1252"))


async def test_a_killed_import_leaves_whole_batches_and_is_resumed_then_undone(
    crm, sessions, engine, cli, tmp_path, migrated_url
):
    # given: a large file, imported in batches of 50
    big = tmp_path / "big.csv"
    large_file(big, 30_000)
    env = {**cli.env, "DEALGRAPH_IMPORT_BATCH_SIZE": "50"}

    # when: the import is killed once some batches are in
    process = await asyncio.create_subprocess_exec(
        DEALGRAPH, "import", "opportunities", str(big), "--database-url", migrated_url,
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while await count(engine, "opportunities") < 120:
            assert process.returncode is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == -signal.SIGKILL

    # then: whole batches, each deal with exactly its first stage change, nothing half-written
    imported = await count(engine, "opportunities")
    assert 0 < imported < 30_000 and imported % 50 == 0
    async with engine.connect() as connection:
        per_deal = (await connection.execute(text(
            "SELECT o.id, count(s.id), min(s.from_stage) FROM opportunities o "
            "LEFT JOIN stage_changes s ON s.opportunity_id = o.id GROUP BY o.id"
        ))).all()
    assert {(n, first) for _, n, first in per_deal} == {(1, None)}
    async with sessions() as session:
        job = (await session.scalars(select(models.ImportJob))).one()
        items = await session.scalar(select(func.count()).select_from(models.ImportItem))
    assert (job.status, job.processed, job.created, items) == (
        "RUNNING", imported, imported, imported)

    # when: resumed (the command first finds the job's process gone)
    resumed = cli("resume", str(job.id), extra_env={"DEALGRAPH_IMPORT_BATCH_SIZE": "1000"})

    # then: from the first row not committed, every row once
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"import job {job.id} was interrupted" in resumed.stderr
    assert "big.csv: 30,000 rows (windows-1252, delimiter ';')" in resumed.stdout
    assert "created 30,000, updated 0, skipped 0, failed 0" in resumed.stdout
    async with engine.connect() as connection:
        names, deals_count = (await connection.execute(text(
            "SELECT count(DISTINCT name), count(*) FROM opportunities"))).one()
    assert (names, deals_count) == (30_000, 30_000)
    assert await count(engine, "stage_changes") == 30_000
    job = await job_row(sessions, job.id)
    assert (job.status, job.processed, job.created) == ("DONE", 30_000, 30_000)
    assert f"Resumed at line {imported + 2} (row {imported + 1:,}) by admin." in job.warnings
    assert job.source_path == str(big) and not job.source_kept and big.exists()

    # and the whole job is undone, without forcing
    undone = cli("undo", str(job.id))
    assert undone.returncode == 0, undone.stderr
    assert await count(engine, "opportunities") == 0
    assert await count(engine, "stage_changes") == 0


# --- GraphQL -----------------------------------------------------------------------------------

IMPORT = """
mutation ($input: ImportOpportunitiesInput!) {
  importOpportunities(input: $input) {
    job { id status filename total }
    userErrors { field message code }
  }
}"""
JOB = """
query ($id: ID!) {
  importJob(id: $id) {
    id status filename total processed created updated skipped failed warnings
    errors { line column message } failedRowsCsv createdAt finishedAt undoneAt options
    createdBy { username }
  }
}"""
UNDO = """
mutation ($id: ID!) {
  undoImport(input: {id: $id}) { job { id status undoneAt } userErrors { field message code } }
}"""


async def upload(client: GraphQLClient, content: bytes, filename: str = "deals.csv",
                 **options: Any) -> dict[str, Any]:
    """A GraphQL multipart request: operations, map, then the file."""
    operations = {"query": IMPORT, "variables": {"input": {"file": None, **options}}}
    response = await client.http.post("/graphql", data={
        "operations": json.dumps(operations), "map": json.dumps({"0": ["variables.input.file"]}),
    }, files={"0": (filename, content, "text/csv")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["importOpportunities"]  # type: ignore[no-any-return]


async def finished(client: GraphQLClient, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job = (await client.data(JOB, {"id": job_id}))["importJob"]
        if job["status"] != "RUNNING":
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("the import did not finish")


async def test_a_graphql_upload_runs_in_the_background_and_is_polled_then_undone(
    crm, sessions, client_for
):
    # given
    client = await client_for(crm["jsmith"])

    # when
    payload = await upload(client, fixture("bad_rows.csv"), "righe.csv",
                           createMissingAccounts=True)

    # then: a job at once, polled until it ends
    assert payload["userErrors"] == []
    job_id = payload["job"]["id"]
    assert payload["job"]["filename"] == "righe.csv"
    assert payload["job"]["total"] == 8
    job = await finished(client, job_id)
    assert {k: job[k] for k in ("status", "total", "processed", "created", "updated",
                                "skipped", "failed")} == {
        "status": "DONE", "total": 8, "processed": 8, "created": 3, "updated": 0,
        "skipped": 0, "failed": 5}
    assert [(e["line"], e["column"]) for e in job["errors"]] == [
        (3, "Data di chiusura attesa"), (4, "Stadio di vendita"), (6, "Ammontare"),
        (7, "Assegnato a"), (8, "Nome Opportunità")]
    assert job["failedRowsCsv"].startswith("Nome Opportunità;Ammontare;")
    assert job["options"]["createMissingAccounts"] is True
    assert job["createdBy"] == {"username": "jsmith"} and job["finishedAt"]
    assert len(await deals(sessions)) == 3
    node = await client.data(
        "query ($id: ID!) { node(id: $id) { id ... on ImportJob { status } } }", {"id": job_id}
    )
    assert node["node"] == {"id": job_id, "status": "DONE"}

    # when: undone
    undone = (await client.data(UNDO, {"id": job_id}))["undoImport"]

    # then
    assert undone["userErrors"] == [] and undone["job"]["status"] == "UNDONE"
    assert await deals(sessions) == {}
    again = (await client.data(UNDO, {"id": job_id}))["undoImport"]
    assert again["job"] is None
    assert [(e["field"], e["code"]) for e in again["userErrors"]] == [(["input", "id"],
                                                                       "INVALID")]


async def test_a_graphql_job_is_visible_to_its_creator_and_admins_only(crm, client_for):
    rep = await client_for(crm["jsmith"])
    payload = await upload(rep, fixture("vtiger_potentials.csv"), dryRun=True)
    job = await finished(rep, payload["job"]["id"])
    assert (job["status"], job["created"], job["options"]["dryRun"]) == ("DONE", 2, True)
    assert job["errors"] == [{"line": 4, "column": "Assigned To",
                              "message": "You may not assign records to 'admin'."}]

    admin, colleague = await client_for(crm["admin"]), await client_for(crm["mrossi"])
    assert (await admin.data(JOB, {"id": job["id"]}))["importJob"]["id"] == job["id"]
    assert (await colleague.data(JOB, {"id": job["id"]}))["importJob"] is None
    undo = (await colleague.data(UNDO, {"id": job["id"]}))["undoImport"]
    assert [e["code"] for e in undo["userErrors"]] == ["NOT_FOUND"]
    dry_undo = (await rep.data(UNDO, {"id": job["id"]}))["undoImport"]
    assert dry_undo["userErrors"][0]["message"] == "A dry run wrote nothing to undo."


async def test_graphql_options_and_refusals(crm, sessions, client_for, existing):
    client = await client_for(crm["admin"])

    merged = await upload(client, fixture("duplicates.csv"), duplicates="MERGE",
                          match=["NAME", "ACCOUNT"], allOrNothing=True,
                          mapping=[{"column": "Next Step", "field": None}])
    job = await finished(client, merged["job"]["id"])
    assert (job["status"], job["created"], job["updated"]) == ("DONE", 1, 0)
    assert job["skipped"] == 1  # the only empty field to fill was in an ignored column

    for content, options, field, code in (
        (b"", {}, "file", "INVALID"),
        (b"Colore\nblu\n", {}, "file", "INVALID"),
        (fixture("duplicates.csv"), {"duplicates": "OVERWRITE"}, "match", "INVALID"),
        (fixture("duplicates.csv"), {"mapping": [{"column": "Amount", "field": "colour"}]},
         "mapping", "INVALID"),
    ):
        refused = await upload(client, content, **options)
        assert refused["job"] is None
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
            (["input", field], code)], refused


async def test_an_upload_past_the_size_limit_is_refused(crm, settings, factory, db):
    token = await factory.token(crm["admin"])
    await db.commit()
    small = create_app(Settings(database_url=settings.database_url, max_import_bytes=100))
    try:
        payload = await upload(GraphQLClient(small, token), fixture("vtiger_potentials.csv"))
    finally:
        await small.state.engine.dispose()
    assert payload["job"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "file"], "TOO_LONG")]
    assert "larger than" in payload["userErrors"][0]["message"]


# --- the round trip ------------------------------------------------------------------------------


def comparable(opp: models.Opportunity, contacts: dict[int, int], accounts: dict[int, str]
               ) -> dict[str, Any]:
    """Every field of a deal but number, createdAt, updatedAt and createdBy (and the
    bookkeeping that follows them: id, version, stage timestamps)."""
    skip = {"id", "number", "created_at", "updated_at", "created_by_id", "stage_changed_at",
            "version", "account_id"}
    fields = {c.key: getattr(opp, c.key) for c in models.Opportunity.__table__.columns
              if c.key not in skip}
    fields["account"] = accounts.get(opp.account_id) if opp.account_id else None
    fields["contact"] = contacts.get(opp.id)
    return fields


async def every_deal(sessions: async_sessionmaker[AsyncSession]) -> dict[str, dict[str, Any]]:
    async with sessions() as session:
        opps = (await session.scalars(select(models.Opportunity))).all()
        contacts = dict((await session.execute(select(
            models.OpportunityContact.opportunity_id, models.OpportunityContact.contact_id
        ).where(models.OpportunityContact.is_primary.is_(True)))).all())
        accounts = dict((await session.execute(select(models.Account.id,
                                                       models.Account.name))).all())
    return {o.name: comparable(o, contacts, accounts) for o in opps}


@pytest.mark.parametrize("labels", [False, True])
async def test_export_then_import_through_the_command_gives_back_every_field(
    crm, sessions, engine, factory, db, cli, tmp_path, labels
):
    # given: deals using every field, custom fields of every type, in another currency
    admin, jsmith, lbianchi = crm["admin"], crm["jsmith"], crm["lbianchi"]
    db.add(models.Currency(code="USD", rate=Decimal("1.10"), is_base=False))
    for key, kind, options in (
        ("cf_region", "TEXT", None), ("cf_score", "INTEGER", None),
        ("cf_margin", "DECIMAL", None), ("cf_fee", "CURRENCY", None),
        ("cf_share", "PERCENT", None), ("cf_flag", "BOOLEAN", None),
        ("cf_tags", "MULTI_PICKLIST", ["Red", "Green", "Blue"]),
        ("cf_size", "PICKLIST", ["S", "M", "L"]), ("cf_due", "DATE", None),
        ("cf_seen", "DATETIME", None), ("cf_mail", "EMAIL", None), ("cf_site", "URL", None),
        ("cf_notes", "TEXTAREA", None), ("cf_phone", "PHONE", None),
    ):
        db.add(models.CustomFieldDefinition(
            entity="OPPORTUNITY", key=key, label=key[3:].title(), type=kind, required=False,
            options=options, is_active=True, position=0, maps_to={}, created_by_id=admin.id,
            updated_by_id=admin.id,
        ))
    anna = await factory.contact(lbianchi, "Bianchi", first_name="Anna")
    custom = {
        "cf_region": "Nord; Est", "cf_score": 7, "cf_margin": "12.500000", "cf_fee": "99.90",
        "cf_share": "12.50", "cf_flag": True, "cf_tags": ["Red", "Blue"], "cf_size": "M",
        "cf_due": "2027-01-31", "cf_seen": "2026-05-06T07:08:09+00:00",
        "cf_mail": "a@b.it", "cf_site": "www.example.com", "cf_notes": "uno\ndue, tre",
        "cf_phone": "+39 02 1234",
    }
    await factory.opportunity(
        jsmith, 'Caffè "grande", subito', "NEEDS_ANALYSIS", "1234.50", probability="33.00",
        probability_is_manual=True, close=dt.date(2027, 3, 31), account_id=crm["globex"].id,
        campaign_id=crm["expo"].id, currency="USD", type="NEW_BUSINESS",
        next_step="Call; then mail", lead_source="WEB_SITE",
        description='Line one, "quoted";\nline two', custom_fields=custom,
    )
    won = await factory.opportunity(
        lbianchi, "Won deal", "CLOSED_WON", "99.99", probability="100.00",
        close=dt.date(2026, 6, 30), actual_close_date=dt.date(2026, 7, 2),
        type="EXISTING_BUSINESS", account_id=crm["alfa"].id,
        custom_fields={"cf_tags": ["Green"], "cf_flag": False},
    )
    await factory.opportunity(
        admin, "Lost deal", "CLOSED_LOST", "0.00", probability="0.00",
        close=dt.date(2026, 5, 1), actual_close_date=dt.date(2026, 5, 3),
        lost_reason="Too expensive; chose a competitor", account_id=crm["alfa"].id,
    )
    await factory.opportunity(crm["mrossi"], "Plain deal", "PROSPECTING",
                              close=dt.date(2027, 1, 1))
    await factory.opportunity(jsmith, "Homer's", "QUALIFICATION", "1000000.00",
                              close=dt.date(2028, 2, 29), account_id=crm["initech"].id)
    db.add(models.OpportunityContact(opportunity_id=won.id, contact_id=anna.id, is_primary=True))
    await db.commit()
    homers = (await deals(sessions))["Homer's"]
    db.add(models.OpportunityContact(opportunity_id=homers.id, contact_id=crm["homer"].id,
                                     is_primary=True))
    await db.commit()
    before = await every_deal(sessions)
    exported = tmp_path / "export.csv"
    async with sessions() as session:
        viewer = await load_viewer(session, admin, "PRIVATE")
        exported.write_text("".join(
            [c async for c in exporting.export_csv(session, viewer, None, labels)]
        ), encoding="utf-8", newline="")

    # when: imported through the command into a database without deals or accounts
    await remove_deals_and_accounts(engine)
    assert await count(engine, "accounts") == 0
    result = cli("opportunities", str(exported), "--create-missing-accounts")

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created 5, updated 0, skipped 0, failed 0" in result.stdout
    after = await every_deal(sessions)
    assert after == before
    assert await count(engine, "accounts") == 3


async def remove_deals_and_accounts(engine: AsyncEngine) -> None:
    """Delete deals, accounts and every row that depends on them; contacts lose their
    account."""
    doomed = {"opportunities", "accounts"}
    tables = list(reversed(Base.metadata.sorted_tables))
    for _ in tables:
        doomed |= {t.name for t in tables if t.name != "contacts"
                   and any(fk.column.table.name in doomed for fk in t.foreign_keys)}
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE contacts SET account_id = NULL"))
        for table in tables:
            if table.name in doomed:
                await connection.execute(table.delete())



# --- interrupted jobs: recovered on start-up, resumed, undone ------------------------------------

RESUME = """
mutation ($id: ID!) {
  resumeImport(input: {id: $id}) { job { id status } userErrors { field message code } }
}"""
SIX_ROWS = "\n".join([
    "Nome Opportunita`;Data di chiusura attesa;Stadio di vendita;Assegnato a",
    "uno;31/12/2027;In Prospettiva;jsmith",
    "due;31/12/2027;In Prospettiva;nessuno",
    "tre;31/12/2027;In Prospettiva;jsmith",
    "quattro;31/12/2027;Qualificazione;jsmith",
    "cinque;31/12/2027;Qualificazione;jsmith",
    "sei;31/12/2027;Stadio sconosciuto;jsmith",
]) + "\n"


def dead_pid() -> int:
    """The id of a process of this host that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def interrupted_job(
    sessions: async_sessionmaker[AsyncSession], user: models.User, data: bytes,
    keep_dir: Path, after: int = 4,
) -> int:
    """A job of `user` over `data` (its upload kept in `keep_dir`), in batches of two rows,
    cancelled once `after` rows are committed; its id."""
    viewer = await viewer_of(sessions, user)
    options = importing.Options(batch_size=2)
    table = importing.read_table(data)
    job = await importing.create_job(sessions, viewer, "deals.csv", options, len(table.rows),
                                     upload=data, keep_dir=keep_dir)

    def stop(report: importing.Report) -> None:
        if report.processed >= after:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await importing.run_job(sessions, viewer, table, options, "deals.csv", job.id, stop)
    return job.id


def kept(job: models.ImportJob) -> bytes | None:
    """The job's kept file, if it is still there."""
    path = Path(job.source_path or "")
    return path.read_bytes() if job.source_path and path.exists() else None


async def set_runner(engine: AsyncEngine, job_id: int, pid: int, host: str, started: str,
                     status: str = "RUNNING") -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE import_jobs SET status = :status, runner_pid = :pid, "
                 "runner_host = :host, runner_started = :started WHERE id = :id"),
            {"status": status, "pid": pid, "host": host, "started": started, "id": job_id},
        )


async def job_row(sessions: async_sessionmaker[AsyncSession], job_id: int) -> models.ImportJob:
    async with sessions() as session:
        job = await session.get(models.ImportJob, job_id)
        assert job is not None
        return job


async def test_a_cancelled_import_is_interrupted_with_what_it_committed(crm, sessions, tmp_path):
    # when: cancelled after two batches of two rows (a shutdown, Ctrl-C)
    job_id = await interrupted_job(sessions, crm["jsmith"], SIX_ROWS.encode(), tmp_path)

    # then: INTERRUPTED, with the counts of the committed batches, and its upload kept
    job = await job_row(sessions, job_id)
    assert (job.status, job.processed, job.created, job.failed) == ("INTERRUPTED", 4, 3, 1)
    assert [(e["line"], e["column"]) for e in job.errors] == [(3, "Assegnato a")]
    assert job.warnings[-1].startswith("Interrupted (it was cancelled) after 4 of 6 rows")
    assert set(await deals(sessions)) == {"uno", "tre", "quattro"}
    assert job.source_kept and kept(job) == SIX_ROWS.encode()


async def test_on_start_up_jobs_whose_process_is_gone_become_interrupted_and_resume(
    crm, sessions, engine, settings, client_for, tmp_path
):
    # given: a job left RUNNING by a process that no longer exists, after 4 of its 6 rows;
    # a job of a process that lives (this one), and one run from another host
    job_id = await interrupted_job(sessions, crm["jsmith"], SIX_ROWS.encode(), tmp_path)
    here = processes.current()
    await set_runner(engine, job_id, dead_pid(), here.host, "")
    alive = await interrupted_job(sessions, crm["jsmith"], b"name\nx\n", tmp_path, after=0)
    await set_runner(engine, alive, here.pid, here.host, here.started)
    elsewhere = await interrupted_job(sessions, crm["jsmith"], b"name\ny\n", tmp_path, after=0)
    await set_runner(engine, elsewhere, 1, "another-host", "")
    reused = await interrupted_job(sessions, crm["jsmith"], b"name\nz\n", tmp_path, after=0)
    await set_runner(engine, reused, here.pid, here.host, "another-boot/1")  # pid reused

    # when: a server starts
    starting = create_app(settings)
    try:
        async with starting.router.lifespan_context(starting):
            pass
    finally:
        await starting.state.engine.dispose()

    # then: the dead process's job is INTERRUPTED with what it committed; the live one and
    # the other host's are left alone
    job = await job_row(sessions, job_id)
    assert (job.status, job.processed, job.created, job.failed) == ("INTERRUPTED", 4, 3, 1)
    assert "is gone) after 4 of 6 rows: what was committed stays (3 created" in job.warnings[-1]
    assert job.finished_at is not None
    assert [(await job_row(sessions, pk)).status for pk in (alive, elsewhere, reused)] == [
        "RUNNING", "RUNNING", "INTERRUPTED"]

    # when: someone else tries to resume it
    gid = to_global_id("ImportJob", job_id)
    colleague = await client_for(crm["mrossi"])
    denied = (await colleague.data(RESUME, {"id": gid}))["resumeImport"]

    # then
    assert denied["job"] is None
    assert [(e["field"], e["code"]) for e in denied["userErrors"]] == [(["input", "id"],
                                                                       "NOT_FOUND")]
    assert (await job_row(sessions, job_id)).status == "INTERRUPTED"

    # when: its creator resumes it
    client = await client_for(crm["jsmith"])
    assert (await client.data(JOB, {"id": gid}))["importJob"]["status"] == "INTERRUPTED"
    resumed = (await client.data(RESUME, {"id": gid}))["resumeImport"]

    # then: it goes on from row 5, and its report covers the whole file
    assert resumed["userErrors"] == [] and resumed["job"]["status"] == "RUNNING"
    done = await finished(client, gid)
    assert {k: done[k] for k in ("status", "total", "processed", "created", "failed")} == {
        "status": "DONE", "total": 6, "processed": 6, "created": 4, "failed": 2}
    assert [(e["line"], e["column"]) for e in done["errors"]] == [
        (3, "Assegnato a"), (7, "Stadio di vendita")]
    assert "Resumed at line 6 (row 5) by jsmith." in done["warnings"]
    failed = list(csv.reader(io.StringIO(done["failedRowsCsv"]), delimiter=";"))
    assert [r[0] for r in failed[1:]] == ["due", "sei"]
    assert sorted(await deals(sessions)) == sorted(["uno", "tre", "quattro", "cinque"])
    async with sessions() as session:
        created = await session.scalar(select(func.count()).select_from(models.ImportItem)
                                       .where(models.ImportItem.job_id == job_id))
    assert created == 4
    assert kept(job) is None  # the kept upload goes with the job's end

    # and: a finished job is not resumed again
    again = (await client.data(RESUME, {"id": gid}))["resumeImport"]
    assert [(e["code"], e["message"]) for e in again["userErrors"]] == [
        ("INVALID", "The import cannot be resumed: it is done, not interrupted.")]


async def test_an_interrupted_job_whose_file_is_gone_is_refused_and_can_be_undone(
    crm, sessions, client_for, tmp_path
):
    # given
    job_id = await interrupted_job(sessions, crm["jsmith"], SIX_ROWS.encode(), tmp_path)
    job = await job_row(sessions, job_id)
    Path(job.source_path or "").unlink()  # noqa: ASYNC240 - a test's arrangement
    gid = to_global_id("ImportJob", job_id)
    client = await client_for(crm["jsmith"])

    # when
    refused = (await client.data(RESUME, {"id": gid}))["resumeImport"]

    # then
    assert refused["job"] is None
    [error] = refused["userErrors"]
    assert (error["field"], error["code"]) == (["input", "id"], "NOT_FOUND")
    assert error["message"].startswith(f"The import cannot be resumed: its file "
                                       f"{job.source_path} is gone")
    assert (await job_row(sessions, job_id)).status == "INTERRUPTED"

    # when: undone instead, without forcing
    undone = (await client.data(UNDO, {"id": gid}))["undoImport"]

    # then
    assert undone["userErrors"] == [] and undone["job"]["status"] == "UNDONE"
    assert await deals(sessions) == {}


async def test_the_command_undoes_an_interrupted_job_without_forcing(crm, sessions, cli, tmp_path):
    # given: a job cancelled after 4 rows (3 deals)
    job_id = await interrupted_job(sessions, crm["jsmith"], SIX_ROWS.encode(), tmp_path)
    assert len(await deals(sessions)) == 3

    # when
    undone = cli("undo", str(job_id))

    # then
    assert undone.returncode == 0, undone.stderr
    assert f"import {job_id} (deals.csv) undone: 3 created deals removed" in undone.stdout
    assert await deals(sessions) == {}
    assert (await job_row(sessions, job_id)).status == "UNDONE"


# --- issue 13: the close rules and the date range on the import path -------------------


@pytest.mark.no_database
@pytest.mark.parametrize("text", ["31/12/1899", "3000-01-01", "0202-03-31"])
def test_dates_out_of_range_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        importing.parse_date(text)


async def test_a_closed_row_keeps_the_files_close_date_and_forced_probability(crm, sessions):
    # given: a won deal closed last year with a stray probability, an open one with a manual
    # probability, and an open one that claims a close date
    rows = [
        "Opportunity Name;Expected Close Date;Sales Stage;Probability;Actual Close Date",
        "won early;2026-03-31;Closed Won;90;2025-12-15",
        "open manual;2027-03-31;Qualification;35;",
        "open dated;2027-03-31;Qualification;;2026-01-10",
        "won future;2027-03-31;Closed Won;;2999-01-01",
    ]

    # when
    report = await run(sessions, crm["admin"], "\n".join(rows))

    # then
    assert (report.created, problems(report)) == (
        2, [(4, "Actual Close Date"), (5, "Actual Close Date")],
    )
    imported = await deals(sessions)
    won = imported["won early"]
    assert (won.actual_close_date, won.probability, won.probability_is_manual) == (
        dt.date(2025, 12, 15), D("100.00"), False,
    )
    manual = imported["open manual"]
    assert (manual.probability, manual.probability_is_manual, manual.actual_close_date) == (
        D("35.00"), True, None,
    )
    async with sessions() as session:
        change = (await session.scalars(
            select(models.StageChange).where(models.StageChange.opportunity_id == won.id)
        )).one()
    assert change.actual_close_date == dt.date(2025, 12, 15)


async def test_a_lost_deal_from_a_file_without_a_lost_reason_column_is_imported(crm, sessions):
    # given: vtenext's export has no lost-reason field; an existing lost deal keeps its reason
    first = await run(sessions, crm["admin"], "\n".join([
        "Nome Opportunita`;Data di chiusura attesa;Stadio di vendita;Motivo perdita",
        "kept reason;2026-03-31;Chiuso PERSO;Price",
    ]), mapping={"Motivo perdita": "lostReason"})
    assert first.created == 1
    rows = "\n".join([
        "Nome Opportunita`;Data di chiusura attesa;Stadio di vendita",
        "lost in vtenext;2026-03-31;Chiuso PERSO",
        "kept reason;2026-03-31;Chiuso PERSO",
    ])

    # when
    report = await run(sessions, crm["admin"], rows, duplicates="overwrite", match=("name",))

    # then
    assert (report.created, report.failed, problems(report)) == (1, 0, [])
    imported = await deals(sessions)
    assert imported["lost in vtenext"].lost_reason == importing.NO_LOST_REASON
    assert imported["lost in vtenext"].probability == D("0.00")
    assert imported["kept reason"].lost_reason == "Price"
