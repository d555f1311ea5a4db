"""The encoder: normalized vectors (inner product = cosine) for passages, their sentences and queries.

Two ways to run the same sentence-transformers model:

- `OnnxEncoder` (the default on a CPU): the model exported to ONNX by torch's exporter, its
  weights quantized to int8 per channel by onnxruntime's quantizer (or left fp32), and run by
  onnxruntime with the model's own `tokenizers` tokenizer. Queries need neither torch nor
  transformers, so `newsdesk ask` starts in well under two seconds, and each session has its
  own thread count (one for a query, all cores for a build) without touching process-wide
  settings. sentence-transformers' own ONNX backend needs `optimum-onnx`, whose current release
  requires transformers < 4.58 while sentence-transformers 6 requires transformers >= 5, so the
  two cannot be installed together; the export here is the same graph (model, mean pooling,
  normalization) made without it.
- `TorchEncoder`: sentence-transformers on torch, on the GPU when there is one.

Sentence vectors come from the passage pass itself ("late chunking"): the model's token
vectors for a passage are mean-pooled over each sentence's tokens. They cost no extra
encoding, and each sentence is read in the context of its passage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from newsdesk.errors import ModelError

log = logging.getLogger("newsdesk.embed")

ENCODERS = ("onnx-int8", "onnx", "torch")
Span = tuple[int, int]


class Encoder(Protocol):
    model_id: str
    kind: str  # one of ENCODERS
    dimension: int
    max_tokens: int  # word pieces the model reads, special tokens included

    def tokens(self, text: str) -> list[int]: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], sentences: Sequence[Sequence[Span]], *, batch_size: int = 32,
                        progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]: ...

    def encode_query(self, text: str) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelFolder:
    """A sentence-transformers model folder, checked for what newsdesk can run."""

    path: Path
    model_id: str

    def check(self) -> None:
        if not (self.path / "config.json").exists() and not (self.path / "modules.json").exists():
            raise ModelError(
                f"{self.path} is not a sentence-transformers model folder; pass --model with a folder that "
                "holds one (config.json, modules.json, weights)")

    @cached_property
    def pooling(self) -> str | None:
        """"mean" or "cls" when the folder is Transformer + Pooling (+ Normalize), else None."""
        modules = self.path / "modules.json"
        if not modules.exists():
            return None
        kinds = [m.get("type", "") for m in json.loads(modules.read_text())]
        if not kinds or not kinds[0].endswith("Transformer") or any(
                not (k.endswith("Pooling") or k.endswith("Normalize")) for k in kinds[1:]):
            return None
        for m in json.loads(modules.read_text()):
            if m.get("type", "").endswith("Pooling"):
                config = json.loads((self.path / m.get("path", "") / "config.json").read_text())
                if config.get("pooling_mode_mean_tokens"):
                    return "mean"
                if config.get("pooling_mode_cls_token"):
                    return "cls"
                return None
        return "mean"

    @property
    def max_tokens(self) -> int:
        config = self.path / "sentence_bert_config.json"
        if config.exists():
            return int(json.loads(config.read_text()).get("max_seq_length", 256))
        return 256

    def fingerprint(self) -> str:
        """Changes when the weights change: the key of the exported ONNX files in the cache."""
        parts = [self.model_id]
        for f in sorted(self.path.glob("*")):
            if f.is_file() and f.suffix in {".safetensors", ".bin", ".json", ".txt"}:
                st = f.stat()
                parts.append(f"{f.name}:{st.st_size}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def late_pool(token_vectors: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[Span]) -> np.ndarray:
    """One normalized vector per span: the mean of the vectors of the tokens that start inside it.

    `offsets` are the tokens' character offsets in the passage (special tokens have (0, 0) and
    are never counted); a span with no token of its own gets the passage's mean.
    """
    d = token_vectors.shape[1]
    starts = np.array([a for a, b in offsets], dtype=np.int64)
    real = np.array([b > a for a, b in offsets], dtype=bool)
    out = np.zeros((len(spans), d), dtype=np.float32)
    fallback = token_vectors[real].mean(axis=0) if real.any() else token_vectors.mean(axis=0)
    for i, (s, e) in enumerate(spans):
        inside = real & (starts >= s) & (starts < e)
        out[i] = token_vectors[inside].mean(axis=0) if inside.any() else fallback
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


# -- onnxruntime -------------------------------------------------------------------------------
class OnnxEncoder:
    """The exported model on onnxruntime: one session per thread count, created when first needed."""

    def __init__(self, folder: ModelFolder, onnx_file: Path, kind: str, *, threads: int | None = None):
        from tokenizers import Tokenizer

        self.model_id = folder.model_id
        self.kind = kind
        self.onnx_file = onnx_file
        self.max_tokens = folder.max_tokens
        self._threads = threads or os.cpu_count() or 1
        tokenizer_file = onnx_file.parent / "tokenizer.json"
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_tokens)
        self._sessions: dict[int, Any] = {}
        self.dimension = int(json.loads((onnx_file.parent / "encoder.json").read_text())["dimension"])

    def _session(self, threads: int) -> Any:
        session = self._sessions.get(threads)
        if session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            session = ort.InferenceSession(str(self.onnx_file), options, providers=["CPUExecutionProvider"])
            self._sessions[threads] = session
        return session

    def tokens(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def inputs(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], list[Any]]:
        """The graph's inputs for a batch (padded to its longest text), and the tokenizer's encodings."""
        encodings = self._tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for i, e in enumerate(encodings):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}, encodings

    def _run(self, texts: Sequence[str], threads: int, want_tokens: bool) -> tuple[np.ndarray, list[Any], np.ndarray]:
        feeds, encodings = self.inputs(texts)
        outputs = ["embedding", "token_embeddings"] if want_tokens else ["embedding"]
        result = self._session(threads).run(outputs, feeds)
        return result[0], encodings, result[1] if want_tokens else np.zeros(0)

    def _batched(self, texts: Sequence[str], batch_size: int, progress: bool, want_tokens: bool,
                 sentences: Sequence[Sequence[Span]] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pooled: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        # Longest first, in batches of similar length: padding is wasted work.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        bar = _progress(len(texts), progress)
        for at in range(0, len(order), batch_size):
            chosen = order[at:at + batch_size]
            embedding, encodings, tokens = self._run([texts[i] for i in chosen], self._threads, want_tokens)
            for row, i in enumerate(chosen):
                vectors[i] = embedding[row]
                if want_tokens:
                    n = len(encodings[row].ids)
                    pooled[i] = late_pool(tokens[row, :n], encodings[row].offsets, sentences[i])
            if bar is not None:
                bar.update(len(chosen))
        if bar is not None:
            bar.close()
        return vectors, pooled

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._batched(texts, batch_size, progress, False)[0]

    def encode_passages(self, texts: Sequence[str], sentences: Sequence[Sequence[Span]], *, batch_size: int = 32,
                        progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        return self._batched(texts, batch_size, progress, True, sentences)

    def encode_query(self, text: str) -> np.ndarray:
        """One thread: a question at a time runs fastest that way, and leaves the other cores free."""
        return np.ascontiguousarray(self._run([text], 1, False)[0], dtype=np.float32)


def export_onnx(folder: ModelFolder, target: Path, *, quantize: bool) -> Path:
    """Export the model (with its pooling and normalization) to ONNX; int8 weights if `quantize`.

    Needs torch and transformers (installed with newsdesk); runs once per model per machine,
    a few seconds, and never downloads anything.
    """
    import warnings

    import torch
    from transformers import AutoModel

    pooling = folder.pooling
    if pooling is None:
        raise ModelError(f"{folder.path} is not a plain Transformer + Pooling model, which the ONNX encoder runs; "
                         "use --encoder torch for it")
    target.mkdir(parents=True, exist_ok=True)
    fp32 = target / "model.onnx"
    if not fp32.exists():
        model = AutoModel.from_pretrained(str(folder.path), local_files_only=True).eval()

        class Pooled(torch.nn.Module):
            def __init__(self, inner: Any):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> tuple[Any, Any]:
                hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state
                if pooling == "cls":
                    vector = hidden[:, 0]
                else:
                    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
                    vector = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(vector, p=2, dim=1), hidden

        example = torch.ones((2, 8), dtype=torch.int64)
        tmp = target / ".model.onnx.tmp"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(model), (example, example, torch.zeros_like(example)), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["embedding", "token_embeddings"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "token_type_ids": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"},
                              "token_embeddings": {0: "batch", 1: "tokens"}},
                opset_version=17, dynamo=False)
        os.replace(tmp, fp32)
        dimension = int(model.config.hidden_size)
        (target / "encoder.json").write_text(json.dumps({"dimension": dimension, "pooling": pooling}))
        shutil.copyfile(folder.path / "tokenizer.json", target / "tokenizer.json")
    if not quantize:
        return fp32
    int8 = target / "model-int8.onnx"
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = target / ".model-int8.onnx.tmp"
        hush = _Hush()  # the quantizer logs advice about calibration data, which dynamic quantization needs none of
        logging.getLogger().addFilter(hush)
        try:
            # Per-channel weights keep the vectors within 0.99 cosine of fp32 (per-tensor: 0.95).
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.getLogger().removeFilter(hush)
        os.replace(tmp, int8)
    return int8


class _Hush(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def onnx_files(folder: ModelFolder, cache: Path, kind: str) -> Path:
    """The ONNX file for `kind`, exported into the cache on first use."""
    if not (folder.path / "tokenizer.json").exists():
        raise ModelError(f"{folder.path} has no tokenizer.json, which the ONNX encoder needs; use --encoder torch")
    target = cache / "onnx" / folder.fingerprint()
    name = "model-int8.onnx" if kind == "onnx-int8" else "model.onnx"
    if not (target / name).exists():
        log.info("exporting %s to ONNX (%s) in %s, once", folder.model_id, kind, target)
        export_onnx(folder, target, quantize=kind == "onnx-int8")
    return target / name


def copy_encoder(onnx_file: Path, folder: Path) -> Path:
    """Keep the exact encoder an index was built with inside it: queries use the same weights."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (onnx_file.name, "tokenizer.json", "encoder.json"):
        source, dest = onnx_file.parent / name, folder / name
        if not dest.exists() or dest.stat().st_size != source.stat().st_size:
            tmp = folder / f".{name}.tmp"
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
    return folder / onnx_file.name


