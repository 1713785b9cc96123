"""The conversation API's CRUD routes, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chatbackend.app import create_app
from tests.conftest import openai_settings


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    app = create_app(openai_settings(database_url=database_url))
    with TestClient(app) as test_client:
        yield test_client


def _error(response: object, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_create_returns_the_conversation(client: TestClient) -> None:
    created = client.post("/conversations", json={"title": "Trip", "metadata": {"tag": "x"}})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "title", "metadata", "created_at", "updated_at"}
    assert uuid.UUID(body["id"]).version == 4
    assert (body["title"], body["metadata"]) == ("Trip", {"tag": "x"})
    assert body["created_at"].endswith("Z") and datetime.fromisoformat(body["created_at"])
    fetched = client.get(f"/conversations/{body['id']}").json()
    assert fetched == {**body, "messages": []}


def test_an_empty_body_makes_an_untitled_conversation(client: TestClient) -> None:
    body = client.post("/conversations", json={}).json()
    assert (body["title"], body["metadata"]) == (None, {})


def test_patch_changes_only_what_is_sent(client: TestClient) -> None:
    created = client.post("/conversations", json={"title": "a", "metadata": {"k": 1}}).json()
    path = f"/conversations/{created['id']}"
    renamed = client.patch(path, json={"title": "b"}).json()
    assert (renamed["title"], renamed["metadata"]) == ("b", {"k": 1})
    assert renamed["updated_at"] > created["updated_at"]
    cleared = client.patch(path, json={"title": None, "metadata": {"k": 2}}).json()
    assert (cleared["title"], cleared["metadata"]) == (None, {"k": 2})
    assert client.get(path).json()["title"] is None


def test_delete_then_every_route_of_the_id_is_not_found(client: TestClient) -> None:
    conversation_id = client.post("/conversations", json={}).json()["id"]
    path = f"/conversations/{conversation_id}"
    assert client.delete(path).status_code == 204
    _error(client.get(path), 404, "not_found")
    _error(client.patch(path, json={"title": "x"}), 404, "not_found")
    _error(client.delete(path), 404, "not_found")
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    _error(client.post(f"{path}/chat", json=chat), 404, "not_found")
    _error(client.post(f"{path}/chat/stream", json=chat), 404, "not_found")
    assert client.get("/conversations").json()["data"] == []


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "12345", str(uuid.uuid4())])
def test_bad_ids_are_not_found(client: TestClient, bad_id: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"title": "x"}} if method == "PATCH" else {}
        _error(client.request(method, f"/conversations/{bad_id}", **kwargs), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [{"title": 5}, {"metadata": []}, {"unknown": 1}, {"title": "x" * 301}],
)
def test_bad_bodies_are_invalid_requests(client: TestClient, body: object) -> None:
    _error(client.post("/conversations", json=body), 422, "invalid_request")
    conversation_id = client.post("/conversations", json={}).json()["id"]
    _error(client.patch(f"/conversations/{conversation_id}", json=body), 422, "invalid_request")


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=x", "cursor=nonsense", "cursor=W10"]
)
def test_bad_list_parameters_are_invalid_requests(client: TestClient, query: str) -> None:
    _error(client.get(f"/conversations?{query}"), 422, "invalid_request")


def test_pages_are_most_recently_updated_first(client: TestClient) -> None:
    ids = [client.post("/conversations", json={"title": str(i)}).json()["id"] for i in range(5)]
    client.patch(f"/conversations/{ids[1]}", json={"title": "touched"})
    first = client.get("/conversations?limit=2").json()
    second = client.get(f"/conversations?limit=2&cursor={first['next_cursor']}").json()
    third = client.get(f"/conversations?limit=2&cursor={second['next_cursor']}").json()
    listed = [c["id"] for page in (first, second, third) for c in page["data"]]
    assert listed == [ids[1], ids[4], ids[3], ids[2], ids[0]]
    assert third["next_cursor"] is None


def test_pagination_is_stable_while_conversations_are_added(client: TestClient) -> None:
    existing = [client.post("/conversations", json={}).json()["id"] for _ in range(7)]
    seen: list[str] = []
    cursor = None
    added: list[str] = []
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/conversations?{query}").json()
        seen += [c["id"] for c in page["data"]]
        # New conversations sort before every cursor: they never shift a later page.
        added += [client.post("/conversations", json={}).json()["id"] for _ in range(2)]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == existing[::-1]
    assert len(set(added)) == len(added) and not set(added) & set(seen)


def test_conversations_belong_to_their_caller(database_url: str) -> None:
    """Two real API keys: another key's conversation is a 404 on every route, never a 403."""
    from tests.test_api_keys import add_key

    key_a, key_b = add_key(database_url, "a").key, add_key(database_url, "b").key
    app = create_app(openai_settings(database_url=database_url, auth_mode="api-key"))
    as_a = {"authorization": f"Bearer {key_a}"}
    as_b = {"authorization": f"Bearer {key_b}"}
    with TestClient(app) as client:
        mine = client.post("/conversations", json={"title": "a"}, headers=as_a).json()["id"]
        for method in ("GET", "PATCH", "DELETE"):
            kwargs: dict[str, Any] = {"json": {"title": "x"}} if method == "PATCH" else {}
            response = client.request(method, f"/conversations/{mine}", headers=as_b, **kwargs)
            _error(response, 404, "not_found")
        assert client.get("/conversations", headers=as_b).json()["data"] == []
        assert client.get("/conversations").status_code == 401
        listed = client.get("/conversations", headers=as_a).json()["data"]
        assert [c["id"] for c in listed] == [mine]


def test_error_shapes_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    by_id = paths["/conversations/{conversation_id}"]
    for method in ("get", "patch", "delete"):
        assert {"404", "422"} <= set(by_id[method]["responses"])
        schema = by_id[method]["responses"]["404"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    assert "422" in paths["/conversations"]["post"]["responses"]


def test_stored_tool_messages_are_in_the_openapi_document(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    message = schemas["MessageOut"]
    assert set(message["required"]) == {"id", "role", "content", "created_at"}
    assert message["properties"]["role"]["enum"] == ["user", "assistant", "tool"]
    assert {"tool_calls", "tool_call_id", "name", "error"} <= set(message["properties"])
    assert set(schemas["ToolCallOut"]["required"]) == {"id", "name", "arguments"}
    assert [example["role"] for example in message["examples"]] == ["assistant", "tool"]
