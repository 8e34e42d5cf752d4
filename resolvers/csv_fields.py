"""The opportunity CSV format: columns in export order, the header names import
recognises (field key, English label, vtiger's export labels, vtenext's labels in Italian and
English), and vtenext's labels of the default picklist values.

vtenext writes its exports with the labels of its language files, an accented letter as a
backtick (`Opportunita\\``); normalise() ignores case, accents and punctuation, so
`Nome Opportunita\\``, `Nome Opportunità` and `NOME OPPORTUNITA` are one header."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Column:
    key: str  # the header written on export: the GraphQL field name
    label: str  # English label (export --labels)
    aliases: tuple[str, ...] = ()  # other headers import accepts
    read_only: bool = False  # exported, ignored on import with a warning


# Aliases: vtiger's English export labels, then vtenext's (VTECRM/vtenext,
# modules/Potentials/language/it_it.lang.php and en_us.lang.php, $mod_strings: the field
# labels and the LBL_ ones that name a field; "Creatore" from include/language/it_it.lang.php,
# vtenext's export falling back to the application's strings), then headings people type in
# Italian spreadsheets.
COLUMNS: tuple[Column, ...] = (
    Column("number", "Opportunity No",
           ("Potential No", "Numero Opportunita`", "N. Opportunità"), read_only=True),
    Column("name", "Opportunity Name",
           ("Potential Name", "Potential", "Nome Opportunita`", "Opportunita`", "Nome")),
    Column("amount", "Amount", ("Ammontare", "Ammontare (€)", "Importo")),
    Column("currency", "Currency", ("Valuta",)),
    Column("account", "Organization Name",
           ("Related To", "Account Name", "Account", "Collegato a", "Nome Azienda", "Azienda")),
    Column("contact", "Contact Name", ("Contact", "Nome Contatto", "Contatto")),
    Column("expectedCloseDate", "Expected Close Date",
           ("Expected Close", "Data di chiusura attesa", "Data chiusura attesa",
            "Chiusura Attesa")),
    Column("actualCloseDate", "Actual Close Date",
           ("Effective closing date", "Data chiusura effettiva", "Data di chiusura effettiva")),
    Column("type", "Type", ("Opportunity Type", "Tipo", "Tipo Opportunita`")),
    Column("nextStep", "Next Step", ("Prossimo Step", "Prossimo passo")),
    Column("leadSource", "Lead Source", ("Fonte Lead", "Origine Lead")),
    Column("salesStage", "Sales Stage",
           ("Stadio di vendita", "Stadio vendita", "Fase di vendita")),
    Column("probability", "Probability (%)",
           ("Probability", "Probabilita` (%)", "Probabilità")),
    Column("probabilityIsManual", "Probability Is Manual", ()),
    Column("lostReason", "Lost Reason", ("Motivo perdita",)),
    Column("assignedTo", "Assigned To", ("Assegnato a",)),
    Column("campaign", "Campaign Source", ("Campaign", "Fonte Campagna", "Campagna")),
    Column("description", "Description", ("Descrizione",)),
    Column("amountSource", "Amount Source", (), read_only=True),
    Column("createdBy", "Created By", ("Creator", "Creatore", "Creato da"), read_only=True),
    Column("createdAt", "Created Time",
           ("Created At", "Time created", "Orario creazione", "Data creazione"),
           read_only=True),
    Column("updatedAt", "Modified Time",
           ("Updated At", "Orario modifica", "Data modifica"), read_only=True),
)

# vtenext's labels of the default values, by picklist and key: Italian, then English where
# vtenext's differ from vtiger's (which are the picklists' own labels). From VTECRM/vtenext
# modules/Potentials/language/it_it.lang.php and en_us.lang.php ($mod_strings: stages, lead
# sources, types, contact roles); the variants of include/language/it_it.lang.php
# ($app_strings: the stages) and of modules/Leads/language/it_it.lang.php and
# modules/Contacts/language/it_it.lang.php (lead sources) too.
VTENEXT_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "salesStage": {
        "PROSPECTING": ("In Prospettiva",),
        "QUALIFICATION": ("Qualificazione",),
        "NEEDS_ANALYSIS": ("Da Analizzare",),
        "VALUE_PROPOSITION": ("Proposto il valore",),
        "ID_DECISION_MAKERS": ("Potere decisionale",),
        "PERCEPTION_ANALYSIS": ("Analisi di percezione",),
        "PROPOSAL_PRICE_QUOTE": ("Proposta/Preventivo Prezzo", "Proposta/Prezzo Preventivo"),
        "NEGOTIATION_REVIEW": ("Trattativa/Revisione",),
        "CLOSED_WON": ("Chiuso VINTO",),
        "CLOSED_LOST": ("Chiuso PERSO",),
    },
    "opportunityType": {
        "EXISTING_BUSINESS": ("Business Esistente",), "NEW_BUSINESS": ("Nuovo Business",),
    },
    "leadSource": {
        "COLD_CALL": ("Chiamata a freddo",),
        "EXISTING_CUSTOMER": ("Cliente Esistente", "Azienda Esistente"),
        "SELF_GENERATED": ("Autogenerato",), "EMPLOYEE": ("Dipendente",),
        "PARTNER": ("Partner",), "PUBLIC_RELATIONS": ("Pubbliche relazioni", "Public Relation"),
        "DIRECT_MAIL": ("Mail Diretta",), "CONFERENCE": ("Conferenza",),
        "TRADE_SHOW": ("Fiera",), "WEB_SITE": ("Web Site",),
        "WORD_OF_MOUTH": ("Passaparola",), "OTHER": ("Altro",),
    },
    "contactRole": {
        "BUSINESS_USER": ("Utente business",),
        "MANAGER": ("Responsabile",),
        "PURCHASE_AGENT": ("Addetto agli acquisti", "Purchase agent"),
        "PURCHASE_MANAGER": ("Responsabile acquisti", "Purchase manager"),
        "EXAMINER": ("Esaminatore",),
        "SPONSOR_MANAGER": ("Sponsor responsabile", "Sponsor manager"),
        "CONSULTANT": ("Consulente",),
        "TECH_PURCHASE_AGENT": ("Tecnico addetto agli acquisti", "Purchase agent Tech dep."),
        "OTHER": ("Altro",),
    },
}

# What vtiger and vtenext write in a picklist cell left empty (it_it: "--Nessuno--").
NONE_LABELS = ("--None--", "--Nessuno--")


@lru_cache(maxsize=65_536)
def normalise(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form: 'Probabilità (%)' -> 'probabilita'."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "", plain)


def _headers() -> dict[str, Column]:
    found: dict[str, Column] = {}
    for column in COLUMNS:
        for name in (column.key, column.label, *column.aliases):
            other = found.setdefault(normalise(name), column)
            assert other is column, f"header {name!r} names {other.key} and {column.key}"
    return found


HEADERS: dict[str, Column] = _headers()


def is_none(text: str) -> bool:
    """Whether a cell holds what vtiger and vtenext write for "no value"."""
    return text.strip().casefold() in _NONE


_NONE = frozenset(label.casefold() for label in NONE_LABELS)
