"""The sentence-transformers encoder: normalized vectors, so inner product is cosine similarity."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


class ModelNotFound(Exception):
    pass


class Embedder:
    def __init__(self, model_dir: Path, model_id: str):
        # Never reach for a model hub: the model is a folder on disk or nothing.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if not (model_dir / "config.json").exists() and not (model_dir / "modules.json").exists():
            raise ModelNotFound(
                f"{model_dir} is not a sentence-transformers model folder; "
                "pass --model with a folder that holds one (config.json, modules.json, weights)"
            )
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        self.model_id = model_id
        self.model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        self.dimension: int = self.model.get_embedding_dimension()
        self.max_tokens: int = self.model.max_seq_length

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def encode(self, texts: list[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=batch_size, show_progress_bar=progress,
            normalize_embeddings=True, convert_to_numpy=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])


def use_threads(n: int) -> None:
    """torch and FAISS share the cores; one query runs fastest on one thread, a build on all."""
    import faiss
    import torch

    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)
