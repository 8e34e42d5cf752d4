"""Importing opportunities from CSV: what people actually have (vtiger/vtenext exports,
Italian spreadsheets) read safely. Every row goes through the same rules as the mutations
(create_opportunity / update_opportunity); reference data and references are looked up in
bulk per batch so that a row costs no query of its own, and batches are written whole."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import (
    Account,
    Campaign,
    Contact,
    CustomFieldDefinition,
    ImportItem,
    ImportJob,
    Opportunity,
    OpportunityContact,
    PicklistValue,
    SalesStage,
    StageChange,
    User,
)
from models.base import utcnow
from resolvers import customization, editing, history, opportunity
from resolvers.csv_fields import HEADERS, ITALIAN_VALUES, normalise
from resolvers.errors import ErrorCode, FieldError, ValidationFailed
from resolvers.ids import to_global_id
from resolvers.numbering import reserve_numbers
from resolvers.permissions import Viewer, readable
from resolvers.tx import assign_ids, begin_write
from resolvers.validation import all_stages, remember

DELIMITERS = ",;\t|"
MATCHABLE = ("number", "name", "account", "campaign", "assignedTo", "expectedCloseDate")
# Snapshot of an overwritten deal, restored by undo.
SNAPSHOT = (
    "name", "amount", "currency", "account_id", "campaign_id", "expected_close_date",
    "actual_close_date", "type", "next_step", "lead_source", "sales_stage", "probability",
    "probability_is_manual", "lost_reason", "assigned_to_id", "description", "custom_fields",
)


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    duplicates: str = "skip"  # skip | overwrite | merge (with `match`)
    match: tuple[str, ...] = ()
    create_missing_accounts: bool = False
    mapping: dict[str, str] = field(default_factory=dict)  # header -> field key ("" ignores)
    all_or_nothing: bool = False
    batch_size: int = 1000


@dataclass
class Issue:
    line: int
    column: str | None
    message: str


@dataclass
class Report:
    job_id: int | None = None
    total: int = 0
    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    failed_rows_csv: str | None = None
    encoding: str = ""
    delimiter: str = ""
    written: bool = True


class CellError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column


# --- reading -------------------------------------------------------------------------


@dataclass
class Table:
    headers: list[str]
    rows: list[tuple[int, list[str]]]  # (line number of the record's first line, cells)
    encoding: str
    delimiter: str


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding: UTF-8 (with or without BOM), else Windows-1252, else ISO-8859-1."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined (0x81, 0x8d, ...)
        return data.decode("latin-1"), "iso-8859-1"


def sniff_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = text.splitlines()[0] if text else ""
        return max(DELIMITERS, key=header.count)


def read_table(data: bytes) -> Table:
    text, encoding = decode(data)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    start = 1
    for cells in reader:
        if not headers:
            headers = [h.strip() for h in cells]
        elif any(c.strip() for c in cells):
            rows.append((start, cells))
        start = reader.line_num + 1
    return Table(headers, rows, encoding, delimiter)


# --- values ----------------------------------------------------------------------------

DATE_FORMS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?$"),  # ISO, maybe with a time
    re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?: .*)?$"),  # dd/mm/yyyy and kin
)


def parse_date(text: str) -> dt.date:
    value = text.strip()
    for i, form in enumerate(DATE_FORMS):
        m = form.match(value)
        if m:
            a, b, c = (int(g) for g in m.groups())
            year, month, day = (a, b, c) if i == 0 else (c, b, a)
            try:
                return dt.date(year, month, day)
            except ValueError:
                break
    raise ValueError(f"{text!r} is not a date (use 2027-03-31 or 31/03/2027)")


def parse_number(text: str, decimal_comma: bool) -> Decimal:
    """'1.234,56', '1,234.56', '1234,56', '€ 1 234,56' and plain numbers."""
    s = re.sub(r"[\s\u00a0'€$£%]", "", text)
    if "," in s and "." in s:
        comma_last = s.rfind(",") > s.rfind(".")
        s = s.replace(".", "").replace(",", ".") if comma_last else s.replace(",", "")
    elif "," in s:
        thousands = re.fullmatch(r"-?\d{1,3}(,\d{3})+", s) and not decimal_comma
        s = s.replace(",", "") if thousands else s.replace(",", ".")
    elif decimal_comma and re.fullmatch(r"-?\d{1,3}(\.\d{3})+", s):
        s = s.replace(".", "")
    try:
        number = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{text!r} is not a number")
    return number


def parse_bool(text: str) -> bool:
    value = normalise(text)
    if value in ("true", "1", "yes", "si", "y", "vero"):
        return True
    if value in ("false", "0", "no", "n", "falso"):
        return False
    raise ValueError(f"{text!r} is not true or false")


# --- the import ------------------------------------------------------------------------


@dataclass
class Lookups:
    """Per-file knowledge: picklist labels, people, and per-batch references by natural key."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)  # picklist -> norm -> key
    users: dict[str, User] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)


