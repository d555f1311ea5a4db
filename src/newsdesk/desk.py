"""The public API: `Desk.build`, `Desk.open`, and a desk's `ask`, `search`, `chat`, `update`, `stats`.

The CLI and the Discord bot are thin front ends over this class. A `Desk` is safe to use from
several threads at once for questions; updates take the index's writer lock, and every open
desk sees a finished update at its next question.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from newsdesk.answer import AnswerSettings, Evidence, Scored, answer, citation, score
from newsdesk.chat import ChatSession
from newsdesk.config import BUNDLED_MODEL, ChunkSettings, Settings, default_cache_dir
from newsdesk.embed import ENCODERS, Encoder, ModelFolder, OnnxEncoder, TorchEncoder, dequantize_sentences, onnx_files
from newsdesk.errors import IndexEmpty, IndexMismatch, QueryError, UsageError
from newsdesk.backend import IndexBackend, IndexView, open_backend
from newsdesk.index import UpdateReport, check_compatible, update_index
from newsdesk.keywords import idf_from, question_terms
from newsdesk.llm import LLM, Deadline, LLMSettings
from newsdesk.qtypes import Kind, question_kind
from newsdesk.news import collapse, copy_groups, lead_with, story_groups, story_of, timeline_answer
from newsdesk.results import Answer, Citation
from newsdesk.retrieve import Fusion, Passage, SearchMode, search
from newsdesk.store import Filters
from newsdesk.topics import MATCH_THRESHOLD, TopicNews, TopicWatch, best_per_article
from newsdesk.story import asks_for_timeline, with_story
from newsdesk.story import newer as newer_reports
from newsdesk.support import SupportSettings

log = logging.getLogger("newsdesk")

MAX_K = 50
# A timeline reads this many passages of its story's articles, and keeps an article's best
# sentence when it is at least this share as likely to answer as the best of all.
TIMELINE_DEPTH = 30
TIMELINE_SHARE = 0.1
# A newer report's figure leads the answer when at least this share as likely as the first sentence.
NEWER_SHARE = 0.5
# Passages read per article when matching new articles to a followed topic.
TOPIC_DEPTH = 40


@dataclass(frozen=True)
class IndexStats:
    """What `newsdesk stats` and the bot's /stats show."""

    index: str
    documents: int
    chunks: int
    segments: int
    model: str
    encoder: str
    dimension: int
    chunking: dict[str, int]
    generation: int
    created: str
    updated: str
    fingerprint: str
    sources: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Desk:
    """An index opened for questions. Make one with `Desk.build` or `Desk.open`."""

    def __init__(self, settings: Settings, encoder: Encoder, *, fusion: Fusion = Fusion(),
                 answering: AnswerSettings = AnswerSettings(), llm: LLMSettings | None = None,
                 support: SupportSettings = SupportSettings(), backend: IndexBackend | None = None):
        self.settings = settings
        self.encoder = encoder
        self.fusion = fusion
        self.answering = answering
        # None: extractive answers only. Otherwise answers are generated and checked (newsdesk.generate).
        self.llm = LLM(llm) if llm is not None else None
        self.support = support
        self.backend = backend or open_backend(settings.index, token=settings.milvus_token)
        self.last_update: UpdateReport | None = None
        check_compatible(self.backend.manifest(), settings, self.backend.location)

    @property
    def reader(self) -> Any:
        """The embedded index's reader (for embedded-only tools; Milvus has none)."""
        return self.backend.reader  # type: ignore[attr-defined]

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def build(cls, corpus: str | Path, index: str | Path, *, model: str | None = None, encoder: str = "auto",
              device: str = "auto", chunking: ChunkSettings | None = None, rebuild: bool = False,
              progress: bool = False, lock_timeout: float = -1, follow_symlinks: bool = False,
              cache_dir: str | Path | None = None, llm: LLMSettings | None = None, milvus_token: str = "",
              answering: AnswerSettings = AnswerSettings(), fusion: Fusion = Fusion()) -> Desk:
        """Index `corpus` into `index` (incrementally when an index is there) and open it.

        `index` is a folder for the embedded index, or a Milvus URI (`milvus-lite:///path.db`,
        `milvus://host:19530/collection`; `milvus_token` holds its credentials).

        `encoder` is "auto" (the one the index was built with; for a new index ONNX int8 on a CPU,
        torch on a GPU), "onnx-int8", "onnx" or "torch". A build interrupted earlier is continued.
        """
        settings = Settings(corpus_dir=Path(corpus), index=str(index), model=model or BUNDLED_MODEL,
                            encoder=encoder, device=device, chunking=chunking or ChunkSettings(),
                            cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
                            follow_symlinks=follow_symlinks, milvus_token=milvus_token)
        _check_choice(encoder, ("auto", *ENCODERS), "encoder")
        _check_choice(device, ("auto", "cpu", "cuda"), "device")
        backend = open_backend(settings.index, token=milvus_token)
        runner = encoder_for_build(settings, backend, rebuild=rebuild)
        report = update_index(settings, runner, rebuild=rebuild, progress=progress, lock_timeout=lock_timeout,
                              backend=backend)
        desk = cls(settings, runner, llm=llm, answering=answering, fusion=fusion, backend=backend)
        desk.last_update = report
        return desk

    @classmethod
    def open(cls, index: str | Path, *, corpus: str | Path | None = None, model: str | None = None,
             cache_dir: str | Path | None = None, llm: LLMSettings | None = None, milvus_token: str = "",
             answering: AnswerSettings = AnswerSettings(), fusion: Fusion = Fusion(), hint: str = "") -> Desk:
        """Open an existing index with the model, encoder and chunking it was built with."""
        backend = open_backend(index, token=milvus_token, hint=hint)
        manifest = backend.manifest()
        if model is not None and model != manifest.get("model") and Settings(model=model).model_id() != manifest.get(
                "model"):
            raise IndexMismatch(
                f"the index in {index} was built with model {manifest.get('model')!r}, not {model!r}; "
                "run `newsdesk index --rebuild` to rebuild it with the new model")
        check_compatible(manifest, Settings(model=manifest.get("model", BUNDLED_MODEL),
                                            chunking=ChunkSettings(**manifest.get("chunking", {}))), index)
        settings = Settings(
            index=str(index), model=manifest["model"], encoder=manifest["encoder"],
            chunking=ChunkSettings(**manifest["chunking"]), milvus_token=milvus_token,
            cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
            **({"corpus_dir": Path(corpus)} if corpus is not None else {}),
        )
        return cls(settings, encoder_for_index(settings, backend), llm=llm, answering=answering, fusion=fusion,
                   backend=backend)

    # -- asking ------------------------------------------------------------------------------
    def search(self, query: str, *, k: int = 5, since: str | date | None = None, until: str | date | None = None,
               source: str | None = None, mode: SearchMode | str = SearchMode.HYBRID) -> list[Passage]:
        """The `k` passages that best match `query`, best first."""
        query = _clean_text(query, "search for something")
        mode = _mode(mode)
        filters = _filters(since, until, source)
        _check_k(k)
        vector = self.encoder.encode_query(query)
        with self.backend.generation() as view:
            _require_articles(view, self.backend.location)
            passages = search(view, query, vector, 2 * k, filters, self.fusion, mode)
            passages = collapse(passages, copy_groups(view, passages))[:k]
            if not passages and filters:
                _explain_empty(view, filters)
            return passages

    def ask(self, question: str, *, k: int = 5, since: str | date | None = None, until: str | date | None = None,
            source: str | None = None, context: str = "", prefer: Sequence[str] = (), timeline: bool | None = None,
            among: Sequence[str] = (), deadline: float | None = None,
            on_partial: Callable[[Answer], None] | None = None) -> Answer:
        """The cited answer to `question`.

        `context` is words to search with besides the question's own, which count for less when
        the answer is chosen; `prefer` names documents to draw from when they match (a chat
        follow-up carries the conversation's subject and prefers the articles it cited). With a language model configured, the answer is
        generated and every sentence checked against the passage it cites; it falls back to the
        extractive answer (with a note) when the model fails or nothing it wrote is supported.
        `deadline` is the most seconds that may take (default: the model settings' deadline);
        `on_partial` sees the checked answer grow while the model streams. Without a model both
        are ignored.

        Wire copies of one story are one citation that names the other outlets
        (`also_reported_by`); the answer says as of when (`as_of`) and names newer articles on
        its story (`newer`). `timeline`: answer as a dated timeline, one cited sentence per date
        (None: when the question asks how something changed, `newsdesk.story.asks_for_timeline`).
        `among`: answer only from these articles (doc_ids).
        """
        question = _clean_text(question, "ask a question")
        if timeline is None:
            timeline = asks_for_timeline(question)
        filters = replace(_filters(since, until, source), doc_ids=tuple(sorted(set(among))))
        _check_k(k)
        limit = Deadline(deadline if deadline is not None else self.llm.settings.deadline) if self.llm else None
        return self._ask(question, filters, k=k, context=" ".join(context.split()), prefer=prefer, timeline=timeline,
                         limit=limit, on_partial=on_partial, answering=self.answering, llm=self.llm)

    def _ask(self, question: str, filters: Filters, *, k: int, context: str, prefer: Sequence[str], timeline: bool,
             limit: Deadline | None, on_partial: Callable[[Answer], None] | None, answering: AnswerSettings,
             llm: LLM | None) -> Answer:
        query = f"{question} {context}".strip()
        vector = self.encoder.encode_query(query)
        with self.backend.generation() as view:
            _require_articles(view, self.backend.location)
            evidence = gather_evidence(view, query, vector, max(k, self.answering_depth), filters, self.fusion,
                                       prefer=prefer, collapsing=True)
            if not evidence.passages and filters:
                _explain_empty(view, filters)
            if context:
                evidence = replace(evidence, question=question, context=context)
            groups = story_groups(view, {p.doc_id for p in evidence.passages})
            extractive = answer(evidence, answering)
            if not timeline and not extractive.abstained:
                extractive = self._newest_figure_first(view, extractive, groups, evidence, query, vector, filters,
                                                       answering)
            if timeline and not extractive.abstained:
                steps = self._timeline_candidates(view, evidence, query, vector, filters)
                dated = timeline_answer(extractive, steps)
                if dated is not extractive:
                    return with_story(replace(dated, query=query if context else None), groups)
        if context:
            extractive = replace(extractive, query=query)
        if llm is None:
            return with_story(extractive, groups)
        from newsdesk.generate import generated_answer

        return with_story(generated_answer(evidence, extractive, llm, self.encoder.encode, deadline=limit,
                                           on_partial=on_partial, support=self.support, answering=answering),
                          groups)

    def _newest_figure_first(self, view: IndexView, extractive: Answer, groups: dict, evidence: Evidence, query: str,
                             vector: np.ndarray, filters: Filters, answering: AnswerSettings) -> Answer:
        """A how-many question answered from an older report of a story that has newer ones:
        the newer reports' best sentence holding a figure comes first (a revised
        death toll leads, the earlier figure follows), when it is at least `NEWER_SHARE` as
        likely to answer as the first sentence."""
        newer = [r.doc_id for r in newer_reports(extractive.citations, groups)]
        if not newer or question_kind(evidence.question) is not Kind.NUMBER:  # when it happened is not revised
            return extractive
        fresh = gather_evidence(view, query, vector, self.answering_depth, replace(filters, doc_ids=tuple(newer)),
                                self.fusion)
        fresh = replace(fresh, question=evidence.question, context=evidence.context)
        best = next((s for s in score(fresh, answering) if s.candidate.answers), None)
        if best is None or best.probability < NEWER_SHARE * extractive.citations[0].score:
            return extractive
        doc = fresh.docs[best.passage.doc_id]
        return lead_with(extractive, citation(1, best.passage, doc, best.start, best.end, best.probability))

    def _timeline_candidates(self, view: IndexView, evidence: Evidence, query: str, vector: np.ndarray,
                             filters: Filters) -> list[Citation]:
        """The best sentence of each article on the answer's story (the story groups of the top
        passages' articles, and the articles retrieved), oldest first, without repeats: a wire
        copy run a day later says nothing new."""
        top = list(dict.fromkeys(p.doc_id for p in evidence.passages))
        docs = story_of(view, top[:3])
        if sum(1 for r in view.headers(docs).values() if r.published) < 2:  # no dated story: what was retrieved
            docs = story_of(view, top)
        wide = gather_evidence(view, query, vector, TIMELINE_DEPTH, replace(filters, doc_ids=docs), self.fusion)
        wide = replace(wide, question=evidence.question, context=evidence.context)
        scored = score(wide, self.answering)
        if not scored:
            return []
        best: dict[str, Scored] = {}
        for s in scored:
            if s.probability >= TIMELINE_SHARE * scored[0].probability:
                best.setdefault(s.passage.doc_id, s)
        chosen = sorted(best.values(), key=lambda s: (s.passage.published or "", -s.probability))
        out, seen = [], set()
        for s in chosen:
            said = " ".join(wide.docs[s.passage.doc_id].text[s.start:s.end].lower().split())
            if said in seen:
                continue
            seen.add(said)
            out.append(citation(len(out) + 1, s.passage, wide.docs[s.passage.doc_id], s.start, s.end, s.probability))
        return out

    # -- standing questions -------------------------------------------------------------------
    def watch_topic(self, topic: str, *, threshold: float | None = None) -> TopicWatch:
        """Follow `topic`: after each `update`, `watch.news(report)` gives the new articles that
        match it with a cited summary of what they say (None when nothing new matches)."""
        topic = _clean_text(topic, "follow a topic")
        return TopicWatch(self, topic, MATCH_THRESHOLD if threshold is None else threshold)

    def topic_scores(self, topic: str, doc_ids: Sequence[str]) -> dict[str, float]:
        """How close each of these articles comes to `topic`: its best passage's cosine."""
        wanted = tuple(sorted(set(doc_ids)))
        if not wanted:
            return {}
        vector = self.encoder.encode_query(_clean_text(topic, "follow a topic"))
        with self.backend.generation() as view:
            hits = view.dense(vector, TOPIC_DEPTH * len(wanted), Filters(doc_ids=wanted))
            rows = view.chunks([chunk_id for chunk_id, _ in hits])
        return best_per_article(hits, {i: r.doc_id for i, r in rows.items()})

    def topic_news(self, topic: str, doc_ids: Sequence[str], *, threshold: float = MATCH_THRESHOLD) -> TopicNews | None:
        """Which of `doc_ids` (new articles) match `topic`, best first, and a cited summary of
        what they say; None when none does."""
        scores = {d: s for d, s in self.topic_scores(topic, doc_ids).items() if s >= threshold}
        if not scores:
            return None
        order = sorted(scores, key=lambda d: (-scores[d], d))
        with self.backend.generation() as view:
            headers = view.headers(order)
        order = [d for d in order if d in headers]
        # Never abstaining: these articles were matched already; the summary says what they say.
        summary = self._ask(topic, Filters(doc_ids=tuple(order)), k=5, context="", prefer=(), timeline=False,
                            limit=None, on_partial=None, answering=replace(self.answering, threshold=0.0), llm=None)
        return TopicNews(topic, tuple(headers[d] for d in order), tuple(scores[d] for d in order), summary)

    @property
    def answering_depth(self) -> int:
        """Candidate passages whose sentences the answerer reads."""
        return 10

    def chat(self) -> ChatSession:
        """A conversation: follow-ups ("and who confirmed it?") are read in the light of earlier turns."""
        return ChatSession(self)

    # -- maintenance -------------------------------------------------------------------------
    def update(self, *, rebuild: bool = False, progress: bool = False, lock_timeout: float = -1,
               settle: float = 0.0) -> UpdateReport:
        """Bring the index up to date with the corpus; open desks see the result at their next question.

        `lock_timeout` is how long to wait for another writer (-1: as long as it takes; 0: give up
        at once with IndexBusy). Files modified less than `settle` seconds ago wait for the next update.
        """
        self.last_update = update_index(self.settings, self.encoder, rebuild=rebuild, progress=progress,
                                        lock_timeout=lock_timeout, settle=settle, backend=self.backend)
        return self.last_update

    def stats(self) -> IndexStats:
        return index_stats(self.backend)

    def sources(self) -> dict[str, int]:
        """Source name -> number of articles, most articles first (for autocomplete and filters)."""
        with self.backend.generation() as view:
            return {name: n for name, n in view.source_counts().items() if name}

    @property
    def generation(self) -> int:
        """The number of the index generation the next question will read."""
        with self.backend.generation() as view:
            return int(view.manifest["generation"])

    def check(self) -> list[str]:
        """Everything wrong with the index, as sentences (empty: consistent)."""
        return self.backend.check()


