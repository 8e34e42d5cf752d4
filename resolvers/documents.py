"""Documents (vtiger's Documents related list): files uploaded onto opportunities, accounts,
contacts and leads, linked to several records, unlinked, deleted to the recycle bin.

A document is visible when any record it is linked to is visible and not deleted (the rule
is in resolvers/kinds.py); changing
it (links, deletion) takes edit rights on one of those records, and linking it to another
record edit rights on that record too. The bytes live in the FileStore, by SHA-256.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from typing import Any, BinaryIO, Protocol

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Document, DocumentLink
from models.base import utcnow
from resolvers import links
from resolvers.errors import ErrorCode
from resolvers.filestore import FileStore, Spool
from resolvers.ids import pk_of
from resolvers.kinds import KINDS
from resolvers.permissions import Viewer
from resolvers.validation import Checker

TARGET_FIELDS = (
    ("opportunity_id", "opportunityId"), ("account_id", "accountId"),
    ("contact_id", "contactId"), ("lead_id", "leadId"),
)
CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$")
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class Upload(Protocol):
    """What an uploaded file offers (Starlette's UploadFile)."""

    filename: str | None
    content_type: str | None
    file: BinaryIO


def on_record(entity: str) -> list[ColumnElement[bool]]:
    """The documents of one visible record (parent column DocumentLink.record_id): every
    one not deleted, since its link to that record makes it visible."""
    return [
        DocumentLink.document_id == Document.id,
        DocumentLink.entity == entity,
        Document.deleted_at.is_(None),
    ]


def clean_filename(name: str | None) -> str:
    """The last path segment, without control characters, at most 255 characters (the
    extension kept); "upload" when nothing is left."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = stem[: 254 - len(ext)] + dot + ext if dot and len(ext) < 20 else name[:255]
    return name or "upload"


def content_type_of(given: str | None, filename: str) -> str:
    """The type the client sent when it looks like one, else a guess from the name."""
    value = (given or "").split(";")[0].strip().lower()
    if value and len(value) <= 127 and CONTENT_TYPE.match(value) and value != DEFAULT_CONTENT_TYPE:
        return value
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or DEFAULT_CONTENT_TYPE


def _size(n: int) -> str:
    """65536 -> '64 KiB (65536 bytes)'."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:g} {unit} ({n} bytes)"
    return f"{n} bytes"


async def upload_document(
    session: AsyncSession,
    viewer: Viewer,
    files: FileStore,
    upload: Upload,
    spool: Spool,
    data: dict[str, Any],
) -> Document:
    """A new document holding the spooled upload, linked to the named records (at least
    one, each one the viewer may change). The bytes are kept only when nothing is refused."""
    c = Checker(session, viewer)
    filename = clean_filename(upload.filename)
    title = c.text("title", data.get("title"))
    if spool.too_large:
        c.fail(
            "file",
            f"The file is larger than {_size(files.max_bytes)}, the most that may be uploaded.",
            ErrorCode.TOO_LARGE,
        )
    elif spool.size == 0:
        c.fail("file", "The file is empty.", ErrorCode.INVALID)
    targets = []
    for name, graphql in TARGET_FIELDS:
        found = await links.target(c, graphql, data.get(name))
        if found is not None:
            targets.append(found[0])
    if not any(data.get(name) for name, _ in TARGET_FIELDS):
        c.fail(
            "opportunityId",
            "Name the record to attach the document to: opportunityId, accountId, contactId "
            "or leadId.",
            ErrorCode.REQUIRED,
        )
    c.done()
    await files.keep(spool)
    document = Document(
        title=title or filename, filename=filename,
        content_type=content_type_of(upload.content_type, filename), size=spool.size,
        sha256=spool.sha256, created_by_id=viewer.user.id,
    )
    session.add(document)
    await session.flush()
    session.add_all(
        DocumentLink(document_id=document.id, entity=entity, record_id=pk)
        for entity, pk in dict.fromkeys(targets)
    )
    await session.flush()
    return document


async def _for_edit(c: Checker, global_id: str, field: str = "documentId") -> Document | None:
    return await links.load_for_edit(  # type: ignore[no-any-return]
        c, "Document", DocumentLink, DocumentLink.document_id, global_id, field
    )


async def link_document(
    session: AsyncSession, viewer: Viewer, document_id: str, record_id: str
) -> Document:
    """Also show the document on another record; linking it again changes nothing."""
    c = Checker(session, viewer)
    document = await _for_edit(c, document_id)
    found = await links.target(c, "recordId", record_id)
    c.done()
    assert document is not None and found is not None
    (entity, pk), _ = found
    if await session.get(DocumentLink, (document.id, entity, pk)) is None:
        session.add(DocumentLink(document_id=document.id, entity=entity, record_id=pk))
        document.updated_at = utcnow()
        await session.flush()
    return document


async def unlink_document(
    session: AsyncSession, viewer: Viewer, document_id: str, record_id: str
) -> Document:
    """Take the document off one record (it stays on the others); its last link cannot go:
    delete the document instead."""
    c = Checker(session, viewer)
    document = await _for_edit(c, document_id)
    found = await links.target(c, "recordId", record_id)
    link = None
    if document is not None and found is not None:
        (entity, pk), _ = found
        link = await session.get(DocumentLink, (document.id, entity, pk))
        count = select(func.count()).where(DocumentLink.document_id == document.id)
        if link is None:
            c.fail("recordId", "The document is not linked to that record.", ErrorCode.NOT_FOUND)
        elif (await session.scalar(count) or 0) <= 1:
            c.fail(
                "recordId", "That is the document's only record; delete the document instead.",
                ErrorCode.INVALID,
            )
    c.done()
    assert document is not None and link is not None
    await session.delete(link)
    document.updated_at = utcnow()
    await session.flush()
    return document


async def delete_document(session: AsyncSession, viewer: Viewer, document_id: str) -> Document:
    """Move the document to the recycle bin: it vanishes from every list and download; its
    links and bytes stay."""
    c = Checker(session, viewer)
    document = await _for_edit(c, document_id, "id")
    c.done()
    assert document is not None
    document.deleted_at = utcnow()
    await session.flush()
    return document


async def get_document(session: AsyncSession, viewer: Viewer, global_id: str) -> Document | None:
    """The document if the viewer may see it (for a download), else None."""
    pk = pk_of(global_id, "Document")
    if pk is None:
        return None
    stmt = select(Document).where(Document.id == pk, *KINDS["Document"].visible(viewer))
    return (await session.scalars(stmt)).first()
