"""Importing opportunities from CSV: what people actually have (vtiger/vtenext exports,
Italian spreadsheets) read safely. Every row goes through the same rules as the mutations
(create_opportunity / update_opportunity); reference data and references are looked up in
bulk per batch so that a row costs no query of its own, and batches are written whole.

One job per module, each importing only those before it: reading (the file and its
values) ← importer (the import) ← jobs (running, recording, resuming) ← undo."""

from __future__ import annotations

from resolvers.errors import ValidationFailed
from resolvers.importing.importer import (
    MATCHABLE,
    NO_LOST_REASON,
    Importer,
    Issue,
    Options,
    Progress,
    Report,
    import_opportunities,
    preflight,
)
from resolvers.importing.jobs import (
    LIVE,
    Resumption,
    Source,
    claim_resume,
    create_job,
    finish_job,
    options_json,
    options_of,
    recover_interrupted,
    resume,
    run_job,
    start_job,
    submit,
    submit_resume,
    visible_job,
)
from resolvers.importing.reading import (
    Table,
    UnusableInput,
    decimal_comma_of,
    decode,
    parse_bool,
    parse_date,
    parse_number,
    read_table,
    sniff_delimiter,
)
from resolvers.importing.undo import undo_import

__all__ = [
    "LIVE", "MATCHABLE", "NO_LOST_REASON", "Importer", "Issue", "Options", "Progress", "Report",
    "Resumption",
    "Source", "Table", "UnusableInput", "ValidationFailed", "claim_resume", "create_job",
    "decimal_comma_of", "decode", "finish_job", "import_opportunities", "options_json",
    "options_of", "parse_bool", "parse_date", "parse_number", "preflight", "read_table",
    "recover_interrupted", "resume", "run_job", "sniff_delimiter", "start_job", "submit",
    "submit_resume", "undo_import", "visible_job",
]
