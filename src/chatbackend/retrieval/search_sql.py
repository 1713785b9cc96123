"""The search statements, one per dialect and mode, as ``(chunk id, score)`` rows best first.

Hybrid search is reciprocal rank fusion in one statement, as
Azure-Samples/rag-postgres-openai-python does it: each arm ranks its best ``candidates`` with
``RANK()``, a full outer join unites them, and a chunk scores ``1/(k + rank)`` summed over the
arms that found it (k = 60, the constant of the RRF paper).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import Float, Integer, column, text
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
    return "[" + ",".join(f"{v:.7g}" for v in vector) + "]"


def _owner(column_name: str, owner: str | None, dialect: str) -> str:
    if owner is None:
        return f"{column_name} IS NULL"
    return f"{column_name} = :owner" if dialect == "postgresql" else f"{column_name} IS :owner"


def _sqlite_arms(owner: str | None, match: str) -> dict[str, str]:
    # FTS5's bm25() and vec0's KNN work only in their own plain SELECT: rank outside it.
    knn = (
        "SELECT rowid AS id, distance FROM chunks_vec "
        "WHERE embedding MATCH :vector AND k = :candidates AND owner = :vec_owner"
    )
    matches = (
        "SELECT chunks_fts.rowid AS id, bm25(chunks_fts) AS bm FROM chunks_fts "
        "JOIN chunks c ON c.id = chunks_fts.rowid "
        f"WHERE chunks_fts MATCH :{match} AND {_owner('c.owner_id', owner, 'sqlite')} "
        "ORDER BY bm LIMIT :candidates"
    )
    return {
        # A vector without direction has no distance (NULL): it is near nothing. The unary
        # plus keeps the test out of vec0's KNN constraints, which refuse it.
        "vector": "SELECT id, RANK() OVER (ORDER BY distance) AS rank, 1 - distance AS score "
        f"FROM ({knn}) WHERE +distance IS NOT NULL",
        "text": f"SELECT id, RANK() OVER (ORDER BY bm) AS rank, -bm AS score FROM ({matches})",
    }


def _postgres_arms(owner: str | None, match: str) -> dict[str, str]:
    where = _owner("owner_id", owner, "postgresql")
    # A vector without direction has no cosine distance (NaN): it is near nothing.
    distance = "embedding <=> CAST(CAST(:vector AS text) AS vector)"
    vector = (
        f"SELECT id, RANK() OVER (ORDER BY {distance}) AS rank, 1 - ({distance}) AS score "
        f"FROM chunks WHERE {where} AND {distance} <> 'NaN' ORDER BY {distance} "
        "LIMIT :candidates"
    )
    text_arm = (
        "SELECT id, RANK() OVER (ORDER BY ts_rank_cd(tsv, q) DESC) AS rank, "
        f"ts_rank_cd(tsv, q) AS score FROM chunks, to_tsquery('english', :{match}) q "
        f"WHERE tsv @@ q AND {where} ORDER BY ts_rank_cd(tsv, q) DESC LIMIT :candidates"
    )
    return {"vector": vector, "text": text_arm}


def search_statement(dialect: str, mode: Mode, *, owner: str | None) -> TextualSelect:
    """The statement for ``mode``; binds ``vector``, ``match``/``match_all``, ``candidates``,
    ``limit``, ``owner`` (and ``vec_owner`` on SQLite), ``k``."""
    # The hybrid's text arm wants every content word (as plainto_tsquery does in the Azure
    # sample): a chunk sharing one common word with the question would otherwise outrank, once
    # fused, the chunk only the vectors found. Text search alone ranks chunks with any of them.
    match = "match_all" if mode == "hybrid" else "match"
    arms = _postgres_arms(owner, match) if dialect == "postgresql" else _sqlite_arms(owner, match)
    if mode == "hybrid":
        sql = (
            f"WITH vector_search AS ({arms['vector']}), text_search AS ({arms['text']}) "
            "SELECT COALESCE(vector_search.id, text_search.id) AS id, "
            "COALESCE(1.0 / (:k + vector_search.rank), 0.0) + "
            "COALESCE(1.0 / (:k + text_search.rank), 0.0) AS score "
            "FROM vector_search FULL OUTER JOIN text_search ON vector_search.id = text_search.id "
            "ORDER BY score DESC, id LIMIT :limit"
        )
    else:
        sql = f"SELECT id, score FROM ({arms[mode]}) AS arm ORDER BY rank, id LIMIT :limit"
    return text(sql).columns(column("id", Integer), column("score", Float))