def index_stats(backend: IndexBackend) -> IndexStats:
    """What `newsdesk stats` and the bot's /stats show; needs no model."""
    with backend.generation() as view:
        manifest = view.manifest
        return IndexStats(
            index=str(getattr(view, "folder", backend.location)), documents=manifest["documents"],
            chunks=manifest["chunks"], segments=view.segment_count(), model=manifest["model"],
            encoder=manifest.get("encoder", "torch"), dimension=manifest["dimension"],
            chunking=manifest["chunking"], generation=manifest["generation"], created=manifest["created"],
            updated=manifest["updated"], fingerprint=manifest["fingerprint"],
            sources={name or "(none)": n for name, n in view.source_counts().items()},
        )


def gather_evidence(view: IndexView, question: str, vector: np.ndarray, depth: int, filters: Filters,
                    fusion: Fusion, *, prefer: Sequence[str] = (), collapsing: bool = False) -> Evidence:
    """What the answerer reads: the top passages, their documents, term weights and sentence
    vectors. `collapsing`: wire copies are one article (`newsdesk.news.collapse`)."""
    passages = search(view, question, vector, 2 * depth if collapsing else depth, filters, fusion)
    if prefer:
        passages = _preferring(view, question, vector, passages, prefer, filters, fusion)
    if collapsing:
        passages = collapse(passages, copy_groups(view, passages))[:depth]
    docs = view.documents(sorted({p.doc_id for p in passages})) if passages else {}
    stems = sorted(set(question_terms(question)))
    idf = idf_from(view.document_frequencies(stems), view.manifest["chunks"])
    dimension = view.manifest["dimension"]
    blobs = view.sentence_vectors([p.chunk_id for p in passages])
    sentence_vectors = {i: dequantize_sentences(b, dimension) for i, b in blobs.items()}
    return Evidence(question, tuple(passages), docs, idf, vector, sentence_vectors)


