"""The import itself: options, the report, and the importer that puts every row through
the rules of the mutations, a batch at a time."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import ColumnElement, exists, func, insert, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import MANYTOONE, Session

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
    StageChange,
    User,
)
from models.base import Base
from resolvers import customization, editing, events, history, opportunity
from resolvers.csv_fields import COLUMNS, HEADERS, VTENEXT_VALUES, is_none, normalise
from resolvers.errors import FieldError, ValidationFailed
from resolvers.ids import to_global_id
from resolvers.importing.reading import (
    Table,
    UnusableInput,
    _cents,
    decimal_comma_of,
    parse_bool,
    parse_date,
    parse_number,
    read_table,
)
from resolvers.kinds import owned
from resolvers.numbering import reserve_numbers
from resolvers.permissions import Viewer
from resolvers.tx import _next_ids, assign_ids, begin_write
from resolvers.validation import all_stages, remember

MATCHABLE = ("number", "name", "account", "campaign", "assignedTo", "expectedCloseDate")
DUPLICATE_MODES = ("skip", "overwrite", "merge")
# The lost reason of a lost deal read from a file that has no lost-reason column.
NO_LOST_REASON = "Not given (imported from a file without a lost reason)"
ERROR_COLUMN = "Import error"  # the extra column of the failed-rows CSV, ignored on re-import
# Snapshot of an overwritten deal, restored by undo.
SNAPSHOT = (
    "name", "amount", "currency", "account_id", "campaign_id", "expected_close_date",
    "actual_close_date", "type", "next_step", "lead_source", "sales_stage", "probability",
    "probability_is_manual", "lost_reason", "assigned_to_id", "description", "custom_fields",
)
# Field keys a column (or a mapping) may feed.
WRITABLE = tuple(c.key for c in COLUMNS if not c.read_only)


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    duplicates: str = "skip"  # skip | overwrite | merge (with `match`)
    match: tuple[str, ...] = ()
    create_missing_accounts: bool = False
    mapping: dict[str, str | None] = field(default_factory=dict)  # header -> field (None: ignore)
    all_or_nothing: bool = False
    batch_size: int = 1000

    def problems(self) -> list[tuple[str, str]]:
        """What is wrong with the options themselves, as (option, message): the caller
        refuses them up front."""
        found = []
        if self.duplicates not in DUPLICATE_MODES:
            found.append(("duplicates", f"duplicates must be one of "
                          f"{', '.join(DUPLICATE_MODES)}; got {self.duplicates!r}"))
        unknown = [m for m in self.match if m not in MATCHABLE]
        if unknown:
            found.append(("match", f"cannot match on {', '.join(map(repr, unknown))}; "
                          f"match on {', '.join(MATCHABLE)}"))
        if self.duplicates != "skip" and not self.match:
            found.append(("match", f"duplicates {self.duplicates} needs the fields to "
                          "match on"))
        if self.batch_size < 1:
            found.append(("batchSize", "the batch size must be at least 1"))
        return found

    def check(self) -> None:
        problems = self.problems()
        if problems:
            message = "; ".join(m for _, m in problems)
            raise UnusableInput(message[:1].upper() + message[1:] + ".", problems[0][0])


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
    """Cells of a row that cannot be read: (column, reason) of each."""

    def __init__(
        self, column: str | None, message: str, more: Sequence[tuple[str | None, str]] = ()
    ) -> None:
        super().__init__(message)
        self.problems = [(column, message), *more]


@dataclass
class Lookups:
    """Per-file knowledge: picklist labels, people, and per-batch references by natural key."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)  # picklist -> norm -> key
    users: dict[str, User] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)


@lru_cache(maxsize=65_536)
def _gid(type_name: str, pk: int) -> str:
    """The global id of a referenced record (the same few, row after row)."""
    return to_global_id(type_name, pk)


# vtiger and vtenext export a reference that may point into several modules ("Related To",
# "Campaign Source") as "Module::::Name".
MODULES = {"accounts": "account", "contacts": "contact", "campaigns": "campaign"}
_A = {"account": "an account", "campaign": "a campaign", "contact": "a contact"}


def related(target: str, text: str) -> tuple[str | None, str]:
    """Which kind of record a reference cell names, and its name: `Accounts::::Alfa` in
    the account column is the account Alfa, `Contacts::::Anna Bianchi` there (vtenext's
    "Collegato a" of a deal with a person) the contact; a module that is none of those
    gives None."""
    module, separator, name = text.strip().partition("::::")
    if not separator:
        return target, text.strip()
    kind = MODULES.get(module.strip().casefold())
    if kind == "contact" and target == "account" or kind == target:
        return kind, name.strip()
    return None, name.strip()


