"""GET /documents/{id}: a document's bytes, for whoever may see the document (the bearer
token's user). Wrapped by AuthMiddleware, which answers 401 without a valid token and puts
the session and the viewer in the request state."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from resolvers import documents
from resolvers.filestore import FileStore

log = logging.getLogger("dealgraph")


def _error(status: int, message: str, code: str) -> JSONResponse:
    """The same shape as the GraphQL errors (and the 401 of AuthMiddleware)."""
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status)


def content_disposition(filename: str) -> str:
    """An attachment (never shown inline, so an uploaded page cannot run as this site) with
    the name as plain ASCII and, when it has more, as RFC 5987 UTF-8 too (RFC 6266)."""
    ascii_name = "".join(
        ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in filename
    )
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def document_download(files: FileStore) -> Callable[[Request], Awaitable[Response]]:
    async def download(request: Request) -> Response:
        """404 for a document the viewer may not see (as for one that does not exist), and
        404 with code FILE_MISSING, logged, when its bytes are gone from the data directory."""
        request.state.log["path"] = request.url.path
        global_id = request.path_params["id"]
        document = await documents.get_document(
            request.state.session, request.state.viewer, global_id
        )
        if document is None:
            return _error(404, f"No document with id {global_id!r}.", "NOT_FOUND")
        path = await files.locate(document.sha256, document.size)
        if path is None:
            log.error(
                "document %s (%s): file missing on disk at %s (request id %s)",
                global_id, document.filename, files.path_for(document.sha256),
                request.state.request_id,
            )
            return _error(
                404, "The document's file is missing on disk; ask an administrator to restore "
                "it from a backup.", "FILE_MISSING",
            )
        return FileResponse(
            path,
            media_type=document.content_type,
            headers={
                "Content-Disposition": content_disposition(document.filename),
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )

    return download