# -- torch -------------------------------------------------------------------------------------
class TorchEncoder:
    """sentence-transformers on torch. Thread counts are torch's process-wide setting: the front
    ends set them, not this class."""

    kind = "torch"

    def __init__(self, folder: ModelFolder, *, device: str = "auto"):
        from sentence_transformers import SentenceTransformer

        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model_id = folder.model_id
        self.device = device
        self.model = SentenceTransformer(str(folder.path), device=device, local_files_only=True)
        self.dimension: int = self.model.get_embedding_dimension()
        self.max_tokens: int = self.model.max_seq_length
        self._fast = self.model.tokenizer

    def tokens(self, text: str) -> list[int]:
        return self._fast(text, add_special_tokens=False, verbose=False)["input_ids"]

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=batch_size, show_progress_bar=progress,
                                    normalize_embeddings=True, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: Sequence[str], sentences: Sequence[Sequence[Span]], *, batch_size: int = 32,
                        progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        outputs = self.model.encode(list(texts), batch_size=batch_size, show_progress_bar=progress,
                                    output_value=None, normalize_embeddings=True)
        vectors = np.stack([o["sentence_embedding"].float().cpu().numpy() for o in outputs]).astype(np.float32)
        pooled = []
        for text, spans, out in zip(texts, sentences, outputs):
            offsets = self._fast(text, return_offsets_mapping=True, truncation=True,
                                 max_length=self.max_tokens)["offset_mapping"]
            tokens = out["token_embeddings"].float().cpu().numpy()[:len(offsets)]
            pooled.append(late_pool(tokens, offsets, spans))
        return vectors, pooled

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="chunk", desc="Embedding", leave=False)


def quantize_sentences(vectors: np.ndarray) -> bytes:
    """Sentence vectors stored as int8 (x127): a quarter of the space, cosine within 0.001."""
    return np.clip(np.rint(vectors * 127.0), -127, 127).astype(np.int8).tobytes()


def dequantize_sentences(blob: bytes, dimension: int) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.int8).reshape(-1, dimension).astype(np.float32) / 127.0