def _preferring(view: IndexView, question: str, vector: np.ndarray, passages: list[Passage], prefer: Sequence[str],
                filters: Filters, fusion: Fusion) -> list[Passage]:
    """The passages of the preferred documents that match, first, then the rest."""
    wanted = set(prefer)
    own = search(view, question, vector, len(passages), replace(filters, doc_ids=tuple(sorted(wanted))), fusion)
    own = [p for p in own if p.doc_id in wanted][: max(3, len(passages) // 2)]
    seen = {p.chunk_id for p in own}
    return (own + [p for p in passages if p.chunk_id not in seen])[: len(passages)]


# -- encoders ----------------------------------------------------------------------------------
def encoder_for_build(settings: Settings, backend: IndexBackend | None = None, *, rebuild: bool) -> Encoder:
    """The encoder for an update: the index's own, or for a new index the one `settings.encoder` names."""
    backend = backend or open_backend(settings.index, token=settings.milvus_token)
    kind = settings.encoder
    if kind == "auto" and not rebuild and backend.exists():
        kind = backend.manifest().get("encoder", "torch")
    if kind == "auto":
        kind = "torch" if _gpu_available() else "onnx-int8"
    return load_encoder(settings.model_folder(), kind, settings.device, settings.cache_dir)


def encoder_for_index(settings: Settings, backend: IndexBackend) -> Encoder:
    """The encoder an index was built with; for ONNX, the copy an embedded index keeps."""
    kind = settings.encoder
    if kind.startswith("onnx"):
        kept = getattr(backend, "encoder_copy", lambda kind: None)(kind)
        if kept is not None and kept.exists():
            return _onnx_encoder(settings.model_folder(), kept, kind)
    return load_encoder(settings.model_folder(), kind, settings.device, settings.cache_dir)


def load_encoder(folder: ModelFolder, kind: str, device: str = "auto", cache_dir: Path | None = None) -> Encoder:
    """The model run as `kind`, loaded once per process (it takes a moment and ~100 MB)."""
    folder.check()
    if kind == "torch":
        return _torch_encoder(folder.path, folder.model_id, device)
    onnx_file = onnx_files(folder, cache_dir or default_cache_dir(), kind)
    return _onnx_encoder(folder, onnx_file, kind)


@cache
def _torch_encoder(path: Path, model_id: str, device: str) -> TorchEncoder:
    return TorchEncoder(ModelFolder(path, model_id), device=device)


_ONNX: dict[tuple[str, str, int], OnnxEncoder] = {}


def _onnx_encoder(folder: ModelFolder, onnx_file: Path, kind: str) -> OnnxEncoder:
    """One encoder per distinct ONNX file: the copies inside indexes share the cache's sessions."""
    key = (folder.model_id, kind, onnx_file.stat().st_size)
    if key not in _ONNX:
        _ONNX[key] = OnnxEncoder(folder, onnx_file, kind)
    return _ONNX[key]


def _gpu_available() -> bool:
    """Whether torch would see a GPU, checked without importing torch where there is no NVIDIA driver."""
    if not Path("/proc/driver/nvidia/version").exists() and not os.path.exists("/dev/nvidia0"):
        return False
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


# -- checking arguments --------------------------------------------------------------------------
def _clean_text(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise UsageError(f"{what}: expected text, not {type(text).__name__}")
    # Bytes that were not UTF-8 (a terminal in another encoding) arrive as surrogates: replace them.
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = " ".join(text.split())
    if not text:
        raise UsageError(f"{what}: the text is empty")
    return text


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise UsageError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> None:
    if value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def _mode(mode: SearchMode | str) -> SearchMode:
    try:
        return SearchMode(mode)
    except ValueError:
        raise UsageError(f"mode must be one of {', '.join(m.value for m in SearchMode)}, not {mode!r}") from None


def _filters(since: str | date | None, until: str | date | None, source: str | None) -> Filters:
    def iso(value: str | date | None, name: str) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, date):
            return value.isoformat()
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise UsageError(f"{name} must be a date like 2026-01-31, not {value!r}") from None

    filters = Filters(since=iso(since, "since"), until=iso(until, "until"), source=(source or "").strip() or None)
    if filters.since and filters.until and filters.since > filters.until:
        raise UsageError(f"since ({filters.since}) is after until ({filters.until}): no date can match both")
    return filters


def _require_articles(view: IndexView, location: str) -> None:
    if view.manifest["documents"] == 0:
        raise IndexEmpty(f"the index in {location} holds no articles: put articles in the corpus folder and run "
                         "`newsdesk index`")


def _explain_empty(view: IndexView, filters: Filters) -> None:
    """Nothing matched and filters were set: say what they excluded (an empty answer says nothing)."""
    matching, total, undated = view.count_documents(filters)
    if matching:
        return
    parts = []
    if filters.since:
        parts.append(f"published on or after {filters.since}")
    if filters.until:
        parts.append(f"published on or before {filters.until}")
    if filters.source:
        sources = sorted(name for name in view.source_counts() if name)[:8]
        parts.append(f"from the source {filters.source!r} (the sources are {', '.join(sources) or 'none'})")
    note = f"; {undated} of the {total} articles have no date" if (filters.since or filters.until) and undated else ""
    raise QueryError(f"no article is {' and '.join(parts)}{note}")
