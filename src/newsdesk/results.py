"""What a question returns: an `Answer` with its `Citation`s, and the parts news answers add.

All of these are frozen: an answer is built once, by the answerer (or the generated-answer
check), and never changed afterwards; a chat follow-up gets a copy with `dataclasses.replace`.
`to_dict()` is the JSON shape of `newsdesk ask --json` and of the Python API alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What `Citation.start`/`end` index: the file a user can open, the "text" field of a JSON
# record, or the text extracted from HTML/PDF (stored in the index).
OFFSETS_IN = ("file", "record", "extracted")


@dataclass(frozen=True)
class Report:
    """Another article carrying the same story: a wire copy in another outlet, or a newer version."""

    doc_id: str
    title: str
    source: str | None
    published: str | None
    url: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "title": self.title, "source": self.source, "published": self.published,
                "url": self.url}


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    url: str | None
    published: str | None
    quote: str
    start: int
    end: int
    score: float
    source: str | None = None
    authors: tuple[str, ...] = ()
    # Where the quote sits: `path` (relative to the corpus) at [start, end) of `offsets_in`.
    path: str = ""
    offsets_in: str = "file"
    # Other outlets that ran the same story (near-duplicates collapsed into this citation).
    also_reported_by: tuple[Report, ...] = ()
    # Independent sources that carry this claim: this article's and those of its copies.
    sources_count: int = 1

    @property
    def single_source(self) -> bool:
        return self.sources_count <= 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "doc_id": self.doc_id, "title": self.title, "url": self.url,
            "published": self.published, "source": self.source, "authors": list(self.authors),
            "quote": self.quote, "path": self.path, "start": self.start, "end": self.end,
            "offsets_in": self.offsets_in, "score": round(self.score, 4),
            "also_reported_by": [r.to_dict() for r in self.also_reported_by],
            "sources_count": self.sources_count,
        }


@dataclass(frozen=True)
class TimelineEntry:
    """One dated step of a story: the date and the citation that reports it."""

    date: str
    n: int
    quote: str

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.date, "n": self.n, "quote": self.quote}


@dataclass(frozen=True)
class Sentence:
    """One sentence of a model's answer: its text without markers, and the passages it cites."""

    text: str
    cites: tuple[int, ...]


@dataclass(frozen=True)
class Removed:
    """A sentence of the model's reply that the support check left out, and why."""

    text: str
    cites: tuple[int, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "cites": list(self.cites), "reason": self.reason}


@dataclass(frozen=True)
class Generated:
    """The language model's part of an answer. `fallback`: nothing it wrote was usable, and the
    answer's text is the extractive one (the notes say why)."""

    model: str
    sentences: tuple[Sentence, ...] = ()
    removed: tuple[Removed, ...] = ()
    fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "fallback": self.fallback, "removed": [r.to_dict() for r in self.removed]}


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    related: tuple[Citation, ...] = ()
    # What was searched, when it differs from the question (a rewritten chat follow-up).
    query: str | None = None
    # The answerer's estimate that the first sentence answers the question (0..1); it abstains
    # below its calibrated threshold.
    confidence: float = 0.0
    # Lines for the reader: why a generated answer fell back, what the filters left out, ...
    notes: tuple[str, ...] = ()
    # The date of the newest cited article, and newer articles on the same story not cited.
    as_of: str | None = None
    newer: tuple[Report, ...] = ()
    # For questions about change: one cited sentence per date, oldest first.
    timeline: tuple[TimelineEntry, ...] = ()
    generated: Generated | None = None

    @property
    def sources(self) -> tuple[Citation, ...]:
        """What a front end shows as sources: the citations, or the related passages of an abstention."""
        return self.related if self.abstained else self.citations

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question, "answer": self.text, "abstained": self.abstained,
            "query": self.query, "confidence": round(self.confidence, 4), "as_of": self.as_of,
            "notes": list(self.notes),
            "citations": [c.to_dict() for c in self.citations],
            "related": [c.to_dict() for c in self.related],
            "newer": [r.to_dict() for r in self.newer],
            "timeline": [t.to_dict() for t in self.timeline],
            "generated": self.generated.to_dict() if self.generated else None,
        }
