"""The search statements, one per dialect and mode. Each returns the hits themselves (chunk id,
score, document id, text, title, source), best first: the rows are read by the statement that
ranks them, not by a second query.

Hybrid search is reciprocal rank fusion in one statement, as
Azure-Samples/rag-postgres-openai-python does it: each arm ranks its best ``candidates`` with
``RANK()``, a full outer join unites them, and a chunk scores ``1/(k + rank)`` summed over the
arms that found it (k = 60, the constant of the RRF paper).
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import Float, Integer, Text, Uuid, column, text
from sqlalchemy.sql.selectable import TextualSelect

Mode = Literal["hybrid", "vector", "text"]
RRF_K = 60
# Words that carry no topic; dropped from the text arm's query (PostgreSQL's english
# configuration drops them too, so both databases see the same words).
_STOPWORDS = frozenset(
    "a an and are as at be but by can could did do does for from had has have how i if in into is "
    "it its me my no not of on or our she so such than that the their them then there these they "
    "this to was we were what when where which who whom why will with would you your".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


def query_words(query: str) -> list[str]:
    """The distinct content words of ``query``, lower case, in order."""
    words = (w.lower() for w in _WORD.findall(query))
    return list(dict.fromkeys(w for w in words if w not in _STOPWORDS and w != "_"))


def fts5_query(words: Sequence[str], *, every: bool = False) -> str:
    """Any (or ``every``) of ``words``, each quoted, so no FTS5 operator can be injected."""
    return (" AND " if every else " OR ").join('"' + w.replace('"', "") + '"' for w in words)


def tsquery(words: Sequence[str], *, every: bool = False) -> str:
    """Any (or ``every``) of ``words`` as to_tsquery input (``\\w`` characters only)."""
    return (" & " if every else " | ").join(words)


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form of ``vector``."""
    return "[" + ",".join(f"{v:.7g}" for v in vector) + "]"


def vector_blob(vector: Sequence[float]) -> bytes:
    """sqlite-vec's compact form of ``vector``: little-endian float32s (no JSON to parse)."""
    return struct.pack(f"<{len(vector)}f", *vector)


def _owner(column_name: str, anonymous: bool, dialect: str) -> str:
    if anonymous:
        return f"{column_name} IS NULL"
    return f"{column_name} = :owner" if dialect == "postgresql" else f"{column_name} IS :owner"


def _sqlite_arms(anonymous: bool, match: str) -> dict[str, str]:
    # FTS5's bm25() and vec0's KNN work only in their own plain SELECT: rank outside it.
    knn = (
        "SELECT rowid AS id, distance FROM chunks_vec "
        "WHERE embedding MATCH :vector AND k = :candidates AND owner = :vec_owner"
    )
    matches = (
        "SELECT chunks_fts.rowid AS id, bm25(chunks_fts) AS bm FROM chunks_fts "
        "JOIN chunks c ON c.id = chunks_fts.rowid "
        f"WHERE chunks_fts MATCH :{match} AND {_owner('c.owner_id', anonymous, 'sqlite')} "
        "ORDER BY bm LIMIT :candidates"
    )
    return {
        # A vector without direction has no distance (NULL): it is near nothing. The unary
        # plus keeps the test out of vec0's KNN constraints, which refuse it.
        "vector": "SELECT id, RANK() OVER (ORDER BY distance) AS rank, 1 - distance AS score "
        f"FROM ({knn}) WHERE +distance IS NOT NULL",
        "text": f"SELECT id, RANK() OVER (ORDER BY bm) AS rank, -bm AS score FROM ({matches})",
    }


def _postgres_arms(anonymous: bool, match: str) -> dict[str, str]:
    where = _owner("owner_id", anonymous, "postgresql")
    # The query vector is parsed once, in a subquery (an InitPlan): written as a cast in the
    # expressions, a generic plan (asyncpg prepares every statement, and PostgreSQL switches to
    # one after five runs) parsed it again for each row, 11-15 ms against 1.7 ms at 10,000
    # chunks. A vector without direction has no cosine distance (NaN): it is near nothing
    # (NaN sorts last, so the test may follow the LIMIT).
    nearest = (
        "SELECT id, embedding <=> (SELECT CAST(CAST(:vector AS text) AS vector)) AS distance "
        f"FROM chunks WHERE {where} ORDER BY distance LIMIT :candidates"
    )
    vector = (
        "SELECT id, RANK() OVER (ORDER BY distance) AS rank, 1 - distance AS score "
        f"FROM ({nearest}) AS nearest WHERE distance <> 'NaN'"
    )
    text_arm = (
        "SELECT id, RANK() OVER (ORDER BY ts_rank_cd(tsv, q) DESC) AS rank, "
        f"ts_rank_cd(tsv, q) AS score FROM chunks, to_tsquery('english', :{match}) q "
        f"WHERE tsv @@ q AND {where} ORDER BY ts_rank_cd(tsv, q) DESC LIMIT :candidates"
    )
    return {"vector": vector, "text": text_arm}


def _arms(dialect: str, anonymous: bool, match: str) -> dict[str, str]:
    if dialect == "postgresql":
        return _postgres_arms(anonymous, match)
    return _sqlite_arms(anonymous, match)


def _hits(ranked: str, order: Sequence[str], dialect: str, anonymous: bool) -> TextualSelect:
    """The rows of the best ``:limit`` of ``ranked`` (``id``, ``score`` and the columns of
    ``order``), read in the same statement (the owner checked again, cheaply)."""
    sql = (
        "SELECT hit.id, hit.score, c.document_id, c.text, d.title, d.source "
        f"FROM (SELECT * FROM ({ranked}) AS ranked ORDER BY {', '.join(order)} LIMIT :limit) "
        "AS hit JOIN chunks c ON c.id = hit.id JOIN documents d ON d.id = c.document_id "
        f"WHERE {_owner('c.owner_id', anonymous, dialect)} "
        f"ORDER BY {', '.join('hit.' + term for term in order)}"
    )
    return text(sql).columns(
        column("id", Integer),
        column("score", Float),
        column("document_id", Uuid),
        column("text", Text),
        column("title", Text),
        column("source", Text),
    )


def search_statement(dialect: str, mode: Mode, *, owner: str | None) -> TextualSelect:
    """The hits for ``mode``; binds ``vector``, ``match``/``match_all``, ``candidates``,
    ``limit``, ``owner`` (and ``vec_owner`` on SQLite), ``k``."""
    return _search_statement(dialect, mode, owner is None)


# The statements depend on the caller only through whether it is anonymous (``IS NULL``).
@functools.cache
def _search_statement(dialect: str, mode: Mode, anonymous: bool) -> TextualSelect:
    # The hybrid's text arm wants every content word (as plainto_tsquery does in the Azure
    # sample): a chunk sharing one common word with the question would otherwise outrank, once
    # fused, the chunk only the vectors found. Text search alone ranks chunks with any of them.
    arms = _arms(dialect, anonymous, "match_all" if mode == "hybrid" else "match")
    if mode != "hybrid":
        return _hits(arms[mode], ("rank", "id"), dialect, anonymous)
    fused = (
        f"WITH vector_search AS ({arms['vector']}), text_search AS ({arms['text']}) "
        "SELECT COALESCE(vector_search.id, text_search.id) AS id, "
        "COALESCE(1.0 / (:k + vector_search.rank), 0.0) + "
        "COALESCE(1.0 / (:k + text_search.rank), 0.0) AS score "
        "FROM vector_search FULL OUTER JOIN text_search ON vector_search.id = text_search.id"
    )
    return _hits(fused, ("score DESC", "id"), dialect, anonymous)
