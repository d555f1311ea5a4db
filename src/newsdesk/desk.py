"""The public API: `Desk.build`, `Desk.open`, `desk.search`, `desk.ask`, `desk.chat`.

The CLI and the Discord bot are thin front ends over this class.
"""

from __future__ import annotations

import os
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from newsdesk.answer import Answer, AnswerSettings, answer, idf_from
from newsdesk.chat import ChatSession
from newsdesk.config import BUNDLED_MODEL, ChunkSettings, Settings
from newsdesk.embed import Embedder, use_threads
from newsdesk.generate import generated_answer
from newsdesk.index import IndexMismatch, UpdateReport, check_compatible, update_index
from newsdesk.keywords import terms
from newsdesk.llm import LLM, Deadline, LLMSettings
from newsdesk.reader import IndexReader
from newsdesk.retrieve import Fusion, Generation, Passage, search
from newsdesk.store import Filters, Store
from newsdesk.support import SupportSettings


class Desk:
    def __init__(self, settings: Settings, embedder: Embedder, *,
                 fusion: Fusion = Fusion(), answering: AnswerSettings = AnswerSettings(),
                 llm: LLMSettings | None = None, support: SupportSettings = SupportSettings()):
        self.settings = settings
        self.embedder = embedder
        self.fusion = fusion
        self.answering = answering
        # None: extractive answers only. Otherwise answers are generated and checked (newsdesk.generate).
        self.llm = LLM(llm) if llm is not None else None
        self.support = support
        self.reader = IndexReader(settings.index_dir)
        self.last_update: UpdateReport | None = None
        check_compatible(self.reader.store.manifest(), settings, settings.index_dir)
        use_threads(1)  # one query at a time runs fastest on one thread

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def build(cls, corpus_dir: str | Path, index_dir: str | Path, *, model: str | None = None,
              chunking: ChunkSettings | None = None, rebuild: bool = False, progress: bool = False,
              embedder: Embedder | None = None, **options: Any) -> Desk:
        """Index `corpus_dir` into `index_dir` (incrementally, if an index is there) and open it."""
        settings = Settings(corpus_dir=Path(corpus_dir), index_dir=Path(index_dir),
                            model=model or BUNDLED_MODEL, chunking=chunking or ChunkSettings())
        embedder = embedder or load_embedder(settings)
        use_threads(os.cpu_count() or 1)
        report = update_index(settings, embedder, rebuild=rebuild, progress=progress)
        desk = cls(settings, embedder, **options)
        desk.last_update = report
        return desk

    @classmethod
    def open(cls, index_dir: str | Path, *, model: str | None = None, corpus_dir: str | Path | None = None,
             embedder: Embedder | None = None, **options: Any) -> Desk:
        """Open an existing index with the model and chunking it was built with."""
        manifest = IndexReader(Path(index_dir)).store.manifest()
        if model is not None and model != manifest["model"] and Settings(model=model).model_id() != manifest["model"]:
            raise IndexMismatch(
                f"the index in {index_dir} was built with model {manifest['model']!r}, not {model!r}; "
                "run `newsdesk index --rebuild` to rebuild it with the new model"
            )
        settings = Settings(
            index_dir=Path(index_dir), model=manifest["model"], chunking=ChunkSettings(**manifest["chunking"]),
            **({"corpus_dir": Path(corpus_dir)} if corpus_dir is not None else {}),
        )
        return cls(settings, embedder or load_embedder(settings), **options)

    # -- asking ------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, *, since: str | date | None = None,
               until: str | date | None = None, source: str | None = None, mode: str = "hybrid") -> list[Passage]:
        filters = _filters(since, until, source)
        vector = self.embedder.encode_query(query)
        with self.reader.generation() as gen:
            return search(gen, query, vector, k, filters, self.fusion, mode)

    def ask(self, question: str, k: int = 5, *, since: str | date | None = None,
            until: str | date | None = None, source: str | None = None, deadline: float | None = None,
            on_partial: Callable[[Answer], None] | None = None) -> Answer:
        """The cited answer to `question`.

        With a language model configured, the answer is generated and every sentence checked
        against the passage it cites; it falls back to the extractive answer (with a note) when
        the model fails or nothing it wrote is supported. `deadline` is the most seconds that may
        take (default: the model settings' deadline); `on_partial` sees the checked answer grow
        while the model streams. Without a model both are ignored.
        """
        limit = Deadline(deadline if deadline is not None else self.llm.settings.deadline) if self.llm else None
        question = question.strip()
        if not question:
            raise ValueError("ask a question: the text is empty")
        filters = _filters(since, until, source)
        vector = self.embedder.encode_query(question)
        with self.reader.generation() as gen:
            evidence = gather_evidence(gen, question, vector, k, filters, self.fusion)
        extractive = answer(question, *evidence, self.answering)
        if self.llm is None:
            return extractive
        return generated_answer(question, *evidence, extractive, self.llm, self.embedder.encode, deadline=limit,
                                on_partial=on_partial, support=self.support, answering=self.answering)

    def chat(self) -> ChatSession:
        return ChatSession(self)

    # -- maintenance -------------------------------------------------------------------------
    def update(self, *, rebuild: bool = False, progress: bool = False, lock_timeout: float = -1,
               settle: float = 0.0) -> UpdateReport:
        """Bring the index up to date with the corpus; open desks see the result at their next question."""
        use_threads(os.cpu_count() or 1)
        try:
            self.last_update = update_index(self.settings, self.embedder, rebuild=rebuild, progress=progress,
                                            lock_timeout=lock_timeout, settle=settle)
        finally:
            use_threads(1)
        return self.last_update

    def stats(self) -> dict[str, Any]:
        return index_stats(self.reader)


