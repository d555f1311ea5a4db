"""The previous version's answerer (newsdesk 0.1, main at 708fa5e), kept as the benchmarks' anchor.

Each sentence of the top 5 passages scored 0.2 x its IDF-weighted question coverage (headline
terms counted as present) + 0.2 x its passage's coverage + 0.6 x its passage's cosine; the best
1-3 sentences within 85% of the best, newest article first; abstention below 0.40.
"""

from __future__ import annotations

from dataclasses import dataclass

import re

from newsdesk.answer import Evidence
from newsdesk.keywords import terms

_ATTRIBUTION = re.compile(
    r"\b(said|says|say|told|tells|according to|declared|stated|added|claimed|announced|reported|"
    r"wrote|warned|insisted|confirmed|denied|argued|noted|explained|asked|replied)\b", re.IGNORECASE)
_QUOTE_MARK = re.compile(r"[\"“”]")

W_SENTENCE, W_PASSAGE, W_DENSE = 0.2, 0.2, 0.6
THRESHOLD = 0.40
KEEP_RATIO = 0.85
MAX_SENTENCES = 3
PASSAGES = 5


@dataclass(frozen=True)
class Picked:
    doc_id: str
    chunk_id: int
    published: str | None
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class BaselineAnswer:
    abstained: bool
    text: str
    quotes: list[str]
    chunk_ids: list[int]
    evidence: float


def scored(evidence: Evidence) -> list[Picked]:
    q_terms = set(terms(evidence.question))
    weights = {t: evidence.idf(t) for t in q_terms}
    total = sum(weights.values()) or 1.0
    seen: set[tuple[str, int]] = set()
    out = []
    for p in evidence.passages[:PASSAGES]:
        text = evidence.docs[p.doc_id].text
        context = set(terms(p.title))
        passage_cover = sum(weights[t] for t in q_terms & (context | set(terms(p.text)))) / total
        for start, end in p.sentences:
            if (p.doc_id, start) in seen:
                continue
            seen.add((p.doc_id, start))
            sentence_terms = set(terms(text[start:end]))
            if context and sentence_terms <= context:
                continue
            cover = sum(weights[t] for t in q_terms & (context | sentence_terms)) / total
            score = W_SENTENCE * cover + W_PASSAGE * passage_cover + W_DENSE * max(p.dense, 0.0)
            out.append(Picked(p.doc_id, p.chunk_id, p.published, start, end, score))
    out.sort(key=lambda s: -s.score)
    return out


def answer(evidence: Evidence) -> BaselineAnswer:
    ranked = scored(evidence)
    best = ranked[0].score if ranked else 0.0
    if best < THRESHOLD:
        return BaselineAnswer(True, "", [], [], best)
    chosen: list[Picked] = []
    for s in ranked:
        if len(chosen) == MAX_SENTENCES or s.score < best * KEEP_RATIO:
            break
        s = _with_attribution(s, evidence)
        if any(c.doc_id == s.doc_id and c.start < s.end and s.start < c.end for c in chosen):
            continue
        chosen.append(s)
    first_seen: dict[str, int] = {}
    for i, s in enumerate(chosen):
        first_seen.setdefault(s.doc_id, i)
    ordered = sorted(sorted(chosen, key=lambda s: (first_seen[s.doc_id], s.start)),
                     key=lambda s: s.published or "", reverse=True)
    quotes = [evidence.docs[s.doc_id].text[s.start:s.end] for s in ordered]
    return BaselineAnswer(False, " ".join(quotes), quotes, [s.chunk_id for s in ordered], best)


def _with_attribution(s: Picked, evidence: Evidence) -> Picked:
    """As before: a quotation without its speaker reaches back to the sentence that names one."""
    text = evidence.docs[s.doc_id].text
    sentence = text[s.start:s.end]
    if not _QUOTE_MARK.search(sentence) or _ATTRIBUTION.search(sentence):
        return s
    passage = next(p for p in evidence.passages if p.chunk_id == s.chunk_id)
    earlier = [(a, b) for a, b in passage.sentences if b <= s.start]
    line_start = text.rfind("\n", 0, s.start) + 1
    for a, b in reversed(earlier[-2:]):
        if a < line_start:
            break
        if _ATTRIBUTION.search(text[a:b]):
            return Picked(s.doc_id, s.chunk_id, s.published, a, s.end, s.score)
    return s