def _fold(text: str) -> str:
    """The natural-key form of a name: trimmed, case-insensitive, inner spaces collapsed."""
    return " ".join(text.split()).casefold()


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
        self.number_index: int | None = None
        self.custom: dict[str, CustomFieldDefinition] = {}
        self.seen: dict[tuple[Any, ...], Opportunity] = {}
        self.created: list[Opportunity] = []
        self.items: list[dict[str, Any]] = []
        self.failed: list[tuple[int, list[str], str]] = []
        self.row_custom: list[str] = []  # the custom keys of the current row, in order

    # columns -----------------------------------------------------------------------

    async def plan(self) -> None:
        """Which field each header feeds; unknown and read-only headers are warned about."""
        if not self.table.headers:
            raise UnusableInput("The file has no header row.")
        defs = await customization.definitions(self.session, "OPPORTUNITY")
        self.custom = {d.key: d for d in defs}
        by_label = {normalise(d.label): d.key for d in defs}
        mapping = {normalise(k): self._mapped(k, v, by_label)
                   for k, v in self.options.mapping.items()}
        present = {normalise(h) for h in self.table.headers}
        for header in self.options.mapping:
            if normalise(header) not in present:
                self.report.warnings.append(
                    f"The mapping names column {header!r}, which the file does not have."
                )
        used: set[str] = set()
        for index, header in enumerate(self.table.headers):
            norm = normalise(header)
            target: str | None
            if norm in mapping:
                target = mapping[norm]
            elif norm == normalise(ERROR_COLUMN):
                target = None  # a failed-rows file being imported again
            elif norm in HEADERS:
                column = HEADERS[norm]
                target = None if column.read_only else column.key
                if column.key == "number":
                    target = "number"
                elif column.read_only:
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
            if target == "number":
                self.number_index = index
                if "number" not in self.options.match:
                    self.report.warnings.append(
                        f"Column {header!r} is read-only (numbers are given on create); ignored."
                    )
                target = None
            self.targets.append(target)
        if not used:
            raise UnusableInput(
                "No column of the file is an opportunity field (headers: "
                f"{', '.join(map(repr, self.table.headers[:12]))}); name them like an export "
                "does, or give a mapping."
            )
        if "number" in self.options.match and self.number_index is None:
            raise UnusableInput(
                "Matching on number needs a number column (Opportunity No).", "match"
            )
        if "name" not in used:
            self.report.warnings.append("No column holds the opportunity name.")
        self.decimal_comma = decimal_comma_of(self._numeric_cells(), self.decimal_comma)

    def _mapped(self, header: str, value: str | None, by_label: dict[str, str]) -> str | None:
        """The field a mapping sends a header to (None or "" ignores the column)."""
        if value is None or not str(value).strip():
            return None
        value = str(value).strip()
        if value in WRITABLE or value in self.custom or value == "number":
            return value
        column = HEADERS.get(normalise(value))
        if column is not None and (not column.read_only or column.key == "number"):
            return column.key
        if normalise(value) in by_label:
            return by_label[normalise(value)]
        raise UnusableInput(
            f"The mapping sends column {header!r} to {value!r}, which is not a field; "
            f"fields: {', '.join([*WRITABLE, *self.custom])} (or null to ignore the column).",
            "mapping",
        )

    def _numeric_cells(self) -> list[str]:
        numeric = {"amount", "probability"} | {
            k for k, d in self.custom.items() if d.type in ("DECIMAL", "CURRENCY", "PERCENT")
        }
        columns = [i for i, t in enumerate(self.targets) if t in numeric]
        return [cells[i] for _, cells in self.table.rows for i in columns
                if i < len(cells) and cells[i].strip()]

    async def load_lookups(self) -> None:
        rows = await self.session.execute(select(PicklistValue.picklist, PicklistValue.key,
                                                 PicklistValue.label))
        for name, key, label in rows:
            known = self.lookups.values.setdefault(name, {})
            known[normalise(key)] = known[normalise(label)] = key
        for stage in (await all_stages(self.session)).values():
            known = self.lookups.values.setdefault("salesStage", {})
            known[normalise(stage.key)] = known[normalise(stage.name)] = stage.key
        for name, by_key in VTENEXT_VALUES.items():
            known = self.lookups.values.setdefault(name, {})
            for key, labels in by_key.items():
                for label in labels:
                    known.setdefault(normalise(label), key)
        users = (await self.session.scalars(select(User).order_by(User.id))).all()
        for user in users:  # a username wins over someone's full name or email
            self.lookups.users.setdefault(_fold(user.username), user)
        for user in users:
            self.lookups.users.setdefault(_fold(user.full_name), user)
            if user.email:
                self.lookups.users.setdefault(_fold(user.email), user)
        remember(self.session, "User", users)

    async def prefetch(self, batch: Sequence[tuple[int, list[str]]]) -> None:
        """References of a batch by natural key, one query per kind."""
        wanted: dict[str, set[str]] = {"account": set(), "campaign": set(), "contact": set()}
        typed: dict[str, set[str]] = {"account": set(), "campaign": set(), "contact": set()}
        for _, cells in batch:
            for target, cell in zip(self.targets, cells, strict=False):
                if target not in wanted or not cell.strip():
                    continue
                kind, name = related(target, cell)
                if kind in wanted and name and _fold(name) not in wanted[kind]:
                    wanted[kind].add(_fold(name))
                    typed[kind].add(" ".join(name.split()))
        lookups, viewer = self.lookups, self.viewer
        # By lower() and as typed: SQLite's lower() leaves non-ASCII capitals (À) alone.
        if wanted["account"] - lookups.accounts.keys():
            names = sorted(wanted["account"] - lookups.accounts.keys())
            stmt = (
                select(Account)
                .where(or_(func.lower(Account.name).in_(names),
                           Account.name.in_(sorted(typed["account"]))),
                       *owned(Account, viewer))
                .order_by(Account.created_at, Account.id)
            )
            found = (await self.session.scalars(stmt)).all()
            for account in found:  # the oldest of namesakes, as lead conversion does
                lookups.accounts.setdefault(_fold(account.name), account)
            remember(self.session, "Account", found)
        if wanted["campaign"] - lookups.campaigns.keys():
            names = sorted(wanted["campaign"] - lookups.campaigns.keys())
            by_name = select(Campaign).where(
                or_(func.lower(Campaign.name).in_(names),
                    Campaign.name.in_(sorted(typed["campaign"]))),
                Campaign.deleted_at.is_(None),
            ).order_by(Campaign.id)
            found_campaigns = (await self.session.scalars(by_name)).all()
            for campaign in found_campaigns:
                lookups.campaigns.setdefault(_fold(campaign.name), campaign)
            remember(self.session, "Campaign", found_campaigns)
        if wanted["contact"] - lookups.contacts.keys():
            keys = sorted(wanted["contact"] - lookups.contacts.keys())
            full = func.lower(func.coalesce(Contact.first_name, "") + " " + Contact.last_name)
            by_key = select(Contact).where(
                or_(func.lower(Contact.email).in_(keys), full.in_(keys),
                    func.lower(Contact.last_name).in_(keys)),
                *owned(Contact, viewer),
            ).order_by(Contact.id)
            found_contacts = (await self.session.scalars(by_key)).all()
            for contact in found_contacts:
                for key in (contact.email, f"{contact.first_name or ''} {contact.last_name}",
                            contact.last_name):
                    if key and key.strip():
                        lookups.contacts.setdefault(_fold(key), contact)
            remember(self.session, "Contact", found_contacts)

    # one row -------------------------------------------------------------------------

    def _cells(self, cells: list[str]) -> dict[str, str]:
        """A row's cells by target, trimmed; vtiger's "--None--" (vtenext's "--Nessuno--")
        is an empty cell."""
        return {t: "" if is_none(c) else c.strip()
                for t, c in zip(self.targets, cells, strict=False) if t}

    def header_of(self, target: str) -> str:
        for header, t in zip(self.table.headers, self.targets, strict=True):
            if t == target:
                return header
        return target

    async def convert(
        self, cells: list[str]
    ) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str | None, str]]]:
        """The row as mutation input, the import-only extras (actualCloseDate, an account to
        create), and the cells that cannot be read (column, reason): every one of them."""
        data: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        raw = self._cells(cells)
        custom: list[tuple[str, Any]] = []
        self.row_custom = []
        problems: list[tuple[str | None, str]] = []
        for target, text in raw.items():
            if not text:
                continue
            try:
                await self._cell(target, text, data, extra, custom)
            except CellError as bad:
                problems += bad.problems
            except ValueError as bad:
                problems.append((self.header_of(target), str(bad)))
        if custom:
            data["custom_fields"] = custom
            self.row_custom = [key for key, _ in custom]
        manual = extra.pop("probability_is_manual", None)
        stage = (await all_stages(self.session)).get(data.get("sales_stage") or "")
        if "probability" in data:
            default = stage.probability if stage else None
            closed = stage is not None and stage.is_closed  # the close forces its own figure
            if closed or manual is False or (manual is None and data["probability"] == default):
                del data["probability"]
        if stage is not None and stage.is_closed and not stage.is_won and (
            "lostReason" not in self.targets  # vtiger's and vtenext's exports have none
        ):
            data["lost_reason"] = NO_LOST_REASON
        return data, extra, problems

    async def _cell(
        self, target: str, text: str, data: dict[str, Any], extra: dict[str, Any],
        custom: list[tuple[str, Any]],
    ) -> None:
        lookups = self.lookups
        if target in ("name", "nextStep", "description", "lostReason"):
            data[{"nextStep": "next_step", "lostReason": "lost_reason"}.get(target, target)] = text
        elif target == "amount":
            data["amount"] = _cents(parse_number(text, self.decimal_comma))
        elif target == "probability":
            data["probability"] = _cents(parse_number(text, self.decimal_comma))
        elif target == "probabilityIsManual":
            extra["probability_is_manual"] = parse_bool(text)
        elif target == "currency":
            data["currency"] = text
        elif target in ("expectedCloseDate", "actualCloseDate"):
            column = "expected_close_date" if target == "expectedCloseDate" else "actual_close_date"
            data[column] = parse_date(text)
        elif target in ("salesStage", "type", "leadSource"):
            picklist = {"type": "opportunityType"}.get(target, target)
            key = lookups.values.get(picklist, {}).get(normalise(text), text)
            names = {"salesStage": "sales_stage", "leadSource": "lead_source"}
            data[names.get(target, target)] = key
        elif target == "assignedTo":
            user = lookups.users.get(_fold(text))
            if user is None:
                raise CellError(self.header_of(target), f"No user {text!r}.")
            data["assigned_to_id"] = _gid("User", user.id)
        elif target in ("account", "campaign", "contact"):
            kind, name = related(target, text)
            if kind is None:
                raise ValueError(f"{text!r} is not {_A[target]}")
            self._reference(kind, name, self.header_of(target), data, extra)
        elif target in self.custom:
            custom.append((target, self._custom_value(self.custom[target], text)))

    def _reference(
        self, target: str, text: str, header: str, data: dict[str, Any],
        extra: dict[str, Any],
    ) -> None:
        """An account, campaign or contact by its natural key (in the column `header`)."""
        lookups = self.lookups
        if target == "account":
            account = lookups.accounts.get(_fold(text))
            if account is not None:
                data["account_id"] = _gid("Account", account.id)
            elif self.options.create_missing_accounts:
                extra["new_account"] = " ".join(text.split())  # created once the row is kept
            else:
                raise CellError(header, f"No account named {text!r} "
                                "(use --create-missing-accounts to create it).")
        elif target == "campaign":
            campaign = lookups.campaigns.get(_fold(text))
            if campaign is None:
                raise CellError(header, f"No campaign named {text!r}.")
            data["campaign_id"] = _gid("Campaign", campaign.id)
        elif target == "contact":
            contact = lookups.contacts.get(_fold(text))
            if contact is None:
                raise CellError(header, f"No contact {text!r}.")
            data["contact_id"] = _gid("Contact", contact.id)

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

    async def _new_account(self, name: str) -> Account:
        try:
            account: Account = await editing.create_record(
                self.session, self.viewer, "Account", {"name": name}, root=("account",)
            )
        except ValidationFailed as refused:
            reasons = "; ".join(e.message for e in refused.errors)
            raise CellError(self.header_of("account"),
                            f"Cannot create account {name!r}: {reasons}") from None
        self.lookups.accounts[_fold(name)] = account
        remember(self.session, "Account", [account])
        self.items.append({"kind": "ACCOUNT", "record_id": account.id, "action": "CREATED"})
        return account

    def _match_values(self, data: dict[str, Any], number: str | None) -> dict[str, Any]:
        return {
            "number": number, "name": _fold(data.get("name") or "") or None,
            "account": data.get("account_id"), "campaign": data.get("campaign_id"),
            # a row without an assignee creates a deal of the importing user
            "assignedTo": data.get("assigned_to_id") or to_global_id("User", self.viewer.user.id),
            "expectedCloseDate": data.get("expected_close_date"),
        }

    def match_key(self, data: dict[str, Any], number: str | None) -> tuple[Any, ...] | None:
        if not self.options.match:
            return None
        values = self._match_values(data, number)
        key = tuple(values[m] for m in self.options.match)
        return None if all(v is None for v in key) else key

    def key_of(self, opp: Opportunity) -> tuple[Any, ...]:
        values = {
            "number": opp.number, "name": _fold(opp.name),
            "account": to_global_id("Account", opp.account_id) if opp.account_id else None,
            "campaign": to_global_id("Campaign", opp.campaign_id) if opp.campaign_id else None,
            "assignedTo": to_global_id("User", opp.assigned_to_id),
            "expectedCloseDate": opp.expected_close_date,
        }
        return tuple(values[m] for m in self.options.match)

    def _number_of(self, cells: list[str]) -> str | None:
        i = self.number_index
        return cells[i].strip() or None if i is not None and i < len(cells) else None

    async def prefetch_duplicates(self, batch: Sequence[tuple[int, list[str]]]) -> None:
        """Existing deals a batch's rows may match (one query, on the most selective of
        the match fields the rows give); the full key is compared in Python."""
        if not self.options.match:
            return
        raw: dict[str, set[Any]] = {m: set() for m in self.options.match}
        for _, cells in batch:
            row = self._cells(cells)
            for target in ("account", "campaign"):
                kind, name = related(target, row.get(target, ""))
                row[target] = name if kind == target else ""
            given = {
                "number": self._number_of(cells),
                "name": _fold(row.get("name", "")) or None,
                "account": getattr(self.lookups.accounts.get(_fold(row.get("account", ""))),
                                   "id", None),
                "campaign": getattr(self.lookups.campaigns.get(_fold(row.get("campaign", ""))),
                                    "id", None),
                "assignedTo": getattr(self.lookups.users.get(_fold(row.get("assignedTo", ""))),
                                      "id", None) or self.viewer.user.id,
                "expectedCloseDate": _date_or_none(row.get("expectedCloseDate", "")),
            }
            for m in raw:
                raw[m].add(given[m])
        columns = {
            "number": Opportunity.number, "name": func.lower(Opportunity.name),
            "account": Opportunity.account_id, "campaign": Opportunity.campaign_id,
            "assignedTo": Opportunity.assigned_to_id,
            "expectedCloseDate": Opportunity.expected_close_date,
        }
        order = ("number", "name", "account", "campaign", "expectedCloseDate", "assignedTo")
        field_name = next(m for m in order if m in raw)
        values = raw[field_name]
        known = sorted(v for v in values if v is not None)
        column = columns[field_name]
        condition: ColumnElement[bool] = column.in_(known)
        if None in values:
            condition = or_(condition, column.is_(None))
        stmt = select(Opportunity).where(*owned(Opportunity, self.viewer), condition)
        stmt = stmt.order_by(Opportunity.id)
        for opp in (await self.session.scalars(stmt)).all():
            self.seen.setdefault(self.key_of(opp), opp)

    async def row(self, line: int, cells: list[str]) -> None:
        try:
            extra_cells = cells[len(self.table.headers):]
            if any(c.strip() for c in extra_cells):
                raise CellError(None, f"The row has {len(cells)} cells but the header "
                                f"{len(self.table.headers)}: quote values that hold the "
                                f"delimiter {self.table.delimiter!r}.")
            data, extra, unreadable = await self.convert(cells)
            key = self.match_key(data, self._number_of(cells))
            existing = self.seen.get(key) if key is not None else None
            if unreadable:
                await self._fail_all(line, cells, unreadable, existing, data)
                return
            if existing is not None and self.options.duplicates == "skip":
                self.report.skipped += 1
                return
            new_account = extra.pop("new_account", None)
            if new_account is None:
                await self._write(existing, key, data, extra)
                return
            # The row creates its account first: a savepoint takes the account back if the
            # row is then refused. (The batch so far is written first, in bulk: the savepoint
            # would flush it row by row.)
            await self.write_pending()
            async with self.session.begin_nested():
                account = await self._new_account(new_account)
                data["account_id"] = _gid("Account", account.id)
                try:
                    await self._write(existing, key, data, extra)
                except (CellError, ValidationFailed):
                    del self.lookups.accounts[_fold(new_account)]
                    self.items.pop()
                    raise
        except CellError as bad:
            self._fail(line, cells, [Issue(line, column, why) for column, why in bad.problems])
        except ValidationFailed as refused:
            self._fail(line, cells, [self._issue(line, e) for e in refused.errors])

    async def _fail_all(
        self, line: int, cells: list[str], unreadable: list[tuple[str | None, str]],
        existing: Opportunity | None, data: dict[str, Any],
    ) -> None:
        """Fail a row with unreadable cells, reporting with them what the rules say of the
        cells that can be read: every problem of the row at once.

        The rule function (create or update, as the row would be written) runs on the
        readable cells with the expected close date withheld: the rules refuse a deal
        without one (before they change anything), so this writes nothing."""
        updating = existing is not None and self.options.duplicates != "skip"
        probe = {**data, "expected_close_date": None}
        refused: list[FieldError] = []
        try:
            if updating:
                assert existing is not None
                if existing.id is None:  # created earlier in this batch
                    await self.write_pending()
                await opportunity.update_opportunity(
                    self.session, self.viewer, to_global_id("Opportunity", existing.id), probe,
                    root=("row",),
                )
            else:
                await opportunity.create_opportunity(self.session, self.viewer, probe,
                                                     root=("row",))
        except ValidationFailed as rules:
            refused = rules.errors
        else:  # pragma: no cover - the rules require an expected close date
            raise AssertionError("the rules took a deal without an expected close date")
        withheld = updating or "expected_close_date" in data
        issues = [Issue(line, column, why) for column, why in unreadable]
        columns = {column for column, _ in unreadable}
        for error in refused:
            if withheld and error.field == ["row", "expectedCloseDate"]:
                continue
            issue = self._issue(line, error)
            if issue.column not in columns:  # an unreadable cell already says it
                issues.append(issue)
        order = {header: i for i, header in enumerate(self.table.headers)}
        issues.sort(key=lambda i: order.get(i.column or "", -1))
        self._fail(line, cells, issues)

    async def _write(
        self, existing: Opportunity | None, key: tuple[Any, ...] | None, data: dict[str, Any],
        extra: dict[str, Any],
    ) -> None:
        if existing is not None:
            if await self._overwrite(existing, data, extra):
                self.report.updated += 1
            else:
                self.report.skipped += 1  # nothing to change (a merge with nothing to fill)
            return
        opp = await opportunity.create_opportunity(self.session, self.viewer, data, root=("row",))
        self.created.append(opp)
        if key is not None:
            self.seen[key] = opp
        self.report.created += 1

    async def _overwrite(
        self, existing: Opportunity, data: dict[str, Any], extra: dict[str, Any]
    ) -> bool:
        """Overwrite (or merge into) an existing deal; whether anything changed."""
        if existing.id is None:  # created earlier in this batch
            await self.write_pending()
        gid = to_global_id("Opportunity", existing.id)
        current = await opportunity.load_for_edit(self.session, self.viewer, gid)
        if data.get("lost_reason") == NO_LOST_REASON and current.lost_reason:
            del data["lost_reason"]  # the deal's own reason stays
        before = {c: _jsonable(getattr(current, c)) for c in SNAPSHOT}
        version = current.version
        if self.options.duplicates == "merge":  # fill only what is empty
            if "contact_id" in data and await self._has_primary_contact(current):
                del data["contact_id"]
            data = {k: v for k, v in data.items() if _empty(current, k)}
            if "custom_fields" in data:
                stored = current.custom_fields or {}
                data["custom_fields"] = [(k, v) for k, v in data["custom_fields"]
                                         if stored.get(k) is None]
                self.row_custom = [k for k, _ in data["custom_fields"]]
                if not data["custom_fields"]:
                    del data["custom_fields"]
        opp = await opportunity.update_opportunity(
            self.session, self.viewer, gid, data, root=("row",)
        )
        if opp.version == version and not self.session.is_modified(opp):
            return False
        self.items.append(
            {"kind": "OPPORTUNITY", "record_id": opp.id, "action": "UPDATED", "before": before}
        )
        return True

    async def _has_primary_contact(self, opp: Opportunity) -> bool:
        stmt = select(exists().where(OpportunityContact.opportunity_id == opp.id,
                                     OpportunityContact.is_primary.is_(True)))
        return bool(await self.session.scalar(stmt))

    def _issue(self, line: int, error: FieldError) -> Issue:
        path = error.field or []
        name = path[1] if len(path) > 1 else None
        if path[:1] == ["account"]:  # the account the row would create
            return Issue(line, self.header_of("account"), error.message)
        if name == "customFields":
            index = path[2] if len(path) > 2 else ""
            if index.isdigit() and int(index) < len(self.row_custom):
                return Issue(line, self.header_of(self.row_custom[int(index)]), error.message)
            keys = [k for k in self.custom if f"({k})" in error.message]
            return Issue(line, self.header_of(keys[0]) if keys else None, error.message)
        target = {"accountId": "account", "contactId": "contact", "campaignId": "campaign",
                  "assignedToId": "assignedTo"}.get(name or "", name)
        return Issue(line, self.header_of(target) if target else None, error.message)

    def _fail(self, line: int, cells: list[str], issues: list[Issue]) -> None:
        self.report.failed += 1
        self.report.errors.extend(issues)
        self.failed.append((line, cells, _reason(line, issues)))

    # batches -------------------------------------------------------------------------

    async def run_batch(self, batch: Sequence[tuple[int, list[str]]]) -> None:
        await self.prefetch(batch)
        await self.prefetch_duplicates(batch)
        await reserve_numbers(self.session, "Opportunity", len(batch))
        for line, cells in batch:
            await self.row(line, cells)
            self.report.processed += 1
        await self.write_pending()

    async def write_pending(self) -> None:
        """Write the batch's new deals, their stage changes and contact links (kept aside by
        the import's session): keys assigned in bulk, then one executemany per table, in
        dependency order; the unit of work would spend more time on them than the database."""
        if self.session.new:  # whatever else the rules added goes the usual way
            await assign_ids(self.session)
            await self.session.flush()
        bulk: list[Any] = self.session.sync_session.bulk  # type: ignore[attr-defined]
        if not bulk:
            return
        by_table: dict[Any, list[Any]] = {}
        for obj in bulk:
            by_table.setdefault(type(obj).__table__, []).append(obj)
        tables = [t for t in Base.metadata.sorted_tables if t in by_table]
        with self.session.no_autoflush:
            for table in tables:
                missing = [obj for obj in by_table[table]
                           if "id" in table.c and getattr(obj, "id", None) is None]
                if missing:
                    ids = await _next_ids(self.session, table, len(missing))
                    for obj, pk in zip(missing, ids, strict=True):
                        obj.id = pk
            for table in tables:
                rows = _same_keys(table, [_row_of(obj) for obj in by_table[table]])
                await self.session.execute(insert(table), rows)
        bulk.clear()
        # What the session holds (people, accounts, overwritten deals) is only read from
        # here on: letting it go keeps a long import's memory flat.
        self.session.expunge_all()

    def carry_on(self, before: Report) -> int:
        """Take over what an earlier, interrupted run of the job reported (its failed rows
        again from the file, by line); the index of the first row it did not process."""
        report = self.report
        report.processed, report.created = before.processed, before.created
        report.updated, report.skipped = before.updated, before.skipped
        report.failed = before.failed
        report.warnings = [*before.warnings,
                           *(w for w in report.warnings if w not in before.warnings)]
        report.errors = list(before.errors)
        cells = dict(self.table.rows[:before.processed])
        reasons: dict[int, list[Issue]] = {}
        for issue in before.errors:
            reasons.setdefault(issue.line, []).append(issue)
        for line, issues in reasons.items():
            if line in cells:
                self.failed.append((line, cells[line], _reason(line, issues)))
        return before.processed

    def failed_csv(self) -> str | None:
        """The failed rows as they were read, with an error column: fix them, import again."""
        if not self.failed:
            return None
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.table.delimiter, lineterminator="\r\n")
        width = len(self.table.headers)
        writer.writerow([*self.table.headers, ERROR_COLUMN])
        for _line, cells, reason in self.failed:
            padded = [*cells[:width], *[""] * (width - len(cells))]
            writer.writerow([*padded, reason])
        return out.getvalue()


