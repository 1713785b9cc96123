"""API keys: their shape, what is stored of them, and how they are compared."""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from datetime import UTC, datetime

from chatbackend.access import keys
from chatbackend.access.keys import key_id_of, new_key

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_new_key_is_random_and_only_its_hash_is_kept() -> None:
    first, second = new_key("app", created_at=NOW), new_key("app", created_at=NOW)
    assert first.key != second.key
    prefix = f"cbk_{first.record.id}_"
    assert first.key.startswith(prefix)
    assert len(first.key) - len(prefix) == 43  # 32 random bytes, URL-safe base64
    assert first.record.key_hash == hashlib.sha256(first.key.encode()).hexdigest()
    assert first.key not in repr(first.record)


def test_only_well_formed_keys_have_an_id() -> None:
    made = new_key("app", created_at=NOW)
    assert key_id_of(made.key) == made.record.id
    for bad in ("", "cbk_", made.key + "x", made.key[:-1], "sk-" + made.key[4:], made.key.upper()):
        assert key_id_of(bad) is None


def test_the_hash_is_compared_in_constant_time_and_never_with_equality() -> None:
    source = textwrap.dedent(inspect.getsource(keys.DatabaseKeys.check))
    tree = ast.parse(source)
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert "hmac.compare_digest" in calls
    compared = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Compare)]
    assert not [c for c in compared if "hash" in c], compared
