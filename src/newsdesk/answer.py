"""The extractive answerer: an answer made only of the corpus's own sentences, each cited.

Each sentence of the retrieved passages is scored by how much of the question it covers
(IDF-weighted stems, counting the article's headline as context), how much its passage covers,
and how close its passage is to the question (cosine). The best one to three sentences are the
answer. When even the best is weak the answer
is an abstention, with the closest passages listed as related.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from newsdesk.keywords import terms
from newsdesk.retrieve import Passage

ABSTAIN_TEXT = "The corpus does not answer this question. The closest passages are listed as related."


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "doc_id": self.doc_id, "title": self.title, "url": self.url,
            "published": self.published, "quote": self.quote, "start": self.start, "end": self.end,
            "score": round(self.score, 4),
        }


@dataclass
class Answer:
    question: str
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    related: list[Citation] = field(default_factory=list)
    # What was searched, when it differs from the question (a rewritten chat follow-up).
    query: str | None = None
    # The best sentence's score, compared with the abstention threshold.
    evidence: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question, "answer": self.text, "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "related": [c.to_dict() for c in self.related],
        }


@dataclass(frozen=True)
class AnswerSettings:
    max_sentences: int = 3
    # Further sentences must score at least this fraction of the best one.
    keep_ratio: float = 0.85
    # Below this evidence the answer abstains. Chosen by bench/tune.py: the highest threshold
    # that still answers 97% of answerable tuning questions; it turns away 87% of off-topic ones.
    threshold: float = 0.40
    max_related: int = 3
    # Feature weights of a sentence's score (they sum to 1, so scores stay in [0, 1]), chosen
    # by bench/tune.py on SQuAD and RealTime QA. A bonus for holding the asked-for kind of answer
    # (a number for "how many", a date for "when") was tried there and did not help.
    w_sentence: float = 0.2
    w_passage: float = 0.2
    w_dense: float = 0.6
    title_context: bool = True


@dataclass(frozen=True)
class Scored:
    passage: Passage
    start: int
    end: int
    score: float


def answer(question: str, passages: Sequence[Passage], doc_texts: dict[str, str],
           idf: Callable[[str], float], settings: AnswerSettings = AnswerSettings()) -> Answer:
    scored = score_sentences(question, passages, doc_texts, idf, settings)
    evidence = scored[0].score if scored else 0.0
    if evidence < settings.threshold:
        related = _best_per_passage(scored)[: settings.max_related]
        return Answer(question, ABSTAIN_TEXT, True, [], _citations(related, doc_texts, 1), evidence=evidence)
    chosen = _choose(scored, doc_texts, settings)
    ordered = _reading_order(chosen)
    citations = _citations(ordered, doc_texts, 1)
    text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
    cited_chunks = {s.passage.chunk_id for s in chosen}
    related = [s for s in _best_per_passage(scored) if s.passage.chunk_id not in cited_chunks]
    return Answer(question, text, False, citations,
                  _citations(related[: settings.max_related], doc_texts, len(citations) + 1), evidence=evidence)


def score_sentences(question: str, passages: Sequence[Passage], doc_texts: dict[str, str],
                    idf: Callable[[str], float], settings: AnswerSettings = AnswerSettings()) -> list[Scored]:
    """Every sentence of the passages with its score, best first."""
    q_terms = set(terms(question))
    weights = {t: idf(t) for t in q_terms}
    total = sum(weights.values()) or 1.0
    seen: set[tuple[str, int]] = set()
    out: list[Scored] = []
    for p in passages:
        text = doc_texts[p.doc_id]
        # The headline names what every sentence of the article is about ("Brisk opens bridge" /
        # "The bridge cost 24 million"), so its terms count as present in each sentence.
        context = set(terms(p.title)) if settings.title_context else set()
        passage_cover = sum(weights[t] for t in q_terms & (context | set(terms(p.text)))) / total
        for start, end in p.sentences:
            if (p.doc_id, start) in seen:
                continue
            seen.add((p.doc_id, start))
            sentence_terms = set(terms(text[start:end]))
            if context and sentence_terms <= context:
                continue  # the headline itself: it says nothing the citation's title does not
            cover = sum(weights[t] for t in q_terms & (context | sentence_terms)) / total
            score = (settings.w_sentence * cover + settings.w_passage * passage_cover
                     + settings.w_dense * max(p.dense, 0.0))
            out.append(Scored(p, start, end, score))
    out.sort(key=lambda s: -s.score)
    return out


def idf_from(frequencies: dict[str, int], total: int) -> Callable[[str], float]:
    """BM25's IDF; a term the corpus never uses gets the highest weight, so missing it counts."""
    def idf(term: str) -> float:
        df = frequencies.get(term, 0)
        return math.log(1 + (total - df + 0.5) / (df + 0.5))
    return idf


