"""Documents: upload (GraphQL multipart request), download (GET /documents/{id}), links to
several records, the recycle bin, the size limit, de-duplicated storage and visibility.

A document is visible when any record it is linked to is visible (and not deleted); changing
it takes edit rights on one of those records. Files live under a temporary data directory
(a dedicated app per test, over the session's database).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import models
from resolvers.documents import clean_filename, content_type_of
from resolvers.ids import to_global_id
from server.app import create_app
from server.settings import Settings
from tests.conftest import GraphQLClient

LIMIT = 64 * 1024  # the tests' upload limit

UPLOAD = """
mutation Upload($input: UploadDocumentInput!) {
  uploadDocument(input: $input) {
    document {
      id title filename contentType size sha256 downloadUrl createdAt
      createdBy { username }
      linkedTo { id __typename }
    }
    userErrors { field code message }
  }
}
"""

LINK = """
mutation Link($input: LinkDocumentInput!) {
  linkDocument(input: $input) {
    document { id linkedTo { id } }
    userErrors { field code message }
  }
}
"""

UNLINK = """
mutation Unlink($input: UnlinkDocumentInput!) {
  unlinkDocument(input: $input) {
    document { id linkedTo { id } }
    userErrors { field code message }
  }
}
"""

DELETE = """
mutation Delete($input: DeleteDocumentInput!) {
  deleteDocument(input: $input) { deletedId userErrors { field code message } }
}
"""

DOCUMENTS_OF = """
query DocumentsOf($id: ID!) {
  node(id: $id) {
    ... on DealRoomRecord {
      documents(first: 10) { totalCount nodes { id title linkedTo { id } } }
    }
  }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) { ... on Document { id title linkedTo { id } } }
}
"""

ROOT_DOCUMENTS = """
query Documents($search: String) {
  documents(first: 50, filter: {search: $search}) { totalCount nodes { id title } }
}
"""


def gid(record: Any) -> str:
    return to_global_id(type(record).__name__, record.id)


def stored_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*") if p.is_file())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


async def _app(settings: Settings, data_dir: Path, sharing: str = "PRIVATE") -> Any:
    return create_app(
        Settings(
            database_url=settings.database_url, data_dir=str(data_dir), max_upload_bytes=LIMIT,
            sharing=sharing,  # type: ignore[arg-type]
        )
    )


@pytest.fixture
async def docs_app(settings: Settings, data_dir: Path) -> AsyncIterator[Any]:
    """An app over the session's database with its files in a temporary data directory."""
    application = await _app(settings, data_dir)
    yield application
    await application.state.engine.dispose()


@pytest.fixture
async def public_docs_app(settings: Settings, data_dir: Path) -> AsyncIterator[Any]:
    application = await _app(settings, data_dir, "PUBLIC")
    yield application
    await application.state.engine.dispose()


class Client(GraphQLClient):
    """A GraphQL client that also uploads (multipart) and downloads."""

    async def upload(
        self,
        content: bytes,
        filename: str = "offer.pdf",
        content_type: str = "application/pdf",
        **fields: Any,
    ) -> dict[str, Any]:
        """uploadDocument per the GraphQL multipart request spec: operations, map, file."""
        operations = {"query": UPLOAD, "variables": {"input": {"file": None, **fields}}}
        response = await self.http.post(
            "/graphql",
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.input.file"]}),
            },
            files={"0": (filename, content, content_type)},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]["uploadDocument"]  # type: ignore[no-any-return]

    async def download(self, url: str) -> httpx.Response:
        return await self.http.get(url)


@pytest.fixture
def client_of(docs_app, factory, db):
    async def make(user: models.User, app: Any = None) -> Client:
        token = await factory.token(user)
        await db.commit()
        return Client(app or docs_app, token)

    return make


@pytest.fixture
async def deal(team, factory, db) -> models.Opportunity:
    opp = await factory.opportunity(team["rep"], name="Rep deal")
    await db.commit()
    return opp


async def uploaded(
    client: Client, record: Any, content: bytes = b"%PDF-1.7 offer", **kw: Any
) -> str:
    field = type(record).__name__[0].lower() + type(record).__name__[1:] + "Id"
    result = await client.upload(content, **{field: gid(record)}, **kw)
    assert result["userErrors"] == []
    return result["document"]["id"]  # type: ignore[no-any-return]


