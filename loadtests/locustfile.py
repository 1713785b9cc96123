"""Locust load test for a running chatbackend: streaming and JSON chat users with LLM metrics.

Besides one row per route, each answer reports, as rows of request type ``LLM`` in the web UI,
the CSV files and the HTML report:

* ``time to first token``: ms from sending the request to the first content line;
* ``inter-token gap``: ms between two content lines (each line may carry several tokens);
* ``tokens/s``: completion tokens (from the answer's ``usage``) per second of generation; the
  "ms" columns of this row hold tokens per second, not milliseconds.

Failures are named by the protocol's error code (``429 rate_limited``, ``503 overloaded``, a
mid-stream ``upstream_incomplete``), so Locust's failure table counts errors by code.

Run it headless (``make loadtest HOST=https://... USERS=50 DURATION=2m``) or with the web UI:
``locust -f loadtests/locustfile.py --host https://...``. Options of its own:
``--prompts FILE`` (a JSON list of prompts, or one prompt per line), ``--think-time MIN,MAX``
(seconds between a user's requests) and ``--max-tokens N``.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, events, task
from locust.env import Environment

NDJSON = "application/x-ndjson"
DEFAULT_PROMPTS = [
    "What is the capital of France?",
    "Summarise the plot of Hamlet in three sentences.",
    "Write a short poem about the sea.",
    "Explain how a hash map works, with an example in Python.",
    "List five tips for writing clear technical documentation, with a sentence on each.",
]


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--prompts", default="", help="JSON list, or one prompt per line")
    parser.add_argument("--think-time", default="0.5,2", help="MIN,MAX seconds between requests")
    parser.add_argument("--max-tokens", type=int, default=0, help="0: the model's own limit")


def _prompts(path: str) -> list[str]:
    if not path:
        return DEFAULT_PROMPTS
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return [str(prompt) for prompt in json.loads(text)]
    return [line.strip() for line in text.splitlines() if line.strip()]


class ChatUser(FastHttpUser):
    """Base: picks a prompt from the mix and reports the LLM metrics of each answer."""

    abstract = True

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.prompts = _prompts(getattr(options, "prompts", ""))
        low, high = (float(x) for x in getattr(options, "think_time", "0.5,2").split(","))
        self.think = (low, high)
        self.max_tokens = int(getattr(options, "max_tokens", 0))

    def wait_time(self) -> float:
        return random.uniform(*self.think)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": random.choice(self.prompts)}]
        }
        if self.max_tokens:
            body["context"] = {"overrides": {"max_tokens": self.max_tokens}}
        return body

    def metric(self, name: str, value: float) -> None:
        _metric(self.environment, name, value)


class StreamingChatUser(ChatUser):
    """``POST /chat/stream``, read line by line as the answer arrives."""

    weight = 3

    @task
    def stream(self) -> None:
        sent = time.perf_counter()
        with self.client.post(
            "/chat/stream",
            json=self.body(),
            headers={"Accept": NDJSON},
            stream=True,
            catch_response=True,
            name="/chat/stream",
        ) as response:
            if response.status_code != 200:
                response.failure(_error_name(response.status_code, response.text))
                return
            first: float | None = None
            last = sent
            context: dict[str, Any] = {}
            # geventhttpclient's own response reads exactly one line per call; Locust's
            # iter_content would block for a whole buffer and hide the first token.
            reader = response._response
            while line := reader.readline(b"\n"):
                event = json.loads(line)
                now = time.perf_counter()
                if "error" in event:
                    response.failure(_error_name(200, line))
                    return
                if event.get("delta", {}).get("content"):
                    if first is None:
                        first = now
                        self.metric("time to first token", (now - sent) * 1000)
                    else:
                        self.metric("inter-token gap", (now - last) * 1000)
                    last = now
                context = event.get("context") or context
            if first is None or not context:
                response.failure("incomplete answer")
                return
            usage = context.get("usage") or {}
            tokens = usage.get("completion_tokens")
            if tokens and last > first:
                self.metric("tokens/s", tokens / (last - first))
            response.success()


class JsonChatUser(ChatUser):
    """``POST /chat``: the whole answer in one JSON object."""

    weight = 1

    @task
    def chat(self) -> None:
        sent = time.perf_counter()
        with self.client.post(
            "/chat", json=self.body(), catch_response=True, name="/chat"
        ) as response:
            if response.status_code != 200:
                response.failure(_error_name(response.status_code, response.text))
                return
            elapsed = time.perf_counter() - sent
            usage = (response.json().get("context") or {}).get("usage") or {}
            if tokens := usage.get("completion_tokens"):
                self.metric("tokens/s", tokens / elapsed)
            response.success()


def _metric(environment: Environment, name: str, value: float) -> None:
    environment.events.request.fire(
        request_type="LLM",
        name=name,
        response_time=value,
        response_length=0,
        exception=None,
        context={},
    )


def _error_name(status: int, body: str | bytes | None) -> str:
    """``"429 rate_limited"``: the failure's name is its status and protocol error code."""
    try:
        code = json.loads(body or b"")["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = "no protocol error body"
    return f"{status} {code}"