BULK = (Opportunity, StageChange, OpportunityContact)


class ImportSession(Session):
    """The import's session. While `bulk` is a list, the new deals the rules add, with their
    stage changes and contact links, are kept there, outside the unit of work, for
    write_pending to insert in bulk; everything else (changes to existing deals included)
    is added as usual."""

    bulk: list[Any] | None = None

    def add(self, instance: object, *, _warn: bool = True) -> None:
        if self.bulk is not None and type(instance) in BULK:
            deal = instance.__dict__.get("opportunity", instance)
            if sa_inspect(instance).transient and sa_inspect(deal).transient:
                self.bulk.append(instance)
                return
        super().add(instance, _warn=_warn)


@cache
def _layout(cls: Any) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, str], ...]]:
    """(attribute, column) of a class's columns; (relation, local column, remote attribute)
    of its many-to-one links."""
    mapper: Any = sa_inspect(cls)
    columns = tuple((p.key, p.columns[0].name) for p in mapper.column_attrs)
    links = tuple(
        (relation.key, local.name, remote.key)
        for relation in mapper.relationships if relation.direction is MANYTOONE
        for local, remote in relation.local_remote_pairs
    )
    return columns, links


def _row_of(obj: Any) -> dict[str, Any]:
    """A new object's column values, its many-to-one links as foreign keys."""
    columns, links = _layout(obj.__class__)
    state = obj.__dict__
    row = {column: state[key] for key, column in columns if key in state}
    for relation, local, remote in links:
        target = state.get(relation)
        if target is not None:
            row[local] = getattr(target, remote)
    return row