def index_stats(reader: IndexReader) -> dict[str, Any]:
    """What `newsdesk stats` and the bot's /stats show; needs no model."""
    with reader.generation() as gen:
        manifest = gen.manifest
        sources = gen.conn.execute(
            "SELECT coalesce(source, ''), count(*) FROM docs GROUP BY 1 ORDER BY 2 DESC").fetchall()
        return {
            "index": str(reader.store.folder), "documents": manifest["documents"],
            "chunks": manifest["chunks"], "segments": len(gen.segments), "model": manifest["model"],
            "dimension": manifest["dimension"], "chunking": manifest["chunking"],
            "generation": manifest["generation"], "created": manifest["created"],
            "updated": manifest["updated"], "fingerprint": manifest["fingerprint"],
            "sources": {name or "(none)": n for name, n in sources},
        }


def gather_evidence(gen: Generation, question: str, vector: np.ndarray, k: int, filters: Filters,
                    fusion: Fusion) -> tuple[list[Passage], dict[str, str], Callable[[str], float]]:
    """What the answerer reads: the top passages, their documents' texts, and term weights."""
    passages = search(gen, question, vector, k, filters, fusion)
    texts = Store.document_texts(gen.conn, sorted({p.doc_id for p in passages}))
    stems = sorted(set(terms(question)))
    idf = idf_from(Store.document_frequencies(gen.conn, stems), gen.manifest["chunks"])
    return passages, texts, idf


def load_embedder(settings: Settings) -> Embedder:
    """The model for these settings, loaded once per process (it takes seconds and ~100 MB)."""
    return _embedder(settings.model_path(), settings.model_id())


@cache
def _embedder(model_dir: Path, model_id: str) -> Embedder:
    return Embedder(model_dir, model_id)


def _filters(since: str | date | None, until: str | date | None, source: str | None) -> Filters:
    def iso(value: str | date | None, name: str) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, date):
            return value.isoformat()
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError(f"{name} must be a date like 2026-01-31, not {value!r}") from None

    return Filters(since=iso(since, "since"), until=iso(until, "until"), source=source or None)