# --- upload and download ------------------------------------------------------------------


async def test_an_upload_downloads_as_identical_bytes_with_its_type_and_name(
    team, deal, client_of, data_dir
):
    # given
    client = await client_of(team["rep"])
    content = bytes(range(256)) * 40  # binary, 10 KiB
    sha = hashlib.sha256(content).hexdigest()

    # when
    result = await client.upload(
        content, filename="Offerta ACME.pdf", title="The offer", opportunityId=gid(deal)
    )
    document = result["document"]
    response = await client.download(document["downloadUrl"])

    # then
    assert result["userErrors"] == []
    assert document["title"] == "The offer"
    assert document["filename"] == "Offerta ACME.pdf"
    assert document["contentType"] == "application/pdf"
    assert document["size"] == len(content)
    assert document["sha256"] == sha
    assert document["createdBy"] == {"username": "rep"}
    assert document["linkedTo"] == [{"id": gid(deal), "__typename": "Opportunity"}]
    assert document["downloadUrl"] == f"/documents/{document['id']}"
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="Offerta ACME.pdf"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert stored_files(data_dir) == [data_dir / sha[:2] / sha[2:4] / sha]


async def test_the_title_defaults_to_the_file_name_and_the_type_to_a_guess(
    team, deal, client_of
):
    # given
    client = await client_of(team["rep"])

    # when
    result = await client.upload(
        b"a,b\n1,2\n", filename="C:\\Users\\rep\\numbers.csv",
        content_type="application/octet-stream", opportunityId=gid(deal), title="  ",
    )

    # then
    document = result["document"]
    assert (document["title"], document["filename"]) == ("numbers.csv", "numbers.csv")
    assert document["contentType"] == "text/csv"


def test_file_names_and_types_are_cleaned():
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("a\x00b\nc.txt") == "abc.txt"
    assert clean_filename("") == "upload"
    long = clean_filename("x" * 300 + ".pdf")
    assert len(long) == 255 and long.endswith(".pdf")
    assert content_type_of("text/html; charset=utf-8", "a.html") == "text/html"
    assert content_type_of("not a type", "a.bin") == "application/octet-stream"


async def test_the_download_needs_a_token(team, deal, client_of, docs_app):
    # given
    client = await client_of(team["rep"])
    document_id = await uploaded(client, deal)
    anonymous = Client(docs_app, None)

    # when
    response = await anonymous.download(f"/documents/{document_id}")

    # then
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(("viewer", "status"), [
    ("rep", 200), ("manager", 200), ("admin", 200), ("rep2", 404), ("other_rep", 404),
    ("other_manager", 404),
])
async def test_the_download_is_for_those_who_may_see_the_record(
    viewer, status, team, deal, client_of
):
    # given
    document_id = await uploaded(await client_of(team["rep"]), deal)
    client = await client_of(team[viewer])

    # when
    response = await client.download(f"/documents/{document_id}")

    # then
    assert response.status_code == status
    if status == 404:
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert "PDF" not in response.text


async def test_downloading_an_unknown_id_is_404(team, client_of):
    client = await client_of(team["admin"])

    for url in ("/documents/nonsense", f"/documents/{to_global_id('Document', 999)}",
                f"/documents/{to_global_id('Opportunity', 1)}"):
        response = await client.download(url)
        assert response.status_code == 404, url


async def test_a_file_missing_on_disk_is_reported_not_a_crash(
    team, deal, client_of, data_dir, caplog
):
    # given
    client = await client_of(team["rep"])
    document_id = await uploaded(client, deal, b"soon gone")
    for path in stored_files(data_dir):
        path.unlink()
    caplog.set_level(logging.ERROR, logger="dealgraph")

    # when
    response = await client.download(f"/documents/{document_id}")
    listed = await client.data(DOCUMENTS_OF, {"id": gid(deal)})

    # then
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "FILE_MISSING"
    assert "missing on disk" in response.json()["errors"][0]["message"]
    assert any("file missing on disk" in r.getMessage() for r in caplog.records)
    assert listed["node"]["documents"]["totalCount"] == 1  # the metadata is still there


# --- the size limit and storage -----------------------------------------------------------


