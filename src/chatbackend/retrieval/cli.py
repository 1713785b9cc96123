"""``python -m chatbackend ingest DIR`` and ``python -m chatbackend reembed``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
from sqlalchemy import select
from tqdm import tqdm

from chatbackend import errors
from chatbackend.access.caller import Caller
from chatbackend.retrieval.embedder import CachedEmbedder
from chatbackend.retrieval.extract import decode, extract, kind_of
from chatbackend.retrieval.factory import build_embedder
from chatbackend.retrieval.models import ChunkRow
from chatbackend.retrieval.service import DocumentService, NewDocument
from chatbackend.retrieval.vector_space import EmbeddingModelChanged, recreate, store_vectors
from chatbackend.settings import Settings, SettingsError, load_settings
from chatbackend.store import Database

SUFFIXES = (".txt", ".text", ".md", ".markdown", ".html", ".htm")
_REEMBED_BATCH = 256


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chatbackend")
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="chunk, embed and store every document in DIR")
    ingest.add_argument("directory", type=Path)
    ingest.add_argument("--owner", help="the API key id that owns them (default: no owner)")
    commands.add_parser("reembed", help="re-embed every stored chunk with the configured model")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "ingest":
            return anyio.run(_ingest, settings, args.directory, Caller(args.owner))
        return anyio.run(reembed, settings)
    except (SettingsError, EmbeddingModelChanged, errors.ChatError) as exc:
        print(f"chatbackend: {exc}", file=sys.stderr)  # noqa: T201 - the line an operator reads
        return 2


async def preflight(settings: Settings) -> None:
    """Refuse to serve when the stored vectors were made by another model (the one line that
    ``EmbeddingModelChanged`` carries, before the server starts)."""
    from chatbackend.retrieval.lifespan import embedded_embedder_installed

    if settings.embedder == "embedded" and not embedded_embedder_installed():
        return
    async with _opened(settings) as (database, embedder):
        await DocumentService(database, embedder, chunk_tokens=1, overlap_tokens=0).start()


@asynccontextmanager
async def _opened(
    settings: Settings, transport: httpx2.AsyncBaseTransport | None = None
) -> AsyncIterator[tuple[Database, CachedEmbedder]]:
    from chatbackend.store import open_configured_database

    database = await open_configured_database(settings)
    embedder = build_embedder(settings, transport=transport)
    try:
        yield database, embedder
    finally:
        await embedder.aclose()
        await database.aclose()


async def _ingest(settings: Settings, directory: Path, owner: Caller) -> int:
    if not directory.is_dir():
        raise SettingsError(f"{directory} is not a directory")
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    chunks = skipped = 0
    async with _opened(settings) as (database, embedder):
        service = DocumentService(
            database,
            embedder,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )
        await service.start()
        with tqdm(files, unit="file", desc="ingest", file=sys.stderr) as bar:
            for path in bar:
                new = _read(path, directory)
                if new is None or not new.text.strip():
                    skipped += 1
                    continue
                chunks += (await service.add(owner, new)).chunks
                bar.set_postfix(chunks=chunks)
    print(  # noqa: T201 - the command's result
        f"ingested {len(files) - skipped} documents ({chunks} chunks) from {directory}"
        + (f"; skipped {skipped} empty or unreadable" if skipped else "")
    )
    return 0


def _read(path: Path, root: Path) -> NewDocument | None:
    try:
        extracted = extract(decode(path.read_bytes()), kind_of(path.name, None))
    except errors.UnsupportedMediaType:
        return None
    source = str(path.relative_to(root))
    return NewDocument(extracted.title or path.stem, extracted.text, source)


async def reembed(settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> int:
    """Every chunk re-embedded with the configured embedder, in one transaction: an interrupted
    run leaves the old vectors (and the old model's record) as they were."""
    async with _opened(settings, transport) as (database, embedder):
        service = DocumentService(database, embedder, chunk_tokens=1, overlap_tokens=0)
        async with database.session() as session, session.begin():
            rows = await session.execute(select(ChunkRow.id, ChunkRow.owner_id, ChunkRow.text))
            chunks = list(rows)
            await recreate(session, service.space)
            with tqdm(total=len(chunks), unit="chunk", desc="reembed", file=sys.stderr) as bar:
                for start in range(0, len(chunks), _REEMBED_BATCH):
                    batch = chunks[start : start + _REEMBED_BATCH]
                    vectors = await embedder.embed([c.text for c in batch])
                    await store_vectors(
                        session,
                        [(c.id, c.owner_id, v) for c, v in zip(batch, vectors, strict=True)],
                    )
                    bar.update(len(batch))
    print(f"re-embedded {len(chunks)} chunks with {embedder.model}")  # noqa: T201
    return 0
