"""Bodies that cannot be sent on are refused before any upstream call, each with its own code.

Lone surrogates (``"\\ud800"``: a client that cut text inside an emoji), numbers given as strings or
booleans, bodies that do not parse, and bodies that are not JSON at all. Each case checks the
status, the error object, the request-log line and that the upstream was never called.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ClientFactory
from tests.test_request_log import _Lines
from tests.upstream import Upstream, chunks_reply, openai_stream

JSON = {"content-type": "application/json"}
USER = '{"role":"user","content":"hi"}'


def body(*, messages: str = f"[{USER}]", **fields: str) -> bytes:
    """A request body with ``fields`` given as raw JSON text (so escapes stay as written)."""
    parts = [f'"messages":{messages}', *(f'"{name}":{value}' for name, value in fields.items())]
    return ("{" + ",".join(parts) + "}").encode()


@pytest.fixture
def request_lines() -> Iterator[_Lines]:
    logger = logging.getLogger("chatbackend.requests")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def post(
    client_for: ClientFactory, payload: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], Upstream]:
    upstream = Upstream([chunks_reply(openai_stream("unused"))])
    with client_for(upstream) as client:
        response = client.post(
            "/chat", content=payload, headers=JSON if headers is None else headers
        )
    return response.status_code, response.json(), upstream


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        (body(messages='[{"role":"user","content":"cut \\ud83d"}]'), "messages[0].content"),
        (body(messages='[{"role":"user","content":"\\udc00 low"}]'), "messages[0].content"),
        (body(sessionState='{"draft":["ok","x\\ud800y"]}'), "sessionState: "),
        (body(sessionState='"\\ud800"'), "sessionState: "),
        (body(sessionState='{"\\ud800":1}'), "sessionState: "),
        (body(context='{"client":{"note":"\\udfff"}}'), "context: "),
        (body(context='{"overrides":{"stop":["\\ud800"]}}'), "context.overrides.stop: "),
        (body(context='{"overrides":{"stop":"\\ud800"}}'), "context.overrides.stop: "),
        (
            body(messages='[{"role":"user","content":"hi","context":{"k":"\\ud800"}}]'),
            "messages[0].context.k: ",
        ),
    ],
)
def test_a_lone_surrogate_anywhere_is_422_before_any_upstream_call(
    client_for: ClientFactory, request_lines: _Lines, payload: bytes, names: str
) -> None:
    status, error, upstream = post(client_for, payload)
    assert status == 422
    assert error["error"]["code"] == "invalid_request"
    assert error["error"]["message"].startswith(names)
    assert "surrogate" in error["error"]["message"]
    assert upstream.requests == []
    (line,) = request_lines.lines()
    assert (line["status"], line["error"], line["upstream_calls"]) == (422, "invalid_request", 0)


def test_a_paired_surrogate_escape_is_an_ordinary_character(client_for: ClientFactory) -> None:
    payload = body(
        messages='[{"role":"user","content":"\\ud83d\\ude00"}]', sessionState='"\\ud83d\\ude00"'
    )
    status, _, upstream = post(client_for, payload)
    assert status == 200
    assert upstream.last_json()["messages"][-1]["content"] == "\U0001f600"


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ('{"seed":false}', "seed", "integer"),
        ('{"seed":"7"}', "seed", "integer"),
        ('{"seed":7.5}', "seed", "integer"),
        ('{"max_tokens":"5"}', "max_tokens", "integer"),
        ('{"max_tokens":true}', "max_tokens", "integer"),
        ('{"temperature":"0.2"}', "temperature", "number"),
        ('{"temperature":true}', "temperature", "number"),
        ('{"top_p":"1"}', "top_p", "number"),
        ('{"temperature":NaN}', "temperature", "number"),
        ('{"seed":99999999999999999999}', "seed", "integer"),
    ],
)
def test_numbers_are_only_json_numbers(
    client_for: ClientFactory, overrides: str, field: str, expected: str
) -> None:
    status, error, upstream = post(client_for, body(context=f'{{"overrides":{overrides}}}'))
    assert status == 422
    assert error["error"]["message"].startswith(f"context.overrides.{field}: ")
    assert expected in error["error"]["message"] or "less than" in error["error"]["message"]
    assert upstream.requests == []


def test_an_integer_temperature_is_a_number(client_for: ClientFactory) -> None:
    status, _, upstream = post(client_for, body(context='{"overrides":{"temperature":1}}'))
    assert status == 200
    assert upstream.last_json()["temperature"] == 1


def test_the_openapi_schema_says_what_is_accepted(client_for: ClientFactory) -> None:
    with client_for(Upstream([chunks_reply(openai_stream("unused"))])) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    overrides = schemas["Overrides"]["properties"]
    kinds = {name: [t.get("type") for t in spec["anyOf"]] for name, spec in overrides.items()}
    assert kinds["temperature"] == kinds["top_p"] == ["number", "null"]
    assert kinds["max_tokens"] == kinds["seed"] == ["integer", "null"]
    assert overrides["seed"]["anyOf"][0] == {
        "type": "integer",
        "minimum": -(2**53 - 1),
        "maximum": 2**53 - 1,
    }


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        (body(sessionState="[" * 65 + "]" * 65), "sessionState: is nested deeper than 64"),
        (body(sessionState=str(2**53)), "sessionState: is an integer outside the range JSON"),
        (body(sessionState="1e30"), "sessionState: is an integer outside the range JSON"),
        (body(context='{"trace":{"n":-9223372036854775809}}'), "context: is an integer outside"),
        (body(context='{"trace":{"n":NaN}}'), "context: is not a finite number at .trace.n"),
    ],
)
def test_free_form_json_must_be_writable_on_the_way_back(
    client_for: ClientFactory, payload: bytes, names: str
) -> None:
    status, error, upstream = post(client_for, payload)
    assert (status, error["error"]["code"]) == (422, "invalid_request")
    assert error["error"]["message"].startswith(names)
    assert upstream.requests == []


def test_the_deepest_and_largest_accepted_session_state_is_echoed(
    client_for: ClientFactory,
) -> None:
    state = json.loads("[" * 63 + f"[{2**53 - 1}, {-(2**53 - 1)}, 1.5e-300, 5.0]" + "]" * 63)
    upstream = Upstream([chunks_reply(openai_stream("ok"))])
    with client_for(upstream) as client:
        answer = client.post("/chat", json={"messages": [json.loads(USER)], "sessionState": state})
        streamed = client.post(
            "/chat/stream", json={"messages": [json.loads(USER)], "sessionState": state}
        )
    assert answer.status_code == streamed.status_code == 200
    assert answer.json()["sessionState"] == state
    assert json.loads(streamed.text.splitlines()[-1])["sessionState"] == state


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"messages":[{"role":"user","content":"\xff\xfe"}]}', id="invalid-utf8"),
        pytest.param(body(sessionState="[" * 100_000 + "]" * 100_000), id="deep-nesting"),
        pytest.param(gzip.compress(body()), id="gzip"),
        pytest.param(body(sessionState="9" * 5000), id="huge-integer"),
        pytest.param(b'{"messages": [}', id="syntax"),
    ],
)
def test_a_body_that_does_not_parse_is_400_invalid_json(
    client_for: ClientFactory, request_lines: _Lines, payload: bytes
) -> None:
    status, error, upstream = post(client_for, payload)
    assert (status, error["error"]["code"]) == (400, "invalid_json")
    assert upstream.requests == []
    (line,) = request_lines.lines()
    assert (line["status"], line["error"]) == (400, "invalid_json")


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "multipart/form-data; boundary=x"},
        {},
    ],
)
def test_a_body_that_is_not_json_is_415(
    client_for: ClientFactory, request_lines: _Lines, headers: dict[str, str]
) -> None:
    status, error, upstream = post(client_for, body(), headers)
    assert (status, error["error"]["code"]) == (415, "unsupported_media_type")
    assert upstream.requests == []
    (line,) = request_lines.lines()
    assert (line["status"], line["error"]) == (415, "unsupported_media_type")


def test_a_json_subtype_is_json(client_for: ClientFactory) -> None:
    status, _, upstream = post(client_for, body(), {"content-type": "application/vnd.chat+json"})
    assert status == 200
    assert len(upstream.requests) == 1