class Importer:
    def __init__(
        self, session: AsyncSession, viewer: Viewer, options: Options, table: Table
    ) -> None:
        self.session = session
        self.viewer = viewer
        self.options = options
        self.table = table
        self.decimal_comma = table.delimiter == ";"
        self.lookups = Lookups()
        self.report = Report(total=len(table.rows), encoding=table.encoding,
                             delimiter=table.delimiter)
        self.targets: list[str | None] = []
        self.custom: dict[str, CustomFieldDefinition] = {}
        self.seen: dict[tuple[Any, ...], Opportunity] = {}
        self.created: list[Opportunity] = []
        self.items: list[dict[str, Any]] = []
        self.failed: list[tuple[int, list[str], str]] = []

    # columns -----------------------------------------------------------------------

    async def plan(self) -> None:
        """Which field each header feeds; unknown and read-only headers are warned about."""
        defs = await customization.definitions(self.session, "OPPORTUNITY")
        self.custom = {d.key: d for d in defs}
        by_label = {normalise(d.label): d.key for d in defs}
        mapping = {normalise(k): v for k, v in self.options.mapping.items()}
        used: set[str] = set()
        for header in self.table.headers:
            norm = normalise(header)
            target: str | None
            if norm in mapping:
                target = mapping[norm] or None
            elif norm in HEADERS:
                column = HEADERS[norm]
                target = None if column.read_only else column.key
                if column.read_only:
                    self.report.warnings.append(f"Column {header!r} is read-only; ignored.")
            elif header.strip() in self.custom:
                target = header.strip()
            elif norm in by_label:
                target = by_label[norm]
            else:
                target = None
                self.report.warnings.append(f"Column {header!r} is not a field; ignored.")
            if target is not None and target in used:
                self.report.warnings.append(f"Column {header!r} repeats {target}; ignored.")
                target = None
            if target is not None:
                used.add(target)
            self.targets.append(target)
        if "name" not in used:
            self.report.warnings.append("No column holds the opportunity name.")

    async def load_lookups(self) -> None:
        rows = await self.session.execute(select(PicklistValue.picklist, PicklistValue.key,
                                                 PicklistValue.label))
        for name, key, label in rows:
            known = self.lookups.values.setdefault(name, {})
            known[normalise(key)] = known[normalise(label)] = key
        for stage in (await all_stages(self.session)).values():
            known = self.lookups.values.setdefault("salesStage", {})
            known[normalise(stage.key)] = known[normalise(stage.name)] = stage.key
        for name, labels in ITALIAN_VALUES.items():
            for key, label in labels.items():
                self.lookups.values.setdefault(name, {}).setdefault(normalise(label), key)
        for user in (await self.session.scalars(select(User))).all():
            self.lookups.users.setdefault(user.username.casefold(), user)
            self.lookups.users.setdefault(user.full_name.casefold(), user)
        remember(self.session, "User", list(self.lookups.users.values()))

    async def prefetch(self, batch: Sequence[tuple[int, list[str]]]) -> None:
        """References of a batch by natural key, one query per kind."""
        wanted: dict[str, set[str]] = {"account": set(), "campaign": set(), "contact": set()}
        for _, cells in batch:
            for target, cell in zip(self.targets, cells, strict=False):
                if target in wanted and cell.strip():
                    wanted[target].add(cell.strip().casefold())
        lookups, viewer = self.lookups, self.viewer
        if wanted["account"] - lookups.accounts.keys():
            names = sorted(wanted["account"] - lookups.accounts.keys())
            stmt = (
                select(Account)
                .where(func.lower(Account.name).in_(names), Account.deleted_at.is_(None),
                       readable(Account.assigned_to_id, viewer))
                .order_by(Account.created_at, Account.id)
            )
            found = (await self.session.scalars(stmt)).all()
            for account in found:
                lookups.accounts.setdefault(account.name.casefold(), account)
            remember(self.session, "Account", found)
        if wanted["campaign"] - lookups.campaigns.keys():
            names = sorted(wanted["campaign"] - lookups.campaigns.keys())
            by_name = select(Campaign).where(
                func.lower(Campaign.name).in_(names), Campaign.deleted_at.is_(None)
            ).order_by(Campaign.id)
            found_campaigns = (await self.session.scalars(by_name)).all()
            for campaign in found_campaigns:
                lookups.campaigns.setdefault(campaign.name.casefold(), campaign)
            remember(self.session, "Campaign", found_campaigns)
        if wanted["contact"] - lookups.contacts.keys():
            keys = sorted(wanted["contact"] - lookups.contacts.keys())
            full = func.lower(func.coalesce(Contact.first_name, "") + " " + Contact.last_name)
            by_key = select(Contact).where(
                or_(func.lower(Contact.email).in_(keys), full.in_(keys),
                    func.lower(Contact.last_name).in_(keys)),
                Contact.deleted_at.is_(None), readable(Contact.assigned_to_id, viewer),
            ).order_by(Contact.id)
            found_contacts = (await self.session.scalars(by_key)).all()
            for contact in found_contacts:
                for key in (contact.email, f"{contact.first_name or ''} {contact.last_name}",
                            contact.last_name):
                    if key:
                        lookups.contacts.setdefault(key.strip().casefold(), contact)
            remember(self.session, "Contact", found_contacts)

    # one row -------------------------------------------------------------------------

    def header_of(self, target: str) -> str:
        for header, t in zip(self.table.headers, self.targets, strict=True):
            if t == target:
                return header
        return target

    async def convert(self, cells: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The row as mutation input, and the import-only extras (actualCloseDate)."""
        data: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        raw = {t: c.strip() for t, c in zip(self.targets, cells, strict=False) if t}
        custom: list[tuple[str, Any]] = []
        for target, text in raw.items():
            if not text:
                continue
            try:
                await self._cell(target, text, data, extra, custom)
            except CellError:
                raise
            except ValueError as bad:
                raise CellError(self.header_of(target), str(bad)) from None
        if custom:
            data["custom_fields"] = custom
        manual = extra.pop("probability_is_manual", None)
        if "probability" in data:
            stage = (await all_stages(self.session)).get(data.get("sales_stage") or "")
            default = stage.probability if stage else None
            if manual is False or (manual is None and data["probability"] == default):
                del data["probability"]
        return data, extra

    async def _cell(
        self, target: str, text: str, data: dict[str, Any], extra: dict[str, Any],
        custom: list[tuple[str, Any]],
    ) -> None:
        lookups = self.lookups
        if target in ("name", "nextStep", "description", "lostReason"):
            data[{"nextStep": "next_step", "lostReason": "lost_reason"}.get(target, target)] = text
        elif target == "amount":
            data["amount"] = parse_number(text, self.decimal_comma)
        elif target == "probability":
            data["probability"] = parse_number(text, self.decimal_comma)
        elif target == "probabilityIsManual":
            extra["probability_is_manual"] = parse_bool(text)
        elif target == "currency":
            data["currency"] = text
        elif target in ("expectedCloseDate", "actualCloseDate"):
            date = parse_date(text)
            if target == "expectedCloseDate":
                data["expected_close_date"] = date
            else:
                extra["actual_close_date"] = date
        elif target in ("salesStage", "type", "leadSource"):
            picklist = {"type": "opportunityType"}.get(target, target)
            key = lookups.values.get(picklist, {}).get(normalise(text), text)
            names = {"salesStage": "sales_stage", "leadSource": "lead_source"}
            data[names.get(target, target)] = key
        elif target == "assignedTo":
            user = lookups.users.get(text.casefold())
            if user is None:
                raise CellError(self.header_of(target), f"No user {text!r}.")
            data["assigned_to_id"] = to_global_id("User", user.id)
        elif target == "account":
            account = lookups.accounts.get(text.casefold())
            if account is None:
                if not self.options.create_missing_accounts:
                    raise CellError(self.header_of(target), f"No account named {text!r} "
                                    "(use --create-missing-accounts to create it).")
                account = await self._new_account(text)
            data["account_id"] = to_global_id("Account", account.id)
        elif target == "campaign":
            campaign = lookups.campaigns.get(text.casefold())
            if campaign is None:
                raise CellError(self.header_of(target), f"No campaign named {text!r}.")
            data["campaign_id"] = to_global_id("Campaign", campaign.id)
        elif target == "contact":
            contact = lookups.contacts.get(text.casefold())
            if contact is None:
                raise CellError(self.header_of(target), f"No contact {text!r}.")
            data["contact_id"] = to_global_id("Contact", contact.id)
        elif target in self.custom:
            custom.append((target, self._custom_value(self.custom[target], text)))

    def _custom_value(self, d: CustomFieldDefinition, text: str) -> Any:
        if d.type == "INTEGER":
            number = parse_number(text, self.decimal_comma)
            if number != number.to_integral_value():
                raise ValueError(f"{text!r} is not a whole number")
            return int(number)
        if d.type in ("DECIMAL", "CURRENCY", "PERCENT"):
            return str(parse_number(text, self.decimal_comma))
        if d.type == "DATE":
            return parse_date(text).isoformat()
        if d.type == "BOOLEAN":
            return parse_bool(text)
        if d.type == "MULTI_PICKLIST":
            return [part.strip() for part in re.split(r"[|;]", text) if part.strip()]
        return text

    def _new_account_needed(self, cells: list[str]) -> bool:
        for target, cell in zip(self.targets, cells, strict=False):
            if target == "account" and cell.strip():
                return cell.strip().casefold() not in self.lookups.accounts
        return False

    async def _new_account(self, name: str) -> Account:
        account: Account = await editing.create_record(
            self.session, self.viewer, "Account", {"name": name}, root=("row",)
        )
        await self.session.flush()
        self.lookups.accounts[name.casefold()] = account
        remember(self.session, "Account", [account])
        self.items.append({"kind": "ACCOUNT", "record_id": account.id, "action": "CREATED"})
        return account

    def match_key(self, data: dict[str, Any], number: str | None) -> tuple[Any, ...] | None:
        if not self.options.match:
            return None
        values = {
            "number": number, "name": (data.get("name") or "").casefold() or None,
            "account": data.get("account_id"), "campaign": data.get("campaign_id"),
            "assignedTo": data.get("assigned_to_id"),
            "expectedCloseDate": data.get("expected_close_date"),
        }
        key = tuple(values[m] for m in self.options.match)
        return None if all(v is None for v in key) else key

    def key_of(self, opp: Opportunity) -> tuple[Any, ...]:
        values = {
            "number": opp.number, "name": opp.name.casefold(),
            "account": to_global_id("Account", opp.account_id) if opp.account_id else None,
            "campaign": to_global_id("Campaign", opp.campaign_id) if opp.campaign_id else None,
            "assignedTo": to_global_id("User", opp.assigned_to_id),
            "expectedCloseDate": opp.expected_close_date,
        }
        return tuple(values[m] for m in self.options.match)

    async def prefetch_duplicates(self, batch: Sequence[tuple[int, list[str]]]) -> None:
        """Existing deals a batch's rows may match, by name or number (one query)."""
        if not self.options.match:
            return
        names, numbers = set(), set()
        for _, cells in batch:
            row = dict(zip(self.targets, cells, strict=False))
            if row.get("name"):
                names.add(row["name"].strip().casefold())
        column = "number" if "number" in self.options.match else None
        if column:
            numbers = {c.strip() for _, cells in batch for h, c in
                       zip(self.table.headers, cells, strict=False) if normalise(h) in
                       ("number", "opportunityno", "potentialno")}
        stmt = select(Opportunity).where(
            *opportunity.visible_conditions(self.viewer),
            or_(func.lower(Opportunity.name).in_(sorted(names)),
                Opportunity.number.in_(sorted(numbers))),
        )
        for opp in (await self.session.scalars(stmt)).all():
            self.seen.setdefault(self.key_of(opp), opp)

    async def row(self, line: int, cells: list[str]) -> None:
        number = None
        if "number" in self.options.match:
            for header, cell in zip(self.table.headers, cells, strict=False):
                if normalise(header) in ("number", "opportunityno", "potentialno"):
                    number = cell.strip() or None
        # A row is validated before it writes anything, except for the account it may create
        # first: only then does it need a savepoint (a flush each) to leave nothing behind.
        creates = self.options.create_missing_accounts and self._new_account_needed(cells)
        guard = self.session.begin_nested() if creates else nullcontext()
        try:
            async with guard:
                data, extra = await self.convert(cells)
                key = self.match_key(data, number)
                existing = self.seen.get(key) if key is not None else None
                if existing is not None and self.options.duplicates == "skip":
                    self.report.skipped += 1
                    return
                if existing is not None:
                    await self._overwrite(existing, data, extra)
                    self.report.updated += 1
                    return
                opp = await opportunity.create_opportunity(
                    self.session, self.viewer, data, root=("row",)
                )
                self._close_date(opp, extra)
                self.created.append(opp)
                if key is not None:
                    self.seen[key] = opp
                self.report.created += 1
        except CellError as bad:
            self._fail(line, cells, [Issue(line, bad.column, str(bad))])
        except ValidationFailed as refused:
            self._fail(line, cells, [self._issue(line, e) for e in refused.errors])

    async def _overwrite(
        self, existing: Opportunity, data: dict[str, Any], extra: dict[str, Any]
    ) -> None:
        if existing.id is None:
            await self.session.flush()
        before = {c: _jsonable(getattr(existing, c)) for c in SNAPSHOT}
        if self.options.duplicates == "merge":  # fill only what is empty
            data = {k: v for k, v in data.items() if _empty(existing, k)}
        opp = await opportunity.update_opportunity(
            self.session, self.viewer, to_global_id("Opportunity", existing.id), data,
            root=("row",),
        )
        self._close_date(opp, extra)
        self.items.append(
            {"kind": "OPPORTUNITY", "record_id": opp.id, "action": "UPDATED", "before": before}
        )

    @staticmethod
    def _close_date(opp: Opportunity, extra: dict[str, Any]) -> None:
        """A closed deal's historical close date, where the file gives one."""
        if extra.get("actual_close_date") and opp.actual_close_date is not None:
            opp.actual_close_date = extra["actual_close_date"]

    def _issue(self, line: int, error: FieldError) -> Issue:
        path = error.field or []
        name = path[1] if len(path) > 1 else None
        if name == "customFields" and len(path) > 2 and path[2].isdigit():
            return Issue(line, None, error.message)
        target = {"accountId": "account", "contactId": "contact", "campaignId": "campaign",
                  "assignedToId": "assignedTo"}.get(name or "", name)
        return Issue(line, self.header_of(target) if target else None, error.message)

    def _fail(self, line: int, cells: list[str], issues: list[Issue]) -> None:
        self.report.failed += 1
        self.report.errors.extend(issues)
        reason = "; ".join(f"{i.column}: {i.message}" if i.column else i.message for i in issues)
        self.failed.append((line, cells, reason))

    # batches -------------------------------------------------------------------------

    async def run_batch(self, batch: Sequence[tuple[int, list[str]]]) -> None:
        await self.prefetch(batch)
        await self.prefetch_duplicates(batch)
        await reserve_numbers(self.session, "Opportunity", len(batch))
        for line, cells in batch:
            await self.row(line, cells)
            self.report.processed += 1
        await assign_ids(self.session)
        await self.session.flush()

    def failed_csv(self) -> str | None:
        if not self.failed:
            return None
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([*self.table.headers, "line", "error"])
        for line, cells, reason in self.failed:
            writer.writerow([*cells, line, reason])
        return out.getvalue()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _empty(opp: Opportunity, field_name: str) -> bool:
    if field_name == "custom_fields":
        return True  # merged key by key by the rules: given keys only
    value = getattr(opp, field_name, None)
    return value is None or value == "" or (field_name == "amount" and value == 0)


Progress = Callable[[Report], Awaitable[None] | None]


async def import_opportunities(
    sessions: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    data: bytes,
    options: Options,
    filename: str = "",
    progress: Progress | None = None,
    job_id: int | None = None,
) -> Report:
    """Run an import. Without all-or-nothing or dry-run each batch is committed on its own,
    so an interrupted import leaves whole batches; failed rows are reported, not written."""
    table = read_table(data)
    single = options.dry_run or options.all_or_nothing
    async with sessions() as session:
        importer = Importer(session, viewer, options, table)
        report = importer.report
        report.job_id = job_id
        await begin_write(session)
        history.set_source(session, "IMPORT")
        await importer.plan()
        await importer.load_lookups()
        size = max(1, options.batch_size)
        for start in range(0, len(table.rows), size):
            await importer.run_batch(table.rows[start:start + size])
            if job_id is not None:
                await _record_items(session, job_id, importer)
            if not single:
                await session.commit()
                await begin_write(session)
            if progress is not None:
                result = progress(report)
                if result is not None:
                    await result
        keep = not options.dry_run and not (options.all_or_nothing and report.failed)
        if keep:
            await session.commit()
        else:
            await session.rollback()
            report.written = False
        report.failed_rows_csv = importer.failed_csv()
    return report


async def _record_items(session: AsyncSession, job_id: int, importer: Importer) -> None:
    rows = [
        {"job_id": job_id, "kind": "OPPORTUNITY", "record_id": opp.id, "action": "CREATED",
         "before": None}
        for opp in importer.created
    ] + [{"job_id": job_id, "before": None, **item} for item in importer.items]
    if rows:
        await session.execute(insert(ImportItem), rows)
    importer.created.clear()
    importer.items.clear()


# --- jobs and undo -----------------------------------------------------------------------


async def start_job(
    session: AsyncSession, viewer: Viewer, filename: str, options: Options, total: int = 0
) -> ImportJob:
    job = ImportJob(
        filename=filename, status="RUNNING", total=total, created_by_id=viewer.user.id,
        options={"dryRun": options.dry_run, "duplicates": options.duplicates,
                 "match": list(options.match), "createMissingAccounts":
                 options.create_missing_accounts, "allOrNothing": options.all_or_nothing},
    )
    session.add(job)
    await session.flush()
    return job


def finish_job(job: ImportJob, report: Report, status: str = "DONE") -> None:
    job.status = status
    job.total, job.processed = report.total, report.processed
    job.created, job.updated = report.created, report.updated
    job.skipped, job.failed = report.skipped, report.failed
    job.warnings = list(report.warnings)
    job.errors = [{"line": i.line, "column": i.column, "message": i.message}
                  for i in report.errors[:1000]]
    job.failed_rows_csv = report.failed_rows_csv
    job.finished_at = utcnow()


async def visible_job(session: AsyncSession, viewer: Viewer, job_id: int) -> ImportJob | None:
    job = await session.get(ImportJob, job_id)
    if job is None or not (viewer.is_admin or job.created_by_id == viewer.user.id):
        return None
    return job


async def undo_import(session: AsyncSession, viewer: Viewer, job_id: int) -> ImportJob:
    """Remove what the import created and restore what it overwrote."""
    job = await visible_job(session, viewer, job_id)
    problem = None
    if job is None:
        problem = FieldError(["input", "id"], f"No import {job_id}.", ErrorCode.NOT_FOUND)
    elif job.undone_at is not None or job.status != "DONE":
        problem = FieldError(["input", "id"], f"Import {job_id} cannot be undone "
                             f"({'already undone' if job.undone_at else job.status.lower()}).",
                             ErrorCode.INVALID)
    if problem:
        raise ValidationFailed([problem])
    assert job is not None
    items = (await session.scalars(
        select(ImportItem).where(ImportItem.job_id == job.id).order_by(ImportItem.id.desc())
    )).all()
    created = [i.record_id for i in items if i.kind == "OPPORTUNITY" and i.action == "CREATED"]
    for chunk in range(0, len(created), 500):
        ids = created[chunk:chunk + 500]
        await session.execute(delete(StageChange).where(StageChange.opportunity_id.in_(ids)))
        await session.execute(
            delete(OpportunityContact).where(OpportunityContact.opportunity_id.in_(ids))
        )
        await session.execute(delete(Opportunity).where(Opportunity.id.in_(ids)))
    for item in items:
        if item.kind == "OPPORTUNITY" and item.action == "UPDATED":
            await _restore(session, viewer, item.record_id, item.before or {})
    for item in items:
        if item.kind == "ACCOUNT" and item.action == "CREATED":
            used = await session.scalar(select(func.count()).select_from(Opportunity).where(
                Opportunity.account_id == item.record_id))
            if not used:
                await session.execute(delete(Account).where(Account.id == item.record_id))
    job.status, job.undone_at = "UNDONE", utcnow()
    await session.flush()
    return job


async def _restore(
    session: AsyncSession, viewer: Viewer, opp_id: int, before: dict[str, Any]
) -> None:
    opp = await session.get(Opportunity, opp_id)
    if opp is None:
        return
    history.remember(session, opp)
    for column, value in before.items():
        if column == "sales_stage":
            continue
        kind = Opportunity.__table__.c[column].type.python_type
        if value is not None and kind is Decimal:
            value = Decimal(value)
        elif value is not None and kind is dt.date:
            value = dt.date.fromisoformat(value)
        setattr(opp, column, value)
    stage = await session.get(SalesStage, before.get("sales_stage"))
    if stage is not None:
        actual = opp.actual_close_date
        opportunity.apply_stage(session, opp, stage, viewer.user,
                                note="Import undone")
        opp.actual_close_date = actual
    opportunity.touch(session, opp, True, viewer.user, "UNDO")
