"""Lead conversion (vtiger's ConvertLead): a lead becomes an account, a contact and a deal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Account, Contact, Lead, Opportunity
from models.base import utcnow
from resolvers import customization, editing, links, opportunity
from resolvers.errors import ErrorCode, FieldError, ValidationFailed
from resolvers.ids import to_global_id
from resolvers.kinds import owned
from resolvers.permissions import Viewer
from resolvers.validation import Checker


@dataclass
class Conversion:
    lead: Lead
    account: Account | None
    contact: Contact | None
    opportunity: Opportunity | None


def _already_converted(lead: Lead) -> ValidationFailed:
    return ValidationFailed(
        [FieldError(["input", "leadId"], f"Lead {lead.number} was already converted.",
                    ErrorCode.ALREADY_CONVERTED)]
    )


async def _reusable_account(session: AsyncSession, viewer: Viewer, name: str) -> Account | None:
    """The oldest visible account with this name (case-insensitive)."""
    stmt = (
        select(Account)
        .where(
            func.lower(Account.name) == name.lower(), *owned(Account, viewer),
        )
        .order_by(Account.created_at, Account.id)
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


def _merged(mapped: list[tuple[str, Any]], given: list[Any] | None) -> list[tuple[str, Any]]:
    explicit = [(item.key, item.value) for item in given or []]
    keys = {key for key, _ in explicit}
    return [*explicit, *((k, v) for k, v in mapped if k not in keys)]


async def _mapped_values(session: AsyncSession, lead: Lead) -> dict[str, list[tuple[str, Any]]]:
    """The lead's custom values that its field definitions map onto the created records
    (a target field deactivated since takes no new values: it is skipped)."""
    mapped: dict[str, list[tuple[str, Any]]] = {"ACCOUNT": [], "CONTACT": [], "OPPORTUNITY": []}
    active = {
        entity: {d.key for d in await customization.definitions(session, entity)}
        for entity in mapped
    }
    for d in await customization.definitions(session, "LEAD"):
        value = lead.custom_fields.get(d.key)
        if value is None:
            continue
        for entity, key in (d.maps_to or {}).items():
            if key in active[entity]:
                mapped[entity].append((key, value))
    return mapped


async def convert_lead(session: AsyncSession, viewer: Viewer, data: dict[str, Any]) -> Conversion:
    """One transaction: any refusal raises and the caller rolls everything back."""
    lead = await editing.load_record_for_edit(session, viewer, "Lead", data["lead_id"], "leadId")
    if lead.is_converted:
        raise _already_converted(lead)
    c = Checker(session, viewer)
    assignee = viewer.user
    if data.get("assigned_to_id") is not None:
        assignee = await c.assignee("assignedToId", data["assigned_to_id"]) or viewer.user
    account = None
    if data.get("account_id") is not None:
        account = await c.reference("accountId", "Account", data["account_id"])
    create_account = data.get("create_account", True) is not False
    create_contact = data.get("create_contact", True) is not False
    if account is None and not create_account and not create_contact:
        c.fail("createContact", "A conversion must result in an account or a contact.",
               ErrorCode.INVALID)
    c.done()
    owner = to_global_id("User", assignee.id)
    description = lead.description
    mapped = await _mapped_values(session, lead)

    if account is None and create_account:
        wanted: dict[str, Any] = data.get("account") or {}
        name = (wanted.get("name") or "").strip() or lead.company
        account = await _reusable_account(session, viewer, name)
        if account is None:
            account = await editing.create_record(
                session, viewer, "Account",
                {"name": name, "industry": wanted.get("industry") or lead.industry,
                 "description": description, "assigned_to_id": owner,
                 "custom_fields": mapped["ACCOUNT"]},
                root=("input", "account"),
            )

    contact = None
    if create_contact:
        contact = await editing.create_record(
            session, viewer, "Contact",
            {
                "last_name": lead.last_name, "first_name": lead.first_name, "email": lead.email,
                "phone": lead.phone, "title": lead.title, "lead_source": lead.lead_source,
                "description": description, "assigned_to_id": owner,
                "account_id": to_global_id("Account", account.id) if account else None,
                "custom_fields": mapped["CONTACT"],
            },
            root=("input", "contact"),
        )

    deal = None
    wanted_deal: dict[str, Any] | None = data.get("opportunity")
    if wanted_deal is not None:
        deal = await opportunity.create_opportunity(
            session, viewer,
            {
                "name": (wanted_deal.get("name") or "").strip() or lead.company,
                "amount": wanted_deal.get("amount"),
                "expected_close_date": wanted_deal.get("expected_close_date"),
                "sales_stage": wanted_deal.get("sales_stage"),
                "next_step": wanted_deal.get("next_step"),
                "type": wanted_deal.get("type"),
                "lead_source": lead.lead_source, "description": description,
                "assigned_to_id": owner,
                "account_id": to_global_id("Account", account.id) if account else None,
                "contact_id": to_global_id("Contact", contact.id) if contact else None,
                "campaign_id": to_global_id("Campaign", lead.campaign_id)
                if lead.campaign_id else None,
                # values given with the deal win over those mapped from the lead
                "custom_fields": _merged(mapped["OPPORTUNITY"], wanted_deal.get("custom_fields")),
            },
            root=("input", "opportunity"),
        )

    await session.flush()  # ids for the lead's links
    # The guard against a concurrent conversion of the same lead: only one UPDATE matches.
    marked = await session.execute(
        update(Lead)
        .where(Lead.id == lead.id, Lead.is_converted.is_(False))
        .values(
            is_converted=True, converted_at=utcnow(), updated_at=utcnow(),
            converted_account_id=account.id if account else None,
            converted_contact_id=contact.id if contact else None,
            converted_opportunity_id=deal.id if deal else None,
        )
        .execution_options(synchronize_session="fetch")
    )
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        raise _already_converted(lead)
    # The lead's history: documents and activities also on every created record, comments
    # copied onto the deal (or the account, or the contact: the first that exists).
    created = [links.key_of(r) for r in (deal, account, contact) if r is not None]
    await links.carry_over(session, ("LEAD", lead.id), created, created[0] if created else None)
    await session.refresh(lead)
    return Conversion(lead, account, contact, deal)
