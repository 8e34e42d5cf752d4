"""The opportunity CSV format: columns in export order, the header names import
recognises (field key, English label, vtiger's export labels, vtenext's Italian labels),
and the Italian labels of the default picklist values."""

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


COLUMNS: tuple[Column, ...] = (
    Column("number", "Opportunity No", ("Potential No", "N. Opportunità"), read_only=True),
    Column("name", "Opportunity Name", ("Potential Name", "Nome Opportunità", "Nome")),
    Column("amount", "Amount", ("Ammontare", "Ammontare (€)", "Importo")),
    Column("currency", "Currency", ("Valuta",)),
    Column("account", "Organization Name",
           ("Related To", "Account Name", "Account", "Nome Azienda", "Azienda")),
    Column("contact", "Contact Name", ("Contact", "Nome Contatto", "Contatto")),
    Column("expectedCloseDate", "Expected Close Date", ("Data di chiusura attesa",)),
    Column("actualCloseDate", "Actual Close Date", ("Data di chiusura effettiva",)),
    Column("type", "Type", ("Tipo",)),
    Column("nextStep", "Next Step", ("Prossimo Step", "Prossimo passo")),
    Column("leadSource", "Lead Source", ("Fonte Lead", "Origine Lead")),
    Column("salesStage", "Sales Stage", ("Stadio di vendita", "Fase di vendita")),
    Column("probability", "Probability (%)", ("Probability", "Probabilità (%)", "Probabilità")),
    Column("probabilityIsManual", "Probability Is Manual", ()),
    Column("lostReason", "Lost Reason", ("Motivo perdita",)),
    Column("assignedTo", "Assigned To", ("Assegnato a",)),
    Column("campaign", "Campaign Source", ("Campaign", "Fonte Campagna", "Campagna")),
    Column("description", "Description", ("Descrizione",)),
    Column("amountSource", "Amount Source", (), read_only=True),
    Column("createdBy", "Created By", ("Creato da",), read_only=True),
    Column("createdAt", "Created Time", ("Created At", "Data creazione"), read_only=True),
    Column("updatedAt", "Modified Time", ("Updated At", "Data modifica"), read_only=True),
)

# vtenext's Italian labels of the default values, by picklist and key.
ITALIAN_VALUES: dict[str, dict[str, str]] = {
    "salesStage": {
        "PROSPECTING": "Prospezione", "QUALIFICATION": "Qualificazione",
        "NEEDS_ANALYSIS": "Analisi necessità", "VALUE_PROPOSITION": "Proposta di valore",
        "ID_DECISION_MAKERS": "Identificazione decisori",
        "PERCEPTION_ANALYSIS": "Analisi percezione",
        "PROPOSAL_PRICE_QUOTE": "Proposta/Preventivo",
        "NEGOTIATION_REVIEW": "Negoziazione/Revisione", "CLOSED_WON": "Chiusa vinta",
        "CLOSED_LOST": "Chiusa persa",
    },
    "opportunityType": {
        "EXISTING_BUSINESS": "Business esistente", "NEW_BUSINESS": "Nuovo business",
    },
    "leadSource": {
        "COLD_CALL": "Chiamata a freddo", "EXISTING_CUSTOMER": "Cliente esistente",
        "SELF_GENERATED": "Autogenerato", "EMPLOYEE": "Dipendente", "PARTNER": "Partner",
        "PUBLIC_RELATIONS": "Pubbliche relazioni", "DIRECT_MAIL": "Posta diretta",
        "CONFERENCE": "Conferenza", "TRADE_SHOW": "Fiera", "WEB_SITE": "Sito web",
        "WORD_OF_MOUTH": "Passaparola", "OTHER": "Altro",
    },
}


@lru_cache(maxsize=65_536)
def normalise(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form: 'Probabilità (%)' -> 'probabilita'."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "", plain)


HEADERS: dict[str, Column] = {
    normalise(name): column
    for column in COLUMNS
    for name in (column.key, column.label, *column.aliases)
}