def _same_keys(table: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One executemany needs the same keys in every row: a missing one gets its default."""
    keys = set().union(*rows)
    if all(len(row) == len(keys) for row in rows):
        return rows
    for row in rows:
        for key in keys - row.keys():
            default = table.c[key].default
            if default is None:
                row[key] = None
            else:
                row[key] = default.arg(None) if default.is_callable else default.arg
    return rows


def _reason(line: int, issues: Sequence[Issue]) -> str:
    """The failed-rows file's error cell of a row."""
    reason = "; ".join(f"{i.column}: {i.message}" if i.column else i.message for i in issues)
    return f"line {line}: {reason}"


def _date_or_none(text: str) -> dt.date | None:
    try:
        return parse_date(text) if text else None
    except ValueError:
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _empty(opp: Opportunity, field_name: str) -> bool:
    if field_name in ("custom_fields", "contact_id"):
        return True  # decided by the caller
    value = getattr(opp, field_name, None)
    return value is None or value == "" or (field_name == "amount" and value == 0)


Progress = Callable[[Report], Awaitable[None] | None]


async def import_opportunities(
    sessions: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    data: bytes | Table,
    options: Options,
    filename: str = "",
    progress: Progress | None = None,
    job_id: int | None = None,
    resumed: Report | None = None,
) -> Report:
    """Run an import. Without all-or-nothing or dry-run each batch is committed on its own
    (with the job's progress), so an interrupted import leaves whole batches; failed rows
    are reported, not written. Raises UnusableInput when the file cannot be imported.

    `resumed`: what an interrupted run of the job committed; the rows it processed are not
    read again, and its counts, warnings and errors carry on."""
    options.check()
    table = data if isinstance(data, Table) else read_table(data)
    single = options.dry_run or options.all_or_nothing
    async with sessions(sync_session_class=ImportSession) as session:
        session.sync_session.bulk = []  # type: ignore[attr-defined]
        importer = Importer(session, viewer, options, table)
        report = importer.report
        report.job_id = job_id
        await begin_write(session)
        history.set_source(session, "IMPORT")  # the field history of overwritten deals
        await importer.plan()
        await importer.load_lookups()
        first = importer.carry_on(resumed) if resumed is not None else 0
        await _notify(progress, report)
        size = max(1, options.batch_size)
        for start in range(first, len(table.rows), size):
            await importer.run_batch(table.rows[start:start + size])
            if job_id is not None:
                await _record_items(session, job_id, importer)
            if not single:
                if job_id is not None:
                    await _record_progress(session, job_id, report)
                await events.commit(session)  # publishes the batch's deal events
                await begin_write(session)
            await _notify(progress, report)
        keep = not options.dry_run and not (options.all_or_nothing and report.failed)
        if keep:
            await events.commit(session)
        else:
            events.discard(session)
            await session.rollback()
            report.written = False
        report.failed_rows_csv = importer.failed_csv()
    return report


async def preflight(
    session: AsyncSession, viewer: Viewer, table: Table, options: Options
) -> list[str]:
    """Refuse an unusable file or options before a job is created (UnusableInput); the
    warnings about its columns otherwise."""
    options.check()
    importer = Importer(session, viewer, options, table)
    await importer.plan()
    return importer.report.warnings


async def _notify(progress: Progress | None, report: Report) -> None:
    if progress is not None:
        result = progress(report)
        if result is not None:
            await result


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


async def _record_progress(session: AsyncSession, job_id: int, report: Report) -> None:
    """The job's counters, warnings and errors, committed with the batch they count (what
    a resumed job carries on from)."""
    await session.execute(
        update(ImportJob).where(ImportJob.id == job_id).values(
            total=report.total, processed=report.processed, created=report.created,
            updated=report.updated, skipped=report.skipped, failed=report.failed,
            warnings=list(report.warnings), errors=_errors_json(report),
        )
    )


def _errors_json(report: Report) -> list[dict[str, Any]]:
    return [{"line": i.line, "column": i.column, "message": i.message}
            for i in report.errors[:MAX_ERRORS]]


MAX_ERRORS = 1000  # errors a job keeps
