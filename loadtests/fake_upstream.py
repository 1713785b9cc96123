"""A fake OpenAI-compatible upstream: a real HTTP server that costs almost nothing per stream.

It answers ``POST /v1/chat/completions`` (OpenAI, GitHub Models, vLLM, Ollama), the Azure
deployment path ``/openai/deployments/{name}/chat/completions`` and Azure's GA ``/openai/v1/``
path, with real SSE (role chunk, content chunks, finish chunk, usage chunk when
``stream_options.include_usage``, ``data: [DONE]``) or one JSON completion.

Knobs, most specific first:

* per request, the ``X-Fake-Upstream`` header: ``ttft=0.2;itl=0.02;tokens=50;fault=rate_limit``;
  ``answer`` replaces the generated words with a given text (one token per word, with the
  whitespace before it; ``tokens`` is then its word count), e.g. untrusted Markdown for a page;
* the next N requests, queued with ``POST /_fake/next`` (``{"count": 1, "fault": "server_error"}``):
  the way for a test that goes through the backend, which cannot choose the upstream's headers;
* the server's defaults, replaced with ``PUT /_fake/defaults`` or the command line.

Faults: ``rate_limit`` (429 with ``Retry-After``), ``server_error`` (500), ``hang`` (no answer for
``hang`` seconds), ``drop`` (the connection is cut after ``drop_after`` content chunks), ``trickle``
(the stream's bytes arrive ``trickle_bytes`` at a time, ``itl`` apart) and ``content_filter``
(Azure's 400 refusal).

Tool calls: ``tool_calls=calculate,get_current_time`` answers with those calls in parallel
(``finish_reason: "tool_calls"``), their fragments split at awkward points, until the request's
history holds ``tool_rounds`` rounds of calls after its last user message; then the text answer
comes, its first chunk quoting the ``tool`` results it was sent (``Results: 12.75 | ....``).
``tool_arguments`` replaces every call's arguments (e.g. invalid ones). A request with
``tool_choice: "none"`` gets the text answer, as from OpenAI.

``GET /_fake/stats`` counts requests, completed and abandoned streams (the client went away before
``[DONE]``: the proof that a disconnect reached the upstream), streams in flight and TCP
connections opened (the proof that a client reuses its pool). ``POST /_fake/reset`` clears them.

Run it: ``python -m loadtests.fake_upstream --port 9000 --ttft 0.2 --itl 0.02 --tokens 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import re
import threading
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Fault = Literal["none", "rate_limit", "server_error", "hang", "drop", "trickle", "content_filter"]
FAULTS: tuple[str, ...] = Fault.__args__  # type: ignore[attr-defined]
KNOB_HEADER = "X-Fake-Upstream"
CREATED = 1764100000
WORDS = (
    "The quick brown fox jumps over the lazy dog while a patient model streams its answer "
    "one token at a time so that the backend under test has something real to carry."
).split()
_FILTER_SAFE = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


@dataclass(frozen=True, slots=True)
class Knobs:
    """How one answer behaves. Times are in seconds."""

    ttft: float = 0.0
    itl: float = 0.0
    tokens: int = 20
    fault: Fault = "none"
    retry_after: float = 1.0
    hang: float = 600.0
    drop_after: int = 2
    trickle_bytes: int = 7
    # Tool calls: names to call in parallel (comma-separated), for ``tool_rounds`` rounds,
    # each call with ``tool_arguments`` (JSON text) or a built-in example for the name.
    tool_calls: str = ""
    tool_rounds: int = 1
    tool_arguments: str = ""
    answer: str = ""

    def replace(self, values: dict[str, Any]) -> Knobs:
        """These knobs with ``values`` (strings from a header, or JSON values) applied."""
        fields = {f.name: f.type for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if name not in fields:
                raise ValueError(f"unknown knob {name!r}")
            if name == "fault":
                if value not in FAULTS:
                    raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
                changes[name] = value
            elif fields[name] == "str":
                changes[name] = str(value)
            elif fields[name] == "int":
                changes[name] = int(value)
            elif fields[name] == "str":
                changes[name] = str(value)
            else:
                changes[name] = float(value)
        return dataclasses.replace(self, **changes)

    @classmethod
    def parse_header(cls, header: str, base: Knobs) -> Knobs:
        pairs = (item.split("=", 1) for item in header.split(";") if item.strip())
        return base.replace({k.strip(): v.strip() for k, v in pairs})


@dataclass
class Stats:
    requests: int = 0
    streams: int = 0
    completed: int = 0
    abandoned: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    connections: int = 0
    content_chunks: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    otlp_exports: Counter[str] = field(default_factory=Counter)
    otlp_bytes: int = 0
    abandoned_after: deque[int] = field(default_factory=lambda: deque(maxlen=1000))

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["faults"] = dict(self.faults)
        values["otlp_exports"] = dict(self.otlp_exports)
        values["abandoned_after"] = list(self.abandoned_after)
        return values


class FakeUpstream:
    """The server: an aiohttp application plus the knobs and counters it shares with tests."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, backlog: int = 4096, **defaults: Any
    ) -> None:
        self.host = host
        self.port = port
        self.backlog = backlog
        self.defaults = Knobs().replace(defaults)
        self.stats = Stats()
        self._queued: deque[Knobs] = deque()
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None

    # -- control, usable from any thread -------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``CHAT_BASE_URL`` / ``OPENAI_BASE_URL``)."""
        return f"{self.origin}/v1"

    @property
    def origin(self) -> str:
        """``scheme://host:port``: what ``AZURE_OPENAI_ENDPOINT`` would be."""
        return f"http://{self.host}:{self.port}"

    def configure(self, **knobs: Any) -> None:
        """Replace the defaults for every later request."""
        with self._lock:
            self.defaults = Knobs().replace(knobs)

    def queue(self, count: int = 1, **knobs: Any) -> None:
        """Make the next ``count`` requests behave as ``knobs`` (over the defaults)."""
        with self._lock:
            self._queued.extend([self.defaults.replace(knobs)] * count)

    def reset(self) -> None:
        with self._lock:
            self._queued.clear()
            in_flight = self.stats.in_flight
            self.stats = Stats(in_flight=in_flight, max_in_flight=in_flight)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self.stats.as_dict()

    # -- lifecycle ----------------------------------------------------------------------------
    def application(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/openai/v1/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        # An OTLP/HTTP sink, so a backend under test can export its telemetry here for real.
        for signal in ("traces", "metrics", "logs"):
            app.router.add_post(f"/v1/{signal}", self._otlp)
        app.router.add_get("/_fake/stats", self._get_stats)
        app.router.add_post("/_fake/reset", self._reset)
        app.router.add_put("/_fake/defaults", self._put_defaults)
        app.router.add_post("/_fake/next", self._post_next)
        return app

    async def start(self) -> None:
        """Listen; counts every TCP connection the server accepts."""
        self._runner = web.AppRunner(self.application(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        protocol_factory = self._runner.server

        def accept() -> asyncio.BaseProtocol:
            self.stats.connections += 1
            assert protocol_factory is not None
            return protocol_factory()

        self._server = await asyncio.get_running_loop().create_server(
            accept, self.host, self.port, backlog=self.backlog, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @classmethod
    @contextlib.contextmanager
    def running_in_thread(cls, host: str = "127.0.0.1", **defaults: Any) -> Iterator[FakeUpstream]:
        """The server on its own event loop in a daemon thread, for the life of the block."""
        upstream = cls(host, **defaults)
        loop = asyncio.new_event_loop()
        started = threading.Event()
        stopped = asyncio.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            try:
                await upstream.start()
            except BaseException as exc:
                failure.append(exc)
                raise
            finally:
                started.set()
            await stopped.wait()
            await upstream.stop()

        thread = threading.Thread(
            target=loop.run_until_complete, args=(serve(),), name="fake-upstream", daemon=True
        )
        thread.start()
        started.wait(10)
        if failure:
            raise failure[0]
        try:
            yield upstream
        finally:
            loop.call_soon_threadsafe(stopped.set)
            thread.join(10)
            loop.close()

    # -- control endpoints --------------------------------------------------------------------
    async def _otlp(self, request: web.Request) -> web.Response:
        """Accept an OTLP export: an empty protobuf ``Export*ServiceResponse`` means success."""
        body = await request.read()
        self.stats.otlp_exports[request.path.rsplit("/", 1)[-1]] += 1
        self.stats.otlp_bytes += len(body)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def _get_stats(self, _: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def _reset(self, _: web.Request) -> web.Response:
        self.reset()
        return web.json_response(self.snapshot())

    async def _put_defaults(self, request: web.Request) -> web.Response:
        try:
            self.configure(**await _json_object(request))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(dataclasses.asdict(self.defaults))

    async def _post_next(self, request: web.Request) -> web.Response:
        values = await _json_object(request)
        count = int(values.pop("count", 1))
        try:
            self.queue(count, **values)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response({"queued": len(self._queued)})

    # -- the chat completion --------------------------------------------------------------------
    def _knobs_for(self, request: web.Request) -> Knobs:
        with self._lock:
            base = self._queued.popleft() if self._queued else self.defaults
        header = request.headers.get(KNOB_HEADER)
        return Knobs.parse_header(header, base) if header else base

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests += 1
        try:
            knobs = self._knobs_for(request)
            body = await request.json()
        except (ValueError, json.JSONDecodeError) as exc:
            return _error(400, "invalid_request_error", f"bad request: {exc}")
        model = request.match_info.get("deployment") or str(body.get("model") or "fake-model")
        if knobs.fault != "none":
            self.stats.faults[knobs.fault] += 1
        refusal = await self._refusal(knobs)
        if refusal is not None:
            return refusal
        azure = request.path.startswith("/openai/")
        messages = body["messages"]
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in messages)
        token = _token_source(knobs)
        completion = _completion_tokens(knobs, body)
        calls = _tool_calls(knobs, messages) if body.get("tool_choice") != "none" else []
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if not body.get("stream"):
            await asyncio.sleep(knobs.ttft + knobs.itl * max(completion - 1, 0))
            return web.json_response(_completion(model, completion, prompt_tokens, calls, token))
        if calls:
            chunks = _tool_call_chunks(model, calls, prompt_tokens, azure, include_usage)
        else:
            lead = _tool_results_lead(messages)
            chunks = _sse_chunks(
                model, completion, prompt_tokens, azure, include_usage, lead, token
            )
        return await self._stream(request, knobs, chunks)

    async def _refusal(self, knobs: Knobs) -> web.Response | None:
        if knobs.fault == "rate_limit":
            return _error(
                429,
                "rate_limit_exceeded",
                "Rate limit reached. Please retry later.",
                headers={"Retry-After": f"{knobs.retry_after:g}"},
            )
        if knobs.fault == "server_error":
            return _error(500, "server_error", "The server had an error processing your request.")
        if knobs.fault == "content_filter":
            return _content_filter_refusal()
        if knobs.fault == "hang":
            try:
                await asyncio.sleep(knobs.hang)
            except asyncio.CancelledError:
                self.stats.abandoned += 1
                self.stats.abandoned_after.append(0)
                raise
            return _error(504, "timeout", "The fake upstream hung and gave up.")
        return None

    async def _stream(
        self, request: web.Request, knobs: Knobs, chunks: Iterator[tuple[bytes, bool]]
    ) -> web.StreamResponse:
        stats = self.stats
        stats.streams += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        sent = 0
        finished = False
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            await asyncio.sleep(knobs.ttft)
            async for data, is_content in _paced(chunks, knobs):
                if data is _CUT:
                    _cut(request)
                    return response
                if data == _DONE:
                    # With the end of the body, so a client that stops reading at ``[DONE]``
                    # finds the body complete and can reuse the connection.
                    await response.write_eof(data)
                    break
                await response.write(data)
                sent += is_content
            else:
                await response.write_eof()
            finished = True
            stats.completed += 1
        finally:
            stats.in_flight -= 1
            stats.content_chunks += sent
            if not finished and knobs.fault != "drop":
                stats.abandoned += 1
                stats.abandoned_after.append(sent)
        return response


_CUT = b""
_DONE = b"data: [DONE]\n\n"


async def _paced(
    chunks: Iterator[tuple[bytes, bool]], knobs: Knobs
) -> AsyncIterator[tuple[bytes, bool]]:
    """The stream's writes, paced by the inter-token latency; ``_CUT`` where a drop happens."""
    content_sent = 0
    for data, is_content in chunks:
        if is_content:
            if knobs.fault == "drop" and content_sent >= knobs.drop_after:
                yield _CUT, False
                return
            if content_sent and knobs.itl and knobs.fault != "trickle":
                await asyncio.sleep(knobs.itl)
            content_sent += 1
        if knobs.fault == "trickle":
            for start in range(0, len(data), knobs.trickle_bytes):
                await asyncio.sleep(knobs.itl)
                end = start + knobs.trickle_bytes
                yield data[start:end], is_content and end >= len(data)
        else:
            yield data, is_content


def _cut(request: web.Request) -> None:
    """Drop the connection without ending the chunked body, as a crashing upstream would."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def _completion_tokens(knobs: Knobs, body: dict[str, Any]) -> int:
    available = len(_answer_tokens(knobs.answer)) if knobs.answer else knobs.tokens
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    return min(available, int(limit)) if limit else available


def _word(index: int) -> str:
    return ("" if index == 0 else " ") + WORDS[index % len(WORDS)]


def _answer_tokens(answer: str) -> list[str]:
    return re.findall(r"\s*\S+", answer)


def _token_source(knobs: Knobs) -> Callable[[int], str]:
    """The text of token ``index``: the generated words, or the ``answer`` knob's words."""
    return _answer_tokens(knobs.answer).__getitem__ if knobs.answer else _word


def _sse_chunks(
    model: str,
    tokens: int,
    prompt_tokens: int,
    azure: bool,
    include_usage: bool,
    lead: str | None = None,
    token: Callable[[int], str] = _word,
) -> Iterator[tuple[bytes, bool]]:
    """``(bytes, is_content)`` for each SSE event; content chunks come from one template.

    ``lead`` replaces the first word (it quotes the tool results the request carried).
    """
    head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": CREATED}
    base = {**head, "model": model, "system_fingerprint": "fp_fake"}
    extra = {"content_filter_results": _FILTER_SAFE} if azure else {}
    if azure:
        prompt_filter = {**head, "model": "", "choices": [], "prompt_filter_results": []}
        prompt_filter["prompt_filter_results"] = [
            {"prompt_index": 0, "content_filter_results": _FILTER_SAFE}
        ]
        yield _event(prompt_filter), False
    role = {"role": "assistant", "content": "", "refusal": None}
    yield _event({**base, "choices": [_choice(role, None, {})]}), False
    marker = "\x00"
    template = _event({**base, "choices": [_choice({"content": marker}, None, extra)]})
    prefix, suffix = _split(template, marker)
    for index in range(tokens):
        word = lead if index == 0 and lead is not None else token(index)
        text = json.dumps(word)[1:-1].encode()
        yield prefix + text + suffix, True
    yield _event({**base, "choices": [_choice({}, "stop", extra)]}), False
    if include_usage:
        usage = _usage(prompt_tokens, tokens)
        yield _event({**base, "choices": [], "usage": usage}), False
    yield _DONE, False


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


EXAMPLE_ARGUMENTS = {
    "calculate": '{"expression": "(17 * 3) / 4"}',
    "get_current_time": '{"timezone": "Europe/Paris"}',
    "search_documents": '{"query": "How many hearts does an octopus have?", "top_k": 2}',
}
# Argument text is streamed this many characters at a time, so pieces end inside JSON strings.
ARGUMENT_PIECE = 5


def _tool_calls(knobs: Knobs, messages: list[dict[str, Any]]) -> list[ToolCall]:
    """The calls to answer with: none once ``tool_rounds`` rounds are in the conversation."""
    names = [name.strip() for name in knobs.tool_calls.split(",") if name.strip()]
    done = sum(1 for m in _since_last_user(messages) if m.get("tool_calls"))
    if not names or done >= knobs.tool_rounds:
        return []
    return [
        ToolCall(
            id=f"call_fake_{done}_{index}",
            name=name,
            arguments=knobs.tool_arguments or EXAMPLE_ARGUMENTS.get(name, "{}"),
        )
        for index, name in enumerate(names)
    ]


def _since_last_user(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    return messages[users[-1] + 1 :] if users else messages


def _tool_results_lead(messages: list[dict[str, Any]]) -> str | None:
    """``Results: 12.75 | {...}.``: the answer quotes the tool results it was sent."""
    results = [str(m.get("content")) for m in _since_last_user(messages) if m.get("role") == "tool"]
    return f"Results: {' | '.join(results)}." if results else None


def _tool_call_chunks(
    model: str, calls: list[ToolCall], prompt_tokens: int, azure: bool, include_usage: bool
) -> Iterator[tuple[bytes, bool]]:
    """A parallel tool-call answer, split at awkward points as real streams can be.

    Each call's id (and type) comes in one chunk and its name in another; the names of all
    calls share a chunk; the argument text follows ``ARGUMENT_PIECE`` characters at a time,
    the calls' pieces interleaved, so a parser must key every fragment by its ``index``.
    """
    head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": CREATED}
    base = {**head, "model": model, "system_fingerprint": "fp_fake"}
    extra = {"content_filter_results": {}} if azure else {}

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _event({**base, "choices": [_choice(delta, finish, extra)]})

    if azure:
        prompt_filter = {**head, "model": "", "choices": [], "prompt_filter_results": []}
        prompt_filter["prompt_filter_results"] = [
            {"prompt_index": 0, "content_filter_results": _FILTER_SAFE}
        ]
        yield _event(prompt_filter), False
    yield event({"role": "assistant", "content": None, "refusal": None}), False
    for index, call in enumerate(calls):
        opening = {"index": index, "id": call.id, "type": "function", "function": {"arguments": ""}}
        yield event({"tool_calls": [opening]}), True
    names = [{"index": i, "function": {"name": c.name}} for i, c in enumerate(calls)]
    yield event({"tool_calls": names}), True
    pieces = [
        [c.arguments[at : at + ARGUMENT_PIECE] for at in range(0, len(c.arguments), ARGUMENT_PIECE)]
        for c in calls
    ]
    for step in range(max((len(p) for p in pieces), default=0)):
        for index, call_pieces in enumerate(pieces):
            if step < len(call_pieces):
                fragment = {"index": index, "function": {"arguments": call_pieces[step]}}
                yield event({"tool_calls": [fragment]}), True
    yield event({}, "tool_calls"), False
    if include_usage:
        completion = sum(len(c.arguments) // 4 + 1 for c in calls)
        yield _event({**base, "choices": [], "usage": _usage(prompt_tokens, completion)}), False
    yield _DONE, False


def _split(template: bytes, marker: str) -> tuple[bytes, bytes]:
    escaped = json.dumps(marker)[1:-1].encode()
    prefix, suffix = template.split(escaped, 1)
    return prefix, suffix


def _choice(delta: dict[str, Any], finish: str | None, extra: dict[str, Any]) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, **extra}


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(
    model: str,
    tokens: int,
    prompt_tokens: int,
    calls: list[ToolCall],
    token: Callable[[int], str] = _word,
) -> dict[str, Any]:
    if calls:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in calls
            ],
        }
    else:
        text = "".join(token(i) for i in range(tokens))
        message = {"role": "assistant", "content": text, "refusal": None}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": _usage(prompt_tokens, tokens),
    }


def _error(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _content_filter_refusal() -> web.Response:
    """Azure's answer when the prompt itself trips the content filter."""
    filtered = {**_FILTER_SAFE, "violence": {"filtered": True, "severity": "high"}}
    body = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": filtered,
            },
        }
    }
    return web.json_response(body, status=400)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        value = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    for knob in dataclasses.fields(Knobs):
        parser.add_argument(f"--{knob.name.replace('_', '-')}", dest=knob.name)
    args = vars(parser.parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    knobs = {k: v for k, v in args.items() if v is not None}
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_serve(FakeUpstream(host, port, **knobs)))


async def _serve(upstream: FakeUpstream) -> None:
    await upstream.start()
    print(f"listening on {upstream.origin}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await upstream.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
