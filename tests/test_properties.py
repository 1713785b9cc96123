"""Property: whatever body a client sends, the service answers 2xx or a documented 4xx, never 5xx.

Hypothesis builds request bodies from arbitrary JSON (unicode with lone surrogates, huge and
non-finite numbers, deep nesting), near-miss chat requests (every field of every request model
replaced by arbitrary values, sizes around the limits) and raw bytes, and posts them through the
real app, SDK and mock upstream transport. Bounded: a fixed number of examples, no per-example
deadline (the machine is shared), no example database written into the checkout.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ClientFactory, openai_settings
from tests.upstream import Upstream, chunks_reply, openai_stream

LIMITS = {"chat_max_messages": 4, "chat_max_message_chars": 300, "chat_max_body_bytes": 8192}
# Every 4xx the OpenAPI document and the README name for a request's own faults.
DOCUMENTED = {
    400: {"invalid_json"},
    413: {"body_too_large"},
    415: {"unsupported_media_type"},
    422: {"invalid_request"},
}
BOUNDED = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Surrogates (category Cs) are left out of st.text() by default: here they are the point.
any_text = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(
    ["", "hi", "\ud800", "x\udfffy", "\ud83d\ude00", "\x00", "é" * 301, "a" * 301]
)
numbers = (
    st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2)
    | st.integers(min_value=-(2**63) - 2, max_value=-(2**63) + 2)
    | st.floats()
    | st.sampled_from([0, 1, 2, -1, 0.2, 1e308, 10**30])
)
scalars = st.none() | st.booleans() | numbers | any_text
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
# Chains deeper than any limit: nesting is what recursive() above rarely reaches.
deep = st.integers(min_value=1, max_value=200).map(lambda n: json.loads("[" * n + "]" * n))
anything = json_values | deep


def maybe(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with any subset of ``fields``, plus now and then an unknown key."""
    return st.fixed_dictionaries({}, optional=fields) | st.fixed_dictionaries(
        {}, optional={**fields, "unknown": anything}
    )


roles = st.sampled_from(["user", "assistant", "system", "tool", "bot"]) | anything
overrides = maybe(
    {
        "temperature": numbers | anything,
        "top_p": numbers | anything,
        "max_tokens": numbers | anything,
        "seed": numbers | anything,
        "stop": any_text | st.lists(any_text, max_size=6) | anything,
    }
)
contexts = maybe({"overrides": overrides | anything, "client": anything}) | anything
messages = maybe({"role": roles, "content": any_text | anything, "context": contexts})
chat_requests = maybe(
    {
        "messages": st.lists(messages, max_size=6) | anything,
        "context": contexts,
        "sessionState": anything,
    }
)
# Near-valid requests, so that the answering path (SDK, encoders, echoed sessionState) runs too.
plain_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60)
valid_overrides = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.floats(0, 2) | st.integers(0, 2),
        "top_p": st.floats(0.01, 1),
        "max_tokens": st.integers(1, 128_000),
        "seed": st.integers(-(2**53 - 1), 2**53 - 1),
        "stop": plain_text | st.lists(plain_text, min_size=1, max_size=4),
    },
)
near_valid = st.fixed_dictionaries(
    {
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant", "system"]), "content": any_text}
            ),
            min_size=1,
            max_size=5,
        )
    },
    optional={
        "context": st.fixed_dictionaries({}, optional={"overrides": valid_overrides}),
        "sessionState": anything,
    },
)
content_types = st.sampled_from(
    ["application/json"] * 4 + ["application/json; charset=utf-8", "text/plain", ""]
)


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()  # ASCII: lone surrogates go out as \\udxxx escapes


bodies = (
    near_valid.map(encoded)
    | near_valid.map(encoded)
    | chat_requests.map(encoded)
    | anything.map(encoded)
    | st.binary(max_size=64)
    | chat_requests.map(lambda v: encoded(v).replace(b"}", b"", 1))
)


def check_answer(status: int, text: str, content_type: str) -> None:
    assert status < 500, text[:500]
    if status >= 400:
        error = json.loads(text)["error"]
        assert error["code"] in DOCUMENTED.get(status, set()), (status, error)
        return
    assert status == 200
    if content_type.startswith("application/json"):
        assert json.loads(text)["message"]["role"] == "assistant"
    else:
        final = json.loads(text.strip().splitlines()[-1].removeprefix("data: "))
        assert "error" not in final, final


def test_every_body_gets_2xx_or_a_documented_4xx(client_for: ClientFactory) -> None:
    upstream = Upstream([chunks_reply(openai_stream("Fine", "."))])
    with client_for(upstream, openai_settings(**LIMITS)) as client:

        @BOUNDED
        @given(
            body=bodies,
            route=st.sampled_from(["/chat", "/chat/stream"]),
            content_type=content_types,
            sse=st.booleans(),
        )
        def posts(body: bytes, route: str, content_type: str, sse: bool) -> None:
            headers = {"content-type": content_type}
            if sse:
                headers["accept"] = "text/event-stream"
            response = client.post(route, content=body, headers=headers)
            check_answer(response.status_code, response.text, response.headers["content-type"])

        posts()


ids = any_text | st.sampled_from(["a", "b", "a"]) | anything
batch_items = near_valid.flatmap(
    lambda body: st.fixed_dictionaries({"id": ids}).map(
        lambda extra: {**{k: v for k, v in body.items() if k != "sessionState"}, **extra}
    )
)
batches = maybe({"items": st.lists(batch_items | chat_requests, max_size=4) | anything})


def test_every_batch_gets_200_or_a_documented_4xx(client_for: ClientFactory) -> None:
    upstream = Upstream([chunks_reply(openai_stream("Fine", "."))])
    with client_for(upstream, openai_settings(**LIMITS)) as client:

        @BOUNDED
        @given(body=batches.map(encoded) | anything.map(encoded), ndjson=st.booleans())
        def posts(body: bytes, ndjson: bool) -> None:
            headers = {"content-type": "application/json"}
            if ndjson:
                headers["accept"] = "application/x-ndjson"
            response = client.post("/batch", content=body, headers=headers)
            assert response.status_code < 500, response.text[:500]
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["code"] in DOCUMENTED.get(response.status_code, set()), error
                return
            lines = response.text.splitlines() if ndjson else None
            results = [json.loads(line) for line in lines] if lines else response.json()["items"]
            for result in results:
                # No item ever fails here but for the server's own limits (never a 5xx bug).
                assert "message" in result or result["error"]["code"] != "internal_error"

        posts()