async def test_an_upload_past_the_limit_is_refused_and_leaves_nothing(
    team, deal, client_of, data_dir, db
):
    # given
    client = await client_of(team["rep"])

    # when
    result = await client.upload(b"x" * (LIMIT + 1), opportunityId=gid(deal))

    # then
    assert result["document"] is None
    [error] = result["userErrors"]
    assert error["field"] == ["input", "file"]
    assert error["code"] == "TOO_LARGE"
    assert "64 KiB" in error["message"] or str(LIMIT) in error["message"]
    assert stored_files(data_dir) == []
    assert await db.scalar(select(func.count()).select_from(models.Document)) == 0


async def test_an_upload_at_the_limit_is_taken(team, deal, client_of):
    client = await client_of(team["rep"])

    result = await client.upload(b"x" * LIMIT, opportunityId=gid(deal))

    assert result["userErrors"] == []
    assert result["document"]["size"] == LIMIT


def test_the_default_upload_limit_is_25_mib():
    assert Settings.model_fields["max_upload_bytes"].default == 25 * 1024 * 1024


async def test_the_same_bytes_are_stored_once_for_two_documents(
    team, deal, factory, db, client_of, data_dir
):
    # given
    account = await factory.account(team["rep"])
    await db.commit()
    client = await client_of(team["rep"])
    content = b"the same contract"

    # when
    first = await client.upload(content, filename="a.pdf", opportunityId=gid(deal))
    second = await client.upload(content, filename="b.pdf", accountId=gid(account))

    # then
    assert first["document"]["id"] != second["document"]["id"]
    assert first["document"]["sha256"] == second["document"]["sha256"]
    assert len(stored_files(data_dir)) == 1
    assert [p.name for p in (data_dir / "tmp").iterdir()] == []
    for result in (first, second):
        response = await client.download(result["document"]["downloadUrl"])
        assert response.content == content


async def test_an_upload_reports_every_problem_and_stores_nothing(
    team, factory, db, client_of, data_dir
):
    # given
    foreign = await factory.opportunity(team["other_rep"])
    await db.commit()
    client = await client_of(team["rep"])

    # when
    empty = await client.upload(b"", title="t" * 300)
    invisible = await client.upload(b"data", opportunityId=gid(foreign), leadId="junk")

    # then
    assert empty["document"] is None
    assert sorted((e["field"][-1], e["code"]) for e in empty["userErrors"]) == [
        ("file", "INVALID"), ("opportunityId", "REQUIRED"), ("title", "TOO_LONG"),
    ]
    assert sorted((e["field"][-1], e["code"]) for e in invisible["userErrors"]) == [
        ("leadId", "NOT_FOUND"), ("opportunityId", "NOT_FOUND"),
    ]
    assert stored_files(data_dir) == []
    assert await db.scalar(select(func.count()).select_from(models.Document)) == 0


async def test_an_upload_onto_a_record_one_may_read_but_not_change_is_refused(
    team, factory, db, client_of, public_docs_app
):
    # given: PUBLIC sharing, rep reads other_rep's deal
    foreign = await factory.opportunity(team["other_rep"])
    await db.commit()
    client = await client_of(team["rep"], public_docs_app)

    # when
    result = await client.upload(b"data", opportunityId=gid(foreign))

    # then
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [
        (["input", "opportunityId"], "PERMISSION_DENIED")
    ]


async def test_a_file_must_come_as_a_multipart_file_part(team, deal, client_of):
    client = await client_of(team["rep"])

    body = await client.query(
        UPLOAD, {"input": {"file": "not a file", "opportunityId": gid(deal)}}
    )

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# --- links --------------------------------------------------------------------------------


async def test_a_document_is_linked_to_several_records_and_unlinked(
    team, deal, factory, db, client_of
):
    # given
    account = await factory.account(team["rep"])
    contact = await factory.contact(team["rep"])
    await db.commit()
    client = await client_of(team["rep"])
    document_id = await uploaded(client, deal)

    # when
    def to(record: Any) -> dict[str, Any]:
        return {"input": {"documentId": document_id, "recordId": gid(record)}}

    await client.data(LINK, to(account))
    again = await client.data(LINK, to(account))
    await client.data(LINK, to(contact))
    on_account = await client.data(DOCUMENTS_OF, {"id": gid(account)})
    unlinked = await client.data(UNLINK, to(deal))
    on_deal = await client.data(DOCUMENTS_OF, {"id": gid(deal)})

    # then
    assert again["linkDocument"]["userErrors"] == []  # linking twice changes nothing
    assert {x["id"] for x in again["linkDocument"]["document"]["linkedTo"]} == {
        gid(deal), gid(account)
    }
    [listed] = on_account["node"]["documents"]["nodes"]
    assert {x["id"] for x in listed["linkedTo"]} == {gid(deal), gid(account), gid(contact)}
    assert unlinked["unlinkDocument"]["userErrors"] == []
    assert {x["id"] for x in unlinked["unlinkDocument"]["document"]["linkedTo"]} == {
        gid(account), gid(contact)
    }
    assert on_deal["node"]["documents"] == {"totalCount": 0, "nodes": []}


