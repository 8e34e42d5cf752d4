"""Deterministic synthetic CRM data at scale, for demos and benchmarks (`dealgraph demo-data`).

`generate(engine, opportunities=N, seed=S)` fills a migrated database with users in a role
hierarchy, accounts, contacts, campaigns, products, leads and exactly N opportunities (with
stage history, contact roles and quotes whose synced one drives the deal's amount).

Every value comes from `random.Random(seed)`; dates are relative to today (the server's local
date) and instants to midnight UTC of today, so the same seed, N and day give the same rows
on an empty database, on SQLite and PostgreSQL alike. Rows go in with Core `insert()` in
batches, with primary keys assigned here (no RETURNING round trips), in one transaction:
either everything is generated or nothing is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import (
    Account,
    Campaign,
    Contact,
    Currency,
    Lead,
    NumberSequence,
    Opportunity,
    OpportunityContact,
    PicklistValue,
    Product,
    Quote,
    QuoteLine,
    SalesStage,
    StageChange,
    User,
)
from models.seed import PICKLISTS, to_key
from resolvers.dates import today as local_today
from resolvers.money import HUNDRED, cents

Row = dict[str, Any]

BATCH = 5_000  # rows per INSERT execute, and opportunities per progress report
DAY = 86_400
HOUR = 3_600
TWO_YEARS = 730 * DAY
ADMIN = "admin"
MANAGERS = ("manager1", "manager2")
EXTRA_CURRENCIES = (("USD", Decimal("1.10")), ("GBP", Decimal("0.85")))
ZERO = Decimal("0.00")

# --- names -------------------------------------------------------------------------

IT_FIRST = (
    "Marco", "Giulia", "Alessandro", "Francesca", "Luca", "Chiara", "Matteo", "Sara",
    "Andrea", "Valentina", "Giorgio", "Elena", "Davide", "Martina", "Stefano", "Federica",
    "Paolo", "Laura", "Simone", "Silvia", "Roberto", "Anna", "Francesco", "Alessia",
    "Lorenzo", "Giovanni", "Elisa", "Riccardo", "Paola", "Fabio", "Monica", "Daniele",
    "Cristina", "Massimo", "Roberta", "Antonio", "Barbara", "Emanuele", "Ilaria", "Nicola",
)
IT_LAST = (
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
    "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano",
    "Rizzo", "Lombardi", "Moretti", "Barbieri", "Fontana", "Santoro", "Mariani", "Rinaldi",
    "Caruso", "Ferrara", "Galli", "Martini", "Leone", "Longo", "Gentile", "Martinelli",
    "Vitale", "Lombardo", "Serra", "Coppola", "De Santis", "D'Angelo", "Marchetti", "Parisi",
    "Villa", "Conte", "Ferraro", "Ferri", "Fabbri", "Bianco", "Marini", "Grasso", "Valentini",
)
EN_FIRST = (
    "James", "Emma", "Oliver", "Charlotte", "William", "Amelia", "Harry", "Olivia", "George",
    "Sophie", "Thomas", "Emily", "Jack", "Grace", "Daniel", "Hannah", "Michael", "Lucy",
    "David", "Sarah", "Robert", "Jessica", "Samuel", "Eleanor", "Benjamin", "Alice",
    "Matthew", "Rebecca", "Edward", "Laura",
)
EN_LAST = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Harris", "Lewis", "Hughes", "Edwards", "Turner", "Hill",
    "Moore", "Cooper", "Ward", "Baker",
)
DE_LAST = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Koch", "Richter", "Wolf", "Neumann", "Huber",
)

IT_SECTORS = (
    "Meccanica", "Costruzioni", "Logistica", "Impianti", "Sistemi", "Informatica", "Trasporti",
    "Alimentari", "Tessile", "Energia", "Farmaceutica", "Elettronica", "Arredamenti",
    "Servizi", "Automazione", "Ingegneria", "Metalli", "Plastica", "Edilizia",
    "Distribuzione", "Packaging", "Serramenti", "Ceramiche", "Vini", "Consulting",
)
IT_PREFIXES = (
    "Tecno", "Euro", "Nord", "Medi", "Agri", "Info", "Termo", "Idro", "Elettro", "Metal",
    "Italo", "Alpi", "Adria", "Sud", "Centro", "Eco", "Omni", "Gamma", "Delta", "Sigma",
)
IT_ROOTS = (
    "sistemi", "tech", "logica", "service", "plast", "meccanica", "data", "net", "form",
    "lab", "trade", "impianti", "energia", "soft", "line",
)
EN_ADJECTIVES = (
    "Northwind", "Blue Harbor", "Silverline", "Greenfield", "Redwood", "Oakridge", "Summit",
    "Pinnacle", "Brightwater", "Crown", "Atlas", "Horizon", "Meridian", "Granite",
    "Sterling", "Falcon", "Beacon", "Evergreen", "Riverside", "Westbrook", "Ironbridge",
    "Clearview", "Kingsway", "Harbourside", "Lakeshore", "Stonegate", "Bluebell", "Nova",
)
EN_NOUNS = (
    "Systems", "Analytics", "Logistics", "Solutions", "Dynamics", "Networks", "Industries",
    "Software", "Partners", "Labs", "Energy", "Foods", "Health", "Media", "Capital",
    "Robotics", "Engineering", "Supplies", "Retail", "Telecom", "Consulting", "Holdings",
)
DE_ROOTS = ("Alpen", "Rhein", "Nord", "Berg", "Stern", "Donau", "Isar", "Main", "Elb", "Wald")
DE_NOUNS = ("Technik", "Werke", "Logistik", "Systeme", "Maschinenbau", "Handel", "Bau",
            "Elektro", "Software", "Energie")


@dataclass(frozen=True)
class Country:
    name: str
    weight: int
    dial: str
    tld: str
    locale: str  # "it", "en" or "de": how company and people names look
    suffixes: tuple[str, ...]
    cities: tuple[tuple[str, str], ...]  # (city, area code)
    currency: str


COUNTRIES = (
    Country("Italy", 70, "+39", "it", "it", ("S.r.l.", "S.r.l.", "S.r.l.", "S.p.A.", "S.n.c."),
            (("Milano", "02"), ("Roma", "06"), ("Torino", "011"), ("Bologna", "051"),
             ("Firenze", "055"), ("Napoli", "081"), ("Verona", "045"), ("Padova", "049"),
             ("Genova", "010"), ("Bari", "080"), ("Brescia", "030"), ("Bergamo", "035"),
             ("Treviso", "0422"), ("Modena", "059"), ("Parma", "0521")), "EUR"),
    Country("United Kingdom", 8, "+44", "co.uk", "en", ("Ltd", "Ltd", "PLC"),
            (("London", "20"), ("Manchester", "161"), ("Birmingham", "121"),
             ("Edinburgh", "131")), "GBP"),
    Country("Germany", 7, "+49", "de", "de", ("GmbH", "GmbH", "AG"),
            (("München", "89"), ("Berlin", "30"), ("Hamburg", "40"),
             ("Frankfurt am Main", "69")), "EUR"),
    Country("Switzerland", 3, "+41", "ch", "de", ("AG", "GmbH", "SA"),
            (("Zürich", "44"), ("Lugano", "91")), "EUR"),
    Country("Austria", 2, "+43", "at", "de", ("GmbH",), (("Wien", "1"), ("Graz", "316")), "EUR"),
    Country("France", 4, "+33", "fr", "en", ("SAS", "SA"), (("Paris", "1"), ("Lyon", "4")), "EUR"),
    Country("Spain", 3, "+34", "es", "en", ("S.L.", "S.A."),
            (("Madrid", "91"), ("Barcelona", "93")), "EUR"),
    Country("United States", 3, "+1", "com", "en", ("Inc.", "LLC", "Corp."),
            (("New York", "212"), ("Boston", "617"), ("Chicago", "312")), "USD"),
)

IT_TITLES = (
    "Amministratore Delegato", "Direttore Commerciale", "Responsabile Acquisti",
    "Responsabile IT", "Direttore Amministrativo", "Direttore Tecnico", "Office Manager",
    "Responsabile Marketing", "Responsabile di Produzione", "Titolare",
)
EN_TITLES = (
    "CEO", "CFO", "CTO", "Head of Procurement", "IT Manager", "Sales Director",
    "Operations Manager", "Marketing Manager", "Purchasing Manager", "Managing Director",
)

PRODUCTS = (
    "CRM Cloud Standard - user/year", "CRM Cloud Enterprise - user/year", "ERP Suite licence",
    "Business Intelligence add-on", "Mobile Sales app", "Marketing Automation module",
    "Customer Portal", "API Integration pack", "Data migration service",
    "Giornata di consulenza (senior)", "Giornata di consulenza (junior)",
    "Project management day", "Corso di formazione - 1 giorno", "E-learning licence",
    "Premium support - annual", "Standard support - annual", "Intervento on-site",
    "Custom development hour", "Server rack 42U", "Rack server 2U", "NAS storage 24TB",
    "Firewall appliance", "Wi-Fi access point", "Managed switch 48 ports",
    "Laptop 14\" business", "Desktop workstation", "Monitor 27\"", "Barcode scanner",
    "Label printer", "UPS 3kVA", "Cloud backup 1TB/year", "Antivirus endpoint licence",
    "VoIP phone", "Video-conference kit", "Rugged tablet", "Dedicated server hosting/month",
    "Domain & SSL certificate", "Security audit", "GDPR assessment",
    "Helpdesk ticket pack (50)",
)

PROJECTS = (
    "CRM licence renewal", "Rinnovo licenze", "ERP rollout", "Upgrade infrastruttura",
    "Cloud migration", "Support contract {year}", "Contratto assistenza {year}",
    "New branch IT setup", "Fornitura hardware", "Data warehouse", "Security assessment",
    "E-commerce platform", "Progetto digitalizzazione", "Helpdesk outsourcing",
    "Training programme {year}", "Network refresh", "Mobile sales rollout", "Backup & DR",
    "Marketing automation", "Ampliamento licenze", "Video-conference rooms",
    "Customer portal", "BI dashboards", "Integrazione gestionale",
)
NEXT_STEPS = (
    "Schedule a demo", "Send revised proposal", "Call the CFO", "Inviare offerta aggiornata",
    "Fissare incontro tecnico", "Prepare ROI analysis", "Reference call with a customer",
    "Attendere feedback dal cliente", "Negotiate payment terms", "Sopralluogo in sede",
    "Send contract draft", "Follow up after trade show", "Proof of concept kickoff",
    "Presentazione al CDA",
)
LOST_REASONS = (
    "Price too high", "Lost to a competitor", "No budget this year", "Project cancelled",
    "No decision made", "Prezzo troppo alto", "Scelto un concorrente",
    "Timing: postponed to next year", "Requirements not met", "Customer went silent",
)
WON_NOTES = ("Contract signed", "Ordine ricevuto", "PO received", "Contratto firmato")
CAMPAIGN_THEMES = (
    ("SMAU Milano", "TRADE_SHOW"), ("Webinar: CRM per le PMI", "WEBINAR"),
    ("Partner Day", "PARTNERS"), ("Spring Promo", "EMAIL"), ("Newsletter", "EMAIL"),
    ("Cybersecurity Summit", "CONFERENCE"), ("Hannover Messe", "TRADE_SHOW"),
    ("Direct Mail Autunno", "DIRECT_MAIL"), ("Referral Programme", "REFERRAL_PROGRAM"),
    ("LinkedIn Ads", "ADVERTISEMENT"), ("Cloud Roadshow", "CONFERENCE"),
    ("Telemarketing PMI Nord", "TELEMARKETING"), ("Press Tour", "PUBLIC_RELATIONS"),
    ("Webinar: Data & AI", "WEBINAR"), ("Black Friday", "EMAIL"), ("Expo Bologna", "TRADE_SHOW"),
)
DISCOUNTS = tuple(Decimal(d) for d in ("0", "0", "0", "0", "5", "5", "10", "10", "7.5",
                                        "12.5", "15", "20", "25"))
PRICE_ENDINGS = ("00", "00", "00", "50", "90", "99")


@dataclass(frozen=True)
class DemoResult:
    """What one run created (existing users and currencies are reused, not counted)."""

    admin_username: str
    admin_id: int
    users: int
    currencies: int
    accounts: int
    contacts: int
    campaigns: int
    products: int
    leads: int
    opportunities: int
    stage_changes: int
    opportunity_contacts: int
    quotes: int
    quote_lines: int
    seconds: float = field(default=0.0, compare=False)


def rep_count(opportunities: int) -> int:
    return max(4, min(50, opportunities // 2000))


def _slug(value: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", ascii_text.lower())


def _stage_quotas(stages: Sequence[Row], n: int) -> list[int]:
    """Deals per stage: open stages dominate (earlier ones more), won 13%, lost 12%;
    every stage gets at least one deal when there are enough deals."""
    open_stages = [s for s in stages if not s["is_closed"]]
    won = [s for s in stages if s["is_closed"] and s["is_won"]]
    lost = [s for s in stages if s["is_closed"] and not s["is_won"]]
    weights: list[float] = []
    ramp = sum(len(open_stages) + 4 - i for i in range(len(open_stages)))
    for stage in stages:
        if not stage["is_closed"]:
            i = open_stages.index(stage)
            weights.append(75.0 * (len(open_stages) + 4 - i) / ramp)
        elif stage["is_won"]:
            weights.append(13.0 / len(won))
        else:
            weights.append(12.0 / len(lost))
    total = sum(weights)
    exact = [n * w / total for w in weights]
    quotas = [int(x) for x in exact]
    by_remainder = sorted(range(len(stages)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in by_remainder[: n - sum(quotas)]:
        quotas[i] += 1
    if n >= len(stages):
        for i, q in enumerate(quotas):
            if q == 0:
                donor = max(range(len(quotas)), key=lambda j: (quotas[j], -j))
                quotas[donor] -= 1
                quotas[i] = 1
    return quotas


class _Generator:
    """Builds the rows; holds the random source, the clock anchor and the id/number counters."""

    def __init__(
        self, seed: int, today: dt.date, picklists: dict[str, list[str]],
        stages: list[Row], rates: dict[str, Decimal], next_ids: dict[str, int],
        next_numbers: dict[str, int],
    ) -> None:
        self.rng = random.Random(seed)
        self.today = today
        self.anchor = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
        self.picklists = picklists
        self.stages = stages
        self.rates = rates
        self.ids = next_ids
        self.numbers = next_numbers
        self.company_names: set[str] = set()
        self.country_weights = [c.weight for c in COUNTRIES]

    # -- helpers ----------------------------------------------------------------------

    def next_id(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    def next_number(self, prefix: str) -> str:
        value = self.numbers[prefix]
        self.numbers[prefix] = value + 1
        return f"{prefix}{value}"

    def instant(self, seconds_before_anchor: int) -> dt.datetime:
        return self.anchor - dt.timedelta(seconds=seconds_before_anchor)

    def day(self, offset: int) -> dt.date:
        return self.today + dt.timedelta(days=offset)

    def key(self, picklist: str, preferred: str | None = None) -> str:
        keys = self.picklists[picklist]
        if preferred is not None and preferred in keys:
            return preferred
        return self.rng.choice(keys)

    def country(self) -> Country:
        return self.rng.choices(COUNTRIES, self.country_weights)[0]

    def person(self, locale: str) -> tuple[str, str]:
        rng = self.rng
        if locale == "it":
            return rng.choice(IT_FIRST), rng.choice(IT_LAST)
        if locale == "de" and rng.random() < 0.5:
            return rng.choice(EN_FIRST), rng.choice(DE_LAST)
        return rng.choice(EN_FIRST), rng.choice(EN_LAST)

    def phone(self, country: Country, area: str) -> str:
        return f"{country.dial} {area} {self.rng.randint(1_000_000, 9_999_999)}"

    def mobile(self, country: Country) -> str:
        rng = self.rng
        if country.dial == "+39":
            return f"+39 3{rng.randint(20, 49)} {rng.randint(1_000_000, 9_999_999)}"
        return f"{country.dial} 7{rng.randint(100, 999)} {rng.randint(100_000, 999_999)}"

    def company_core(self, country: Country) -> str:
        rng = self.rng
        pattern = rng.random()
        if country.locale == "it":
            if pattern < 0.45:
                return f"{rng.choice(IT_LAST)} {rng.choice(IT_SECTORS)}"
            if pattern < 0.75:
                return rng.choice(IT_PREFIXES) + rng.choice(IT_ROOTS)
            if pattern < 0.9:
                return f"{rng.choice(IT_LAST)} & {rng.choice(IT_LAST)}"
            return f"{rng.choice(IT_PREFIXES)}{rng.choice(IT_ROOTS)} {rng.choice(IT_SECTORS)}"
        if country.locale == "de":
            if pattern < 0.5:
                return f"{rng.choice(DE_ROOTS)} {rng.choice(DE_NOUNS)}"
            return f"{rng.choice(DE_LAST)} {rng.choice(DE_NOUNS)}"
        if pattern < 0.7:
            return f"{rng.choice(EN_ADJECTIVES)} {rng.choice(EN_NOUNS)}"
        return f"{rng.choice(EN_LAST)} & {rng.choice(EN_LAST)} {rng.choice(EN_NOUNS)}"

    def company(self, country: Country, city: str, unique: bool) -> tuple[str, str]:
        """(full name with legal suffix, core name); unique among this run's accounts."""
        for attempt in range(12):
            core = self.company_core(country)
            if attempt >= 8:
                core = f"{core} {city}"
            name = f"{core} {self.rng.choice(country.suffixes)}"
            if not unique or name not in self.company_names:
                break
        else:
            name = f"{core} {len(self.company_names) + 1} {country.suffixes[0]}"
        if unique:
            self.company_names.add(name)
        return name, core

    def money(self, low: int, high: int, step: int) -> Decimal:
        """A whole amount in [low, high] (euros), rounded to `step`, spread log-like."""
        rng = self.rng
        span = high / low
        magnitude = low
        while magnitude * 10 <= high and rng.random() < 0.55:
            magnitude *= 10
        value = int(magnitude * (1 + rng.random() * min(9.0, span - 1)))
        value = max(low, min(high, value // step * step))
        return Decimal(value).quantize(Decimal("0.01"))

    # -- reference data and people ----------------------------------------------------

    def user_specs(self, reps: int) -> list[tuple[str, str, str, str | None]]:
        """(username, full name, role, manager username) for admin, managers and reps."""
        used: set[str] = set()

        def name() -> str:
            while True:
                first, last = self.person("it" if self.rng.random() < 0.7 else "en")
                if f"{first} {last}" not in used:
                    used.add(f"{first} {last}")
                    return f"{first} {last}"

        specs: list[tuple[str, str, str, str | None]] = [(ADMIN, name(), "ADMIN", None)]
        specs += [(m, name(), "MANAGER", None) for m in MANAGERS]
        specs += [
            (f"rep{i}", name(), "SALES_REP", MANAGERS[(i - 1) % 2]) for i in range(1, reps + 1)
        ]
        return specs

    def accounts(self, count: int, reps: Sequence[int]) -> list[Row]:
        rng = self.rng
        rows: list[Row] = []
        for _ in range(count):
            country = self.country()
            city, area = rng.choice(country.cities)
            owner = rng.choice(reps)
            name, core = self.company(country, city, unique=True)
            domain = f"{_slug(core)}.{country.tld}"
            revenue = self.money(100_000, 900_000_000, 1000)
            employees = max(2, int(revenue / rng.randint(80_000, 250_000)))
            age = TWO_YEARS - int((TWO_YEARS - 30 * DAY) * rng.random() ** 2)
            created = self.instant(age)
            rows.append({
                "id": self.next_id("accounts"), "number": self.next_number("ACC"),
                "name": name, "industry": self.key("industry"),
                "website": f"https://www.{domain}", "phone": self.phone(country, area),
                "email": f"info@{domain}", "city": city, "country": country.name,
                "annual_revenue": revenue, "employees": employees,
                "description": None, "deleted_at": None,
                "assigned_to_id": owner, "created_by_id": owner,
                "created_at": created, "updated_at": created,
                # private to the generator, stripped before insert
                "_age": age, "_core": core, "_country": country, "_domain": domain,
            })
        return rows

    def contacts(self, accounts: list[Row]) -> tuple[list[Row], dict[int, list[int]]]:
        rng = self.rng
        rows: list[Row] = []
        by_account: dict[int, list[int]] = {}
        for account in accounts:
            country: Country = account["_country"]
            n = rng.choices((0, 1, 2, 3), (5, 45, 45, 5))[0]
            ids = by_account.setdefault(account["id"], [])
            for _ in range(n):
                first, last = self.person(country.locale)
                age = account["_age"] - rng.randint(0, 30 * DAY)
                created = self.instant(max(HOUR, age))
                contact_id = self.next_id("contacts")
                ids.append(contact_id)
                titles = IT_TITLES if country.locale == "it" else EN_TITLES
                rows.append({
                    "id": contact_id, "number": self.next_number("CON"),
                    "first_name": first, "last_name": last,
                    "email": f"{_slug(first)}.{_slug(last)}@{account['_domain']}",
                    "phone": self.mobile(country), "title": rng.choice(titles),
                    "lead_source": self.key("leadSource"), "account_id": account["id"],
                    "description": None, "deleted_at": None,
                    "assigned_to_id": account["assigned_to_id"],
                    "created_by_id": account["assigned_to_id"],
                    "created_at": created, "updated_at": created,
                })
        return rows, by_account

    def campaigns(self, count: int, owners: Sequence[int]) -> list[Row]:
        rng = self.rng
        rows: list[Row] = []
        for i in range(count):
            theme, preferred_type = CAMPAIGN_THEMES[i % len(CAMPAIGN_THEMES)]
            age = rng.randint(30 * DAY, TWO_YEARS)
            created = self.instant(age)
            close = created.date() + dt.timedelta(days=rng.randint(30, 150))
            if close < self.today:
                status = rng.choices(("COMPLETED", "INACTIVE", "CANCELLED"), (7, 2, 1))[0]
            else:
                status = rng.choice(("PLANNING", "ACTIVE", "ACTIVE"))
            budget = Decimal(rng.randint(5, 200) * 1000).quantize(Decimal("0.01"))
            if status == "COMPLETED":
                actual = cents(budget * Decimal(rng.randint(80, 110)) / HUNDRED)
            elif status == "PLANNING":
                actual = ZERO
            else:
                actual = cents(budget * Decimal(rng.randint(10, 90)) / HUNDRED)
            edition = f" #{i // len(CAMPAIGN_THEMES) + 1}" if i >= len(CAMPAIGN_THEMES) else ""
            owner = rng.choice(owners)
            rows.append({
                "id": self.next_id("campaigns"), "number": self.next_number("CAM"),
                "name": f"{theme} {close.year}{edition}",
                "type": self.key("campaignType", preferred_type),
                "status": self.key("campaignStatus", status),
                "expected_close_date": close, "budget_cost": budget, "actual_cost": actual,
                "expected_revenue": budget * rng.randint(3, 12),
                "description": None, "deleted_at": None,
                "assigned_to_id": owner, "created_by_id": owner,
                "created_at": created, "updated_at": created,
            })
        return rows

    def products(self) -> list[Row]:
        rng = self.rng
        rows: list[Row] = []
        created = self.instant(TWO_YEARS + DAY)
        for name in PRODUCTS:
            euros = rng.randint(10, 5000)
            ending = "00" if euros == 5000 else rng.choice(PRICE_ENDINGS)
            tax = rng.choices(("22", "10", "0"), (8, 1, 1))[0]
            number = self.numbers["PRO"]
            rows.append({
                "id": self.next_id("products"), "number": self.next_number("PRO"),
                "name": name, "code": f"PRD-{number:04d}",
                "unit_price": Decimal(f"{euros}.{ending}"), "tax_percent": Decimal(tax),
                "is_active": True, "deleted_at": None,
                "created_at": created, "updated_at": created,
            })
        return rows

    def leads(self, count: int, reps: Sequence[int], campaign_ids: Sequence[int]) -> list[Row]:
        rng = self.rng
        rows: list[Row] = []
        for _ in range(count):
            country = self.country()
            city, _area = rng.choice(country.cities)
            company, core = self.company(country, city, unique=False)
            first, last = self.person(country.locale)
            created = self.instant(rng.randint(HOUR, TWO_YEARS))
            owner = rng.choice(reps)
            titles = IT_TITLES if country.locale == "it" else EN_TITLES
            rows.append({
                "id": self.next_id("leads"), "number": self.next_number("LEA"),
                "first_name": first, "last_name": last, "company": company,
                "email": f"{_slug(first)}.{_slug(last)}@{_slug(core)}.{country.tld}",
                "phone": self.mobile(country), "title": rng.choice(titles),
                "industry": self.key("industry"), "lead_source": self.key("leadSource"),
                "status": self.key("leadStatus"),
                "campaign_id": rng.choice(campaign_ids) if rng.random() < 0.4 else None,
                "is_converted": False, "converted_at": None, "converted_account_id": None,
                "converted_contact_id": None, "converted_opportunity_id": None,
                "description": None, "deleted_at": None,
                "assigned_to_id": owner, "created_by_id": owner,
                "created_at": created, "updated_at": created,
            })
        return rows


@dataclass
class _DealBatch:
    opportunities: list[Row] = field(default_factory=list)
    stage_changes: list[Row] = field(default_factory=list)
    quotes: list[Row] = field(default_factory=list)
    quote_lines: list[Row] = field(default_factory=list)
    opportunity_contacts: list[Row] = field(default_factory=list)


class _Deals:
    """Opportunities with their history, contact roles and quotes, a batch at a time."""

    def __init__(
        self, gen: _Generator, n: int, accounts: list[Row], contacts: dict[int, list[int]],
        campaign_ids: list[int], products: list[Row], reps: list[int],
    ) -> None:
        self.gen = gen
        rng = gen.rng
        stages = gen.stages
        self.stage_by_key = {s["key"]: s for s in stages}
        self.open_keys = [s["key"] for s in stages if not s["is_closed"]]
        self.quote_chance: dict[str, float] = {}
        last = max(1, len(self.open_keys) - 1)
        for i, key in enumerate(self.open_keys):
            self.quote_chance[key] = 0.1 + 0.7 * i / last
        for s in stages:
            if s["is_closed"]:
                self.quote_chance[s["key"]] = 0.6 if s["is_won"] else 0.3
        quotas = _stage_quotas(stages, n)
        self.stage_plan = [s["key"] for s, q in zip(stages, quotas, strict=True) for _ in range(q)]
        rng.shuffle(self.stage_plan)
        self.accounts = accounts
        self.contacts = contacts
        self.campaign_ids = campaign_ids
        self.products = [
            (p["id"], p["name"], p["unit_price"], p["tax_percent"]) for p in products
        ]
        self.reps = reps
        self.done = 0
        self.dates = {o: gen.day(o) for o in range(-800, 400)}

    def batch(self, size: int) -> _DealBatch:
        gen, rng = self.gen, self.gen.rng
        out = _DealBatch()
        rand, randint, choice = rng.random, rng.randint, rng.choice
        for stage_key in self.stage_plan[self.done : self.done + size]:
            stage = self.stage_by_key[stage_key]
            closed, won = stage["is_closed"], stage["is_won"]
            account = choice(self.accounts) if rand() < 0.95 else None
            if account is not None:
                owner = account["assigned_to_id"] if rand() < 0.85 else choice(self.reps)
                currency = account["_country"].currency
                account_age = account["_age"]
            else:
                owner = choice(self.reps)
                currency = "EUR"
                account_age = TWO_YEARS
            if currency == "EUR" and rand() < 0.02:
                currency = "USD"

            # Dates: open deals close in [-180, +365] days (mostly ahead); closed ones closed
            # on or before yesterday, their expected date near the real one.
            if closed:
                offset = randint(-180, 30)
                closed_offset = max(-720, min(-1, offset + randint(-45, 20)))
                close_age = -closed_offset * DAY - randint(8 * HOUR, 18 * HOUR)
                low, high = close_age + 7 * DAY, min(TWO_YEARS, close_age + 365 * DAY)
            else:
                offset = randint(-180, -1) if rand() < 0.15 else randint(0, 365)
                closed_offset = 0
                close_age = 0
                low = max(HOUR, (7 - offset) * DAY)
                high = min(TWO_YEARS, (540 - offset) * DAY)
            if min(high, account_age - HOUR) >= low:
                high = min(high, account_age - HOUR)
            age = randint(low, high)
            created = gen.instant(age)
            stage_changed = gen.instant(close_age) if closed else created
            expected_close = self.dates[offset]

            opp_id = gen.next_id("opportunities")
            number = gen.next_number("POT")
            project = choice(PROJECTS).format(year=expected_close.year)
            name = f"{account['_core']} - {project}" if account else f"{project} ({number})"

            # Contacts: a primary (with a role, mostly) on ~60% of deals with an account.
            primary: int | None = None
            account_contacts = self.contacts.get(account["id"], []) if account else []
            if account_contacts and rand() < 0.63:
                primary = choice(account_contacts)
                out.opportunity_contacts.append({
                    "opportunity_id": opp_id, "contact_id": primary,
                    "role": gen.key("contactRole") if rand() < 0.85 else None,
                    "is_primary": True, "created_at": created,
                })
                others = [c for c in account_contacts if c != primary]
                if others and rand() < 0.25:
                    out.opportunity_contacts.append({
                        "opportunity_id": opp_id, "contact_id": choice(others),
                        "role": gen.key("contactRole"), "is_primary": False,
                        "created_at": created,
                    })

            # Amount: from the synced quote (~40% of deals) or typed in.
            updated = stage_changed
            if rand() < self.quote_chance[stage_key]:
                amount, last_quote = self._quotes(
                    out, opp_id, number, project, account, primary, owner, currency,
                    age, close_age if closed else max(HOUR, age - 90 * DAY), stage,
                )
                amount_source = "QUOTE"
                updated = max(updated, last_quote)
            else:
                amount = gen.money(500, 400_000, 50)
                amount_source = "MANUAL"

            campaign = choice(self.campaign_ids) if rand() < 0.3 else None
            lost_reason = choice(LOST_REASONS) if closed and not won else None
            out.opportunities.append({
                "id": opp_id, "number": number, "name": name, "amount": amount,
                "currency": currency, "account_id": account["id"] if account else None,
                "campaign_id": campaign, "expected_close_date": expected_close,
                "actual_close_date": self.dates[closed_offset] if closed else None,
                "type": gen.key("opportunityType"), "next_step": None if closed
                else choice(NEXT_STEPS), "lead_source": gen.key("leadSource"),
                "sales_stage": stage_key, "probability": stage["probability"],
                "probability_is_manual": False, "lost_reason": lost_reason,
                "amount_source": amount_source, "stage_changed_at": stage_changed,
                "version": 1, "custom_fields": {}, "description": None, "deleted_at": None,
                "assigned_to_id": owner, "created_by_id": owner,
                "created_at": created, "updated_at": updated,
            })

            # History: creation records the first stage; a closed deal came from an open one.
            first = stage_key
            if closed and self.open_keys:  # won deals mostly got far before closing
                later = self.open_keys[len(self.open_keys) // 2 :]
                first = choice(later if won else self.open_keys)
            out.stage_changes.append({
                "id": gen.next_id("stage_changes"), "opportunity_id": opp_id,
                "from_stage": None, "to_stage": first, "amount": amount,
                "probability": self.stage_by_key[first]["probability"],
                "expected_close_date": expected_close, "changed_by_id": owner,
                "changed_at": created, "note": None,
            })
            if first != stage_key:
                out.stage_changes.append({
                    "id": gen.next_id("stage_changes"), "opportunity_id": opp_id,
                    "from_stage": first, "to_stage": stage_key, "amount": amount,
                    "probability": stage["probability"],
                    "expected_close_date": expected_close, "changed_by_id": owner,
                    "changed_at": stage_changed,
                    "note": choice(WON_NOTES) if won else lost_reason,
                })
        self.done += size
        return out

    def _quotes(
        self, out: _DealBatch, opp_id: int, number: str, project: str, account: Row | None,
        contact: int | None, owner: int, currency: str, oldest: int, newest: int,
        stage: Row,
    ) -> tuple[Decimal, dt.datetime]:
        """1–2 quotes of 1–5 lines; the last is synced. Returns its net total and time."""
        gen, rng = self.gen, self.gen.rng
        rate = gen.rates.get(currency, Decimal(1))
        n_quotes = 1 if rng.random() < 0.7 else 2
        ages = sorted((rng.randint(newest, oldest) for _ in range(n_quotes)), reverse=True)
        net_total = ZERO
        created = gen.anchor
        for index, age in enumerate(ages):
            synced = index == n_quotes - 1
            if not synced:
                quote_stage = rng.choice(("REJECTED", "REVIEWED", "DELIVERED"))
            elif stage["is_closed"]:
                quote_stage = "ACCEPTED" if stage["is_won"] else "REJECTED"
            else:
                quote_stage = rng.choice(("CREATED", "DELIVERED", "REVIEWED"))
            created = gen.instant(age)
            quote_id = gen.next_id("quotes")
            revision = f" (rev. {index + 1})" if n_quotes > 1 else ""
            out.quotes.append({
                "id": quote_id, "number": gen.next_number("QUO"),
                "subject": f"Offerta {number}{revision} - {project}",
                "stage": gen.key("quoteStage", quote_stage),
                "valid_until": created.date() + dt.timedelta(days=rng.choice((30, 60, 90))),
                "opportunity_id": opp_id, "account_id": account["id"] if account else None,
                "contact_id": contact, "is_synced": synced, "created_by_id": owner,
                "deleted_at": None, "created_at": created, "updated_at": created,
            })
            net_total = ZERO
            for position in range(1, rng.randint(1, 5) + 1):
                product_id, product_name, unit_price, tax = rng.choice(self.products)
                price = unit_price if currency == "EUR" else cents(unit_price * rate)
                if unit_price < 100:
                    quantity = Decimal(rng.randint(5, 100))
                elif unit_price < 2000:
                    quantity = Decimal(rng.randint(1, 20))
                else:
                    quantity = Decimal(rng.randint(1, 5))
                if rng.random() < 0.1:
                    quantity += Decimal("0.5")
                discount = rng.choice(DISCOUNTS)
                net_total += cents(quantity * price * (1 - discount / HUNDRED))
                out.quote_lines.append({
                    "id": gen.next_id("quote_lines"), "quote_id": quote_id,
                    "position": position, "product_id": product_id,
                    "description": product_name, "quantity": quantity, "list_price": price,
                    "discount_percent": discount, "tax_percent": tax,
                })
        return net_total, created


# --- database ----------------------------------------------------------------------

ID_TABLES: dict[str, Any] = {
    "users": User, "accounts": Account, "contacts": Contact, "campaigns": Campaign,
    "products": Product, "leads": Lead, "opportunities": Opportunity,
    "stage_changes": StageChange, "quotes": Quote, "quote_lines": QuoteLine,
}


async def _insert(conn: AsyncConnection, model: Any, rows: list[Row]) -> None:
    table = model.__table__
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        if chunk and any(k.startswith("_") for k in chunk[0]):
            chunk = [{k: v for k, v in r.items() if not k.startswith("_")} for r in chunk]
        await conn.execute(insert(table), chunk)


async def _picklists(conn: AsyncConnection) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    rows = await conn.execute(
        select(PicklistValue.picklist, PicklistValue.key)
        .where(PicklistValue.is_active.is_(True))
        .order_by(PicklistValue.picklist, PicklistValue.position, PicklistValue.key)
    )
    for name, key in rows:
        result.setdefault(name, []).append(key)
    for name, labels in PICKLISTS.items():  # an emptied picklist falls back to the defaults
        if not result.get(name):
            result[name] = [to_key(label) for label in labels]
    return result


async def _stages(conn: AsyncConnection) -> list[Row]:
    rows = await conn.execute(
        select(SalesStage.key, SalesStage.probability, SalesStage.is_closed, SalesStage.is_won)
        .where(SalesStage.is_active.is_(True))
        .order_by(SalesStage.position, SalesStage.key)
    )
    stages = [
        {"key": k, "probability": Decimal(p).quantize(Decimal("0.01")), "is_closed": bool(c),
         "is_won": bool(w)}
        for k, p, c, w in rows
    ]
    if not stages:
        raise RuntimeError("No active sales stages: migrate the database first.")
    return stages


async def _ensure_currencies(conn: AsyncConnection) -> tuple[dict[str, Decimal], int]:
    rates = {
        row.code: Decimal(str(row.rate))
        for row in await conn.execute(select(Currency.code, Currency.rate))
    }
    missing = [(code, rate) for code, rate in EXTRA_CURRENCIES if code not in rates]
    if missing:
        await conn.execute(
            insert(Currency), [{"code": c, "rate": r, "is_base": False} for c, r in missing]
        )
        rates.update(missing)
    return rates, len(missing)


async def _ensure_users(
    conn: AsyncConnection, gen: _Generator, reps: int
) -> tuple[dict[str, int], int]:
    specs = gen.user_specs(reps)
    existing = {
        username: user_id
        for user_id, username in await conn.execute(
            select(User.id, User.username).where(User.username.in_([s[0] for s in specs]))
        )
    }
    ids = dict(existing)
    created = gen.instant(TWO_YEARS + 2 * DAY)
    new_rows: list[Row] = []
    for username, full_name, role, manager in specs:  # managers come before their reps
        if username in ids:
            continue
        ids[username] = gen.next_id("users")
        new_rows.append({
            "id": ids[username], "username": username, "full_name": full_name,
            "email": f"{username}@example.com", "role": role,
            "manager_id": ids[manager] if manager else None, "is_active": True,
            "created_at": created,
        })
    await _insert(conn, User, new_rows)
    return ids, len(new_rows)


async def generate(
    engine: AsyncEngine,
    opportunities: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> DemoResult:
    """Fill a migrated database with demo data: exactly `opportunities` deals and the
    users, accounts, contacts, campaigns, products, leads and quotes around them.

    One transaction; same seed, count and day give the same data on an empty database."""
    if opportunities < 0:
        raise ValueError("opportunities must not be negative")
    started = time.perf_counter()
    today = local_today()
    n = opportunities
    async with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if conn.dialect.name == "sqlite":  # take the write lock up front (see server.db)
            await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        async with conn.begin():
            sequences = {
                prefix: value
                for prefix, value in await conn.execute(
                    select(NumberSequence.prefix, NumberSequence.next_value).with_for_update()
                )
            }
            prefixes = ("POT", "ACC", "CON", "LEA", "CAM", "QUO", "PRO")
            numbers = {p: sequences.get(p, 1) for p in prefixes}
            next_ids: dict[str, int] = {}
            for table, model in ID_TABLES.items():
                next_ids[table] = (await conn.scalar(select(func.max(model.id))) or 0) + 1
            first_ids = dict(next_ids)
            first_numbers = dict(numbers)

            gen = _Generator(
                seed, today, await _picklists(conn), await _stages(conn),
                {}, next_ids, numbers,
            )
            gen.rates, currencies_added = await _ensure_currencies(conn)
            users, users_created = await _ensure_users(conn, gen, rep_count(n))
            admin_id = users[ADMIN]
            reps = [users[f"rep{i}"] for i in range(1, rep_count(n) + 1)]
            managers = [users[m] for m in MANAGERS]

            accounts = gen.accounts(max(20, n // 10), reps)
            await _insert(conn, Account, accounts)
            contact_rows, contacts_by_account = gen.contacts(accounts)
            await _insert(conn, Contact, contact_rows)
            campaigns = gen.campaigns(max(5, n // 5000), [*managers, admin_id])
            await _insert(conn, Campaign, campaigns)
            products = gen.products()
            await _insert(conn, Product, products)
            campaign_ids = [c["id"] for c in campaigns]
            leads = gen.leads(max(20, n // 5), reps, campaign_ids)
            await _insert(conn, Lead, leads)

            deals = _Deals(gen, n, accounts, contacts_by_account, campaign_ids, products, reps)
            counts = {"stage_changes": 0, "quotes": 0, "quote_lines": 0, "contacts": 0}
            sizes = [min(BATCH, n - start) for start in range(0, n, BATCH)]
            # Each batch is built in a thread while the previous one is written: the database
            # driver works without the GIL, so generating and writing overlap. Batches are
            # still built one after another, in order, so the data stays deterministic.
            pending = asyncio.create_task(asyncio.to_thread(deals.batch, sizes[0])) if n else None
            written = 0
            try:
                for i in range(len(sizes)):
                    assert pending is not None
                    batch = await pending
                    pending = None
                    if i + 1 < len(sizes):
                        pending = asyncio.create_task(asyncio.to_thread(deals.batch, sizes[i + 1]))
                    await _insert(conn, Opportunity, batch.opportunities)
                    await _insert(conn, StageChange, batch.stage_changes)
                    await _insert(conn, Quote, batch.quotes)
                    await _insert(conn, QuoteLine, batch.quote_lines)
                    await _insert(conn, OpportunityContact, batch.opportunity_contacts)
                    counts["stage_changes"] += len(batch.stage_changes)
                    counts["quotes"] += len(batch.quotes)
                    counts["quote_lines"] += len(batch.quote_lines)
                    counts["contacts"] += len(batch.opportunity_contacts)
                    written += sizes[i]
                    if progress is not None:
                        progress(written)
            finally:
                if pending is not None:  # a write failed: let the builder thread finish
                    await asyncio.gather(pending, return_exceptions=True)

            for prefix, value in numbers.items():
                if value == first_numbers[prefix] and prefix in sequences:
                    continue
                if prefix in sequences:
                    await conn.execute(
                        update(NumberSequence)
                        .where(NumberSequence.prefix == prefix)
                        .values(next_value=value)
                    )
                else:
                    await conn.execute(insert(NumberSequence), [{"prefix": prefix,
                                                                 "next_value": value}])
            if postgres:
                for table in ID_TABLES:
                    if next_ids[table] != first_ids[table]:
                        await conn.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        ))
    return DemoResult(
        admin_username=ADMIN, admin_id=admin_id, users=users_created,
        currencies=currencies_added, accounts=len(accounts), contacts=len(contact_rows),
        campaigns=len(campaigns), products=len(products), leads=len(leads), opportunities=n,
        stage_changes=counts["stage_changes"], opportunity_contacts=counts["contacts"],
        quotes=counts["quotes"], quote_lines=counts["quote_lines"],
        seconds=round(time.perf_counter() - started, 3),
    )
