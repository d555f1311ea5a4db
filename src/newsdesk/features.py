"""The features of a candidate answer sentence, which the learned answer model weighs.

Every sentence of the candidate passages gets one row. The features say how much of the
question it covers (IDF-weighted stems, with and without its headline as context), how close
its own meaning is to the question (the cosine of its sentence vector, made at index time
from the passage pass), how its passage ranked, whether it holds the kind of thing the
question asks for that the question does not already name, and whether the question names
something rare that appears nowhere in the passage (the usual sign of a question the text
does not answer). Relative features compare a sentence with the best candidate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from newsdesk.keywords import terms, words
from newsdesk.qtypes import Kind, new_answers, question_kind
from newsdesk.retrieve import Passage
from newsdesk.store import DocText

FEATURES = (
    "cover", "cover_plain", "cover_rel", "passage_cover", "sentence_cos", "sentence_cos_rel", "passage_cos",
    "passage_rank", "keyword", "kind_expected", "kind_match", "kind_missing", "kind_match_when", "kind_match_number",
    "kind_match_who", "kind_match_where", "missing_idf", "missing_share", "position", "headline", "length",
    "new_words", "quote", "title_cover",
)
_QUOTE = re.compile(r"[\"“”]")


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    rank: int  # of its passage among the candidates, 0 = best
    start: int  # offsets in the document's cleaned text
    end: int
    line: int  # the paragraph (line) of the document it is in: 0 is the headline
    answers: tuple[str, ...]  # things of the asked-for kind that the question does not name


@dataclass(frozen=True)
class Question:
    text: str
    kind: Kind
    terms: frozenset[str]
    weights: dict[str, float]
    vector: np.ndarray  # (dimension,)

    @classmethod
    def of(cls, text: str, vector: np.ndarray, idf: Callable[[str], float]) -> Question:
        q_terms = frozenset(terms(text))
        return cls(text, question_kind(text), q_terms, {t: idf(t) for t in q_terms}, vector.reshape(-1))


@lru_cache(maxsize=8192)
def _terms(text: str) -> frozenset[str]:
    return frozenset(terms(text))


def candidates_and_features(question: Question, passages: Sequence[Passage], docs: dict[str, DocText],
                            sentence_vectors: dict[int, np.ndarray]) -> tuple[list[Candidate], np.ndarray]:
    """Each distinct sentence of `passages` (best passage first) and its feature row."""
    total = sum(question.weights.values()) or 1.0
    max_idf = max(question.weights.values(), default=1.0) or 1.0
    best_keyword = max((p.keyword or 0.0 for p in passages), default=0.0) or 1.0
    seen: set[tuple[str, int]] = set()
    rows: list[list[float]] = []
    out: list[Candidate] = []
    sims: list[float] = []
    covers: list[float] = []
    for rank, p in enumerate(passages):
        text = docs[p.doc_id].text
        title_terms = _terms(p.title)
        passage_terms = _terms(p.text) | title_terms
        passage_cover = sum(question.weights[t] for t in question.terms & passage_terms) / total
        missing = [question.weights[t] for t in question.terms - passage_terms]
        missing_idf = max(missing, default=0.0) / max_idf
        missing_share = sum(missing) / total
        title_cover = sum(question.weights[t] for t in question.terms & title_terms) / total
        vectors = sentence_vectors.get(p.chunk_id)
        first_line_end = text.find("\n")
        for i, (start, end) in enumerate(p.sentences):
            if (p.doc_id, start) in seen:
                continue
            seen.add((p.doc_id, start))
            sentence = text[start:end]
            s_terms = _terms(sentence)
            headline = start < first_line_end or first_line_end < 0
            cover = sum(question.weights[t] for t in question.terms & (s_terms | title_terms)) / total
            cover_plain = sum(question.weights[t] for t in question.terms & s_terms) / total
            cos = float(vectors[i] @ question.vector) if vectors is not None and i < len(vectors) else p.dense
            found = tuple(new_answers(question.kind, sentence, question.text, text)) if question.kind is not Kind.OTHER else ()
            expected = question.kind is not Kind.OTHER
            match = 1.0 if found else 0.0
            sentence_words = words(sentence)
            new = sum(1 for w in sentence_words if w not in question.text.lower()) / max(len(sentence_words), 1)
            line = _sentence_index(text, start)
            out.append(Candidate(p, rank, start, end, line, found))
            covers.append(cover)
            sims.append(cos)
            rows.append([
                cover, cover_plain, 0.0, passage_cover, cos, 0.0, max(p.dense, 0.0),
                1.0 / (1 + rank), (p.keyword or 0.0) / best_keyword, float(expected), match,
                float(expected and not found),
                match * (question.kind is Kind.DATE), match * (question.kind is Kind.NUMBER),
                match * (question.kind in (Kind.PERSON, Kind.NAMED)), match * (question.kind is Kind.PLACE),
                missing_idf, missing_share, 1.0 / (1 + line), float(headline),
                math.log1p(len(sentence_words)), new, float(bool(_QUOTE.search(sentence))), title_cover,
            ])
    if not rows:
        return [], np.zeros((0, len(FEATURES)), dtype=np.float32)
    x = np.array(rows, dtype=np.float32)
    x[:, FEATURES.index("cover_rel")] = np.array(covers) - max(covers)
    x[:, FEATURES.index("sentence_cos_rel")] = np.array(sims) - max(sims)
    return out, x


def _sentence_index(text: str, start: int) -> int:
    """How many lines (paragraphs) come before the sentence: 0 is the headline, 1 the lead."""
    return text.count("\n", 0, start)