async def test_the_last_link_cannot_be_removed_and_a_link_must_exist(
    team, deal, factory, db, client_of
):
    # given
    account = await factory.account(team["rep"])
    await db.commit()
    client = await client_of(team["rep"])
    document_id = await uploaded(client, deal)

    # when
    last = await client.data(UNLINK, {"input": {"documentId": document_id, "recordId": gid(deal)}})
    absent = await client.data(
        UNLINK, {"input": {"documentId": document_id, "recordId": gid(account)}}
    )

    # then
    assert [(e["field"], e["code"]) for e in last["unlinkDocument"]["userErrors"]] == [
        (["input", "recordId"], "INVALID")
    ]
    assert [e["code"] for e in absent["unlinkDocument"]["userErrors"]] == ["NOT_FOUND"]
    assert (await client.data(NODE, {"id": document_id}))["node"]["linkedTo"] == [
        {"id": gid(deal)}
    ]


async def test_linking_is_refused_for_records_one_may_not_see_or_change(
    team, deal, factory, db, client_of, public_docs_app
):
    # given
    foreign = await factory.account(team["other_rep"])
    campaign = await factory.campaign(team["rep"])
    await db.commit()
    rep = await client_of(team["rep"])
    document_id = await uploaded(rep, deal)
    public_rep = await client_of(team["rep"], public_docs_app)
    other = await client_of(team["other_rep"])

    # when
    invisible = await rep.data(LINK, {"input": {"documentId": document_id,
                                                "recordId": gid(foreign)}})
    wrong_type = await rep.data(LINK, {"input": {"documentId": document_id,
                                                 "recordId": gid(campaign)}})
    read_only = await public_rep.data(LINK, {"input": {"documentId": document_id,
                                                       "recordId": gid(foreign)}})
    not_theirs = await other.data(LINK, {"input": {"documentId": document_id,
                                                   "recordId": gid(foreign)}})

    # then
    def codes(result: dict[str, Any]) -> list[tuple[str, str]]:
        return [(e["field"][-1], e["code"]) for e in result["linkDocument"]["userErrors"]]

    assert codes(invisible) == [("recordId", "NOT_FOUND")]
    assert codes(wrong_type) == [("recordId", "INVALID")]
    assert codes(read_only) == [("recordId", "PERMISSION_DENIED")]
    assert codes(not_theirs) == [("documentId", "NOT_FOUND")]
    assert (await rep.data(NODE, {"id": document_id}))["node"]["linkedTo"] == [{"id": gid(deal)}]


# --- the recycle bin ----------------------------------------------------------------------


async def test_a_deleted_document_vanishes_from_lists_and_downloads(
    team, deal, client_of
):
    # given
    client = await client_of(team["rep"])
    document_id = await uploaded(client, deal)
    kept_id = await uploaded(client, deal, b"another")

    # when
    result = await client.data(DELETE, {"input": {"id": document_id}})

    # then
    assert result["deleteDocument"] == {"deletedId": document_id, "userErrors": []}
    listed = await client.data(DOCUMENTS_OF, {"id": gid(deal)})
    assert [d["id"] for d in listed["node"]["documents"]["nodes"]] == [kept_id]
    assert (await client.data(ROOT_DOCUMENTS))["documents"]["totalCount"] == 1
    assert (await client.data(NODE, {"id": document_id}))["node"] is None
    assert (await client.download(f"/documents/{document_id}")).status_code == 404
    again = await client.data(DELETE, {"input": {"id": document_id}})
    assert [e["code"] for e in again["deleteDocument"]["userErrors"]] == ["NOT_FOUND"]