# -- choosing and ordering -------------------------------------------------------------------
_ATTRIBUTION = re.compile(
    r"\b(said|says|say|told|tells|according to|declared|stated|added|claimed|announced|reported|"
    r"wrote|warned|insisted|confirmed|denied|argued|noted|explained|asked|replied)\b", re.IGNORECASE)
_QUOTE_MARK = re.compile(r"[\"“”]")


def _with_attribution(s: Scored, doc_text: str) -> Scored:
    """A quotation without its speaker becomes a claim of ours: take in who said it.

    When a sentence quotes someone ("…") but names no speaker, the quote is extended back to the
    nearest earlier sentence of the same paragraph that has an attribution verb (at most two).
    """
    sentence = doc_text[s.start:s.end]
    if not _QUOTE_MARK.search(sentence) or _ATTRIBUTION.search(sentence):
        return s
    earlier = [(a, b) for a, b in s.passage.sentences if b <= s.start]
    line_start = doc_text.rfind("\n", 0, s.start) + 1
    for a, b in reversed(earlier[-2:]):
        if a < line_start:
            break
        if _ATTRIBUTION.search(doc_text[a:b]):
            return Scored(s.passage, a, s.end, s.score)
    return s


def _choose(scored: list[Scored], doc_texts: dict[str, str], settings: AnswerSettings) -> list[Scored]:
    best = scored[0].score
    chosen: list[Scored] = []
    for s in scored:
        if len(chosen) == settings.max_sentences or s.score < best * settings.keep_ratio:
            break
        s = _with_attribution(s, doc_texts[s.passage.doc_id])
        if any(c.passage.doc_id == s.passage.doc_id and c.start < s.end and s.start < c.end for c in chosen):
            continue  # overlaps a sentence already chosen (attribution extension)
        chosen.append(s)
    return chosen


def _reading_order(chosen: list[Scored]) -> list[Scored]:
    """Newest article first (a revised figure before the earlier one), then document order."""
    first_seen: dict[str, int] = {}
    for i, s in enumerate(chosen):
        first_seen.setdefault(s.passage.doc_id, i)
    in_documents = sorted(chosen, key=lambda s: (first_seen[s.passage.doc_id], s.start))
    # Stable sort: undated articles go last, ties keep document order.
    return sorted(in_documents, key=lambda s: s.passage.published or "", reverse=True)


def _best_per_passage(scored: list[Scored]) -> list[Scored]:
    best: dict[int, Scored] = {}
    for s in scored:
        best.setdefault(s.passage.chunk_id, s)
    return list(best.values())


def _citations(items: list[Scored], doc_texts: dict[str, str], first: int) -> list[Citation]:
    return [
        Citation(
            n=first + i, doc_id=s.passage.doc_id, title=s.passage.title, url=s.passage.url,
            published=s.passage.published, quote=doc_texts[s.passage.doc_id][s.start:s.end],
            start=s.start, end=s.end, score=s.score,
        )
        for i, s in enumerate(items)
    ]
