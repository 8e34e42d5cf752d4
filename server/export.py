"""GET /export/opportunities.csv: the opportunities the token's user may see, as streamed
CSV. Wrapped by AuthMiddleware, which puts the session and the viewer in the request state
and keeps the session open until the last chunk has been sent."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from resolvers import exporting
from resolvers.errors import RequestError

MEDIA_TYPE = "text/csv; charset=utf-8"
HEADERS = {"Content-Disposition": 'attachment; filename="opportunities.csv"'}


def _bad_request(exc: RequestError) -> JSONResponse:
    """The same shape as the GraphQL errors (and the 401 of AuthMiddleware)."""
    body = {"data": None, "errors": [{"message": str(exc), "extensions": {"code": exc.code}}]}
    return JSONResponse(body, status_code=400)


async def _prepend(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    yield first
    async for chunk in rest:
        yield chunk


async def opportunities_csv(request: Request) -> Response:
    """Query parameters: the GraphQL OpportunityFilter's fields (camelCase; lists repeated or
    comma-separated) and `labels=true` for English labels instead of field keys."""
    request.state.log["path"] = request.url.path
    params = {name: request.query_params.getlist(name) for name in request.query_params}
    try:
        labels = exporting.boolean_param("labels", params.pop("labels", [])) or False
        f = exporting.filter_from_params(params)
        chunks = exporting.export_csv(request.state.session, request.state.viewer, f, labels)
        header = await anext(chunks)  # a bad custom-field filter fails here, before any byte
    except RequestError as exc:
        return _bad_request(exc)
    if request.method == "HEAD":  # the headers only: no need to read every row
        await chunks.aclose()
        return Response(media_type=MEDIA_TYPE, headers=HEADERS)
    return StreamingResponse(_prepend(header, chunks), media_type=MEDIA_TYPE, headers=HEADERS)