async def test_deleting_takes_edit_rights_on_a_linked_record(
    team, deal, client_of, public_docs_app
):
    # given
    document_id = await uploaded(await client_of(team["rep"]), deal)
    outsider = await client_of(team["other_rep"])
    public_outsider = await client_of(team["other_rep"], public_docs_app)
    manager = await client_of(team["manager"])

    # when
    hidden = await outsider.data(DELETE, {"input": {"id": document_id}})
    read_only = await public_outsider.data(DELETE, {"input": {"id": document_id}})
    by_manager = await manager.data(DELETE, {"input": {"id": document_id}})

    # then
    assert [e["code"] for e in hidden["deleteDocument"]["userErrors"]] == ["NOT_FOUND"]
    assert [e["code"] for e in read_only["deleteDocument"]["userErrors"]] == [
        "PERMISSION_DENIED"
    ]
    assert by_manager["deleteDocument"] == {"deletedId": document_id, "userErrors": []}


# --- visibility ---------------------------------------------------------------------------


@pytest.fixture
async def shared_document(team, factory, db) -> dict[str, Any]:
    """A document on rep's deal and on other_rep's account; another only on other_rep's."""
    deal = await factory.opportunity(team["rep"], name="Rep deal")
    account = await factory.account(team["other_rep"], name="Other account")
    both = models.Document(title="Both", filename="both.txt", content_type="text/plain", size=1,
                           sha256="0" * 64, created_by_id=team["rep"].id)
    theirs = models.Document(title="Theirs", filename="t.txt", content_type="text/plain", size=1,
                             sha256="1" * 64, created_by_id=team["other_rep"].id)
    db.add_all([both, theirs])
    await db.flush()
    db.add_all([
        models.DocumentLink(document_id=both.id, entity="OPPORTUNITY", record_id=deal.id),
        models.DocumentLink(document_id=both.id, entity="ACCOUNT", record_id=account.id),
        models.DocumentLink(document_id=theirs.id, entity="ACCOUNT", record_id=account.id),
    ])
    await db.commit()
    return {"deal": deal, "account": account, "both": both, "theirs": theirs}


@pytest.mark.parametrize(("viewer", "titles", "linked"), [
    ("rep", ["Both"], {"Opportunity"}),
    ("manager", ["Both"], {"Opportunity"}),
    ("rep2", [], set()),
    ("other_rep", ["Both", "Theirs"], {"Account"}),
    ("other_manager", ["Both", "Theirs"], {"Account"}),
    ("admin", ["Both", "Theirs"], {"Opportunity", "Account"}),
])
async def test_a_document_is_visible_through_any_visible_record(
    viewer, titles, linked, team, shared_document, client_of
):
    # given
    client = await client_of(team[viewer])
    both = gid(shared_document["both"])

    # when
    listed = await client.data(ROOT_DOCUMENTS)
    node = await client.data(
        "query($id: ID!) { node(id: $id) { ... on Document { linkedTo { __typename } } } }",
        {"id": both},
    )

    # then
    assert sorted(n["title"] for n in listed["documents"]["nodes"]) == titles
    assert listed["documents"]["totalCount"] == len(titles)
    if titles:
        assert {x["__typename"] for x in node["node"]["linkedTo"]} == linked
    else:
        assert node["node"] is None


async def test_a_document_of_a_deleted_record_only_is_not_visible(
    team, shared_document, db, client_of
):
    # given: the deal goes to the recycle bin; rep sees no other record of "Both"
    deal = await db.get(models.Opportunity, shared_document["deal"].id)
    assert deal is not None
    from models.base import utcnow

    deal.deleted_at = utcnow()
    await db.commit()
    client = await client_of(team["rep"])

    # when
    listed = await client.data(ROOT_DOCUMENTS)
    response = await client.download(f"/documents/{gid(shared_document['both'])}")

    # then
    assert listed["documents"]["totalCount"] == 0
    assert response.status_code == 404


async def test_the_documents_list_searches_title_and_file_name(team, deal, client_of):
    client = await client_of(team["rep"])
    await uploaded(client, deal, b"1", filename="budget.xlsx", title="Budget 2027")
    await uploaded(client, deal, b"2", filename="minutes.txt", title="Kick-off")

    found = await client.data(ROOT_DOCUMENTS, {"search": "MINUTES"})

    assert [n["title"] for n in found["documents"]["nodes"]] == ["Kick-off"]
