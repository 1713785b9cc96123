"""The embedded embedder: all-MiniLM-L6-v2 run in-process by llama.cpp, no network, no torch.

Like the embedded chat model, the llama.cpp context is not thread-safe, so one worker thread owns
it. MiniLM was trained on at most 256 word pieces; a longer text is embedded in windows of that
size whose mean (by length) is the text's vector, so no part of a chunk is cut off.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chatbackend.retrieval import minilm_gguf
from chatbackend.retrieval.embedder import Vector

logger = logging.getLogger("chatbackend.retrieval")

MODEL = f"embedded/{minilm_gguf.MODEL_NAME}"
DIMENSIONS = 384
WINDOW_TOKENS = 256


class EmbeddedEmbedder:
    """Loaded on first use (the first start converts the weights, a few seconds, once)."""

    model = MODEL
    dimensions = DIMENSIONS

    def __init__(self, *, cache_dir: Path, threads: int) -> None:
        self._cache_dir = cache_dir
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
        self._engine: _Engine | None = None
        self._loading = asyncio.Lock()

    async def load(self) -> None:
        async with self._loading:
            if self._engine is not None:
                return
            started = time.perf_counter()
            self._engine = await asyncio.get_running_loop().run_in_executor(
                self._executor, _Engine.load, self._cache_dir, self._threads
            )
            logger.info("loaded embedder %s in %.2f s", MODEL, time.perf_counter() - started)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        await self.load()
        assert self._engine is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._engine.embed, list(texts))

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text`` (after ``load``; the tokenizer only reads the vocabulary)."""
        assert self._engine is not None, "load() first"
        return len(self._engine.tokenize(text))

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True)


class _Engine:
    def __init__(self, llama: object) -> None:
        self._llama = llama

    @classmethod
    def load(cls, cache_dir: Path, threads: int) -> _Engine:
        from llama_cpp import Llama

        path = minilm_gguf.gguf_path(cache_dir)
        llama = Llama(
            model_path=str(path),
            embedding=True,
            n_ctx=WINDOW_TOKENS * 2,
            n_batch=WINDOW_TOKENS * 2,
            n_ubatch=WINDOW_TOKENS * 2,
            n_threads=threads,
            verbose=False,
        )
        return cls(llama)

    def tokenize(self, text: str) -> list[int]:
        tokens: list[int] = self._llama.tokenize(  # type: ignore[attr-defined]
            text.encode(), add_bos=False, special=False
        )
        return tokens

    def embed(self, texts: list[str]) -> list[Vector]:
        return [self._embed_one(text) for text in texts]

    def _embed_one(self, text: str) -> Vector:
        tokens = self.tokenize(text)
        size = WINDOW_TOKENS - 2  # [CLS] and [SEP]
        windows = [tokens[i : i + size] for i in range(0, len(tokens), size)] or [[]]
        total = [0.0] * DIMENSIONS
        for window in windows:
            vector = self._llama.embed(  # type: ignore[attr-defined]
                self._detokenize(window) if len(windows) > 1 else text
            )
            for i, value in enumerate(vector):
                total[i] += value * max(len(window), 1)
        return _normalized(total)

    def _detokenize(self, tokens: list[int]) -> str:
        raw: bytes = self._llama.detokenize(tokens)  # type: ignore[attr-defined]
        return raw.decode(errors="ignore")


def _normalized(vector: list[float]) -> Vector:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
