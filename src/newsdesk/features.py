"""The features of a candidate answer sentence, which the learned answer model weighs.

Every sentence of the candidate passages gets one row. The features say how much of the
question it covers (IDF-weighted stems, with and without its headline as context), how close
its own meaning is to the question (the cosine of its sentence vector, made at index time
from the passage pass), how its passage ranked, whether it holds the kind of thing the
question asks for that the question does not already name (for "which country/state/city"
questions, one of that class: `newsdesk.gazetteer`), and whether the question names
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

from newsdesk.gazetteer import asked_class, members
from newsdesk.keywords import question_terms, terms, words
from newsdesk.keywords import stems as stems_of
from newsdesk.qtypes import Kind, amounts, asks_for_money, new_answers, question_kind, unasked
from newsdesk.retrieve import Passage
from newsdesk.store import DocText

FEATURES = (
    "cover", "cover_plain", "cover_rel", "passage_cover", "sentence_cos", "sentence_cos_rel", "passage_cos",
    "passage_rank", "keyword", "kind_expected", "kind_match", "kind_missing", "kind_match_when", "kind_match_number",
    "kind_match_who", "kind_match_where", "missing_idf", "missing_share", "position", "headline", "length",
    "new_words", "quote", "title_cover", "bigrams", "rare_match", "matched", "cover_in_passage_rel",
    "cos_in_passage_rel", "prev_cover", "next_cover", "kind_match_cover", "money_match", "money_missing",
    "class_match", "class_missing", "kind_match_which",
)
# How much a word carried from earlier in a conversation counts, against one the question asks.
CONTEXT_WEIGHT = 0.3
_QUOTE = re.compile(r"[\"“”]")


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    rank: int  # of its passage among the candidates, 0 = best
    start: int  # offsets in the document's cleaned text
    end: int
    line: int  # the paragraph (line) of the document it is in: 0 is the headline
    answers: tuple[str, ...]  # things of the asked-for kind that the question does not name
    # Whether `answers` are surely of that kind (a date, an amount, a country) or only likely (a name).
    precise: bool = False


@dataclass(frozen=True)
class Question:
    text: str
    kind: Kind
    terms: frozenset[str]
    weights: dict[str, float]
    vector: np.ndarray  # (dimension,)

    @classmethod
    def of(cls, text: str, vector: np.ndarray, idf: Callable[[str], float], context: str = "") -> Question:
        """`context`: words a chat follow-up carries from the conversation. They count, but for less
        than the follow-up's own words, which say what is asked now."""
        own = frozenset(question_terms(text))
        carried = frozenset(question_terms(context)) - own
        weights = {t: idf(t) for t in own} | {t: CONTEXT_WEIGHT * idf(t) for t in carried}
        return cls(f"{text} {context}".strip(), question_kind(text), own | carried, weights, vector.reshape(-1))


@lru_cache(maxsize=8192)
def _terms(text: str) -> frozenset[str]:
    return frozenset(terms(text))


_HEADING = re.compile(r"#{1,6}\s")


def candidates_and_features(question: Question, passages: Sequence[Passage], docs: dict[str, DocText],
                            sentence_vectors: dict[int, np.ndarray]) -> tuple[list[Candidate], np.ndarray]:
    """Each distinct sentence of `passages` (best passage first) and its feature row."""
    weights = question.weights
    total = sum(weights.values()) or 1.0
    max_idf = max(weights.values(), default=1.0) or 1.0
    rarest = max(sorted(weights), key=weights.get) if weights else None  # ties: the same one in every process
    q_bigrams = _bigrams(question_terms(question.text))
    best_keyword = max((p.keyword or 0.0 for p in passages), default=0.0) or 1.0
    asked = question.text.lower()
    expected = question.kind is not Kind.OTHER
    # On the training questions a date or an amount is in 82% of the sentences that answer a
    # "when"/"how many" question and in about 26% of the others; a capitalised name is in 80-96% of
    # both for "where"/"which", so for those the kind features would only add noise.
    weighed = question.kind in (Kind.DATE, Kind.NUMBER, Kind.PERSON)
    money = asks_for_money(question.text)
    place_class = asked_class(question.text)  # "which country ...": a country the question does not name
    # The lists of countries, US states and continents are complete, the one of cities is not (100,000
    # people or more): a sentence without a listed city may still name the one asked for.
    precise = place_class in ("country", "state", "continent")
    seen: set[tuple[str, int]] = set()
    rows: list[dict[str, float]] = []
    out: list[Candidate] = []
    for rank, p in enumerate(passages):
        text = docs[p.doc_id].text
        title_terms = _terms(p.title)
        passage_terms = _terms(p.text) | title_terms
        missing = [weights[t] for t in question.terms - passage_terms]
        vectors = sentence_vectors.get(p.chunk_id)
        first_line_end = text.find("\n")
        # Per sentence of the passage, before duplicates are dropped: the within-passage comparisons.
        sentences = [text[a:b] for a, b in p.sentences]
        word_lists = [words(x) for x in sentences]
        stems = [stems_of(w) for w in word_lists]
        plain = [sum(weights[t] for t in question.terms & set(st)) / total for st in stems]
        cosines = [float(vectors[i] @ question.vector) if vectors is not None and i < len(vectors) else p.dense
                   for i in range(len(sentences))]
        shared = {
            "passage_cover": sum(weights[t] for t in question.terms & passage_terms) / total,
            "passage_cos": max(p.dense, 0.0), "passage_rank": 1.0 / (1 + rank),
            "keyword": (p.keyword or 0.0) / best_keyword, "kind_expected": float(weighed),
            "missing_idf": max(missing, default=0.0) / max_idf, "missing_share": sum(missing) / total,
            "title_cover": sum(weights[t] for t in question.terms & title_terms) / total,
        }
        for i, (start, end) in enumerate(p.sentences):
            if (p.doc_id, start) in seen:
                continue
            seen.add((p.doc_id, start))
            sentence, s_terms = sentences[i], set(stems[i])
            if _HEADING.match(sentence) and (start == 0 or text[start - 1] == "\n"):
                continue  # a Markdown heading: the headline, shown with the source, not a sentence of the answer
            if place_class:  # for "which country" a country is the answer, not any name
                of_class = unasked(members(place_class, sentence), question.text)
                found = tuple(of_class)
            else:
                of_class = []
                found = tuple(new_answers(question.kind, sentence, question.text, text)) if expected else ()
            match = 1.0 if found and weighed else 0.0
            sentence_words = word_lists[i]
            line = _sentence_index(text, start)
            out.append(Candidate(p, rank, start, end, line, found, precise))
            rows.append(shared | {
                "cover": sum(weights[t] for t in question.terms & (s_terms | title_terms)) / total,
                "cover_plain": plain[i], "sentence_cos": cosines[i], "kind_match": match,
                "kind_missing": float(weighed and not found),
                "kind_match_when": match * (question.kind is Kind.DATE),
                "kind_match_number": match * (question.kind is Kind.NUMBER),
                "kind_match_who": match * (question.kind is Kind.PERSON),
                # A name for "where"/"which" is in most sentences; these two are for the model to weigh alone.
                "kind_match_where": float(bool(found) and question.kind is Kind.PLACE),
                "kind_match_which": float(bool(found) and question.kind is Kind.NAMED),
                "position": 1.0 / (1 + line), "headline": float(start < first_line_end or first_line_end < 0),
                "length": math.log1p(len(sentence_words)),
                "new_words": sum(1 for w in sentence_words if w not in asked) / max(len(sentence_words), 1),
                "quote": float(bool(_QUOTE.search(sentence))),
                "bigrams": len(q_bigrams & _bigrams(stems[i])) / len(q_bigrams) if q_bigrams else 0.0,
                "rare_match": float(rarest in s_terms or rarest in title_terms) if rarest else 0.0,
                "matched": len(question.terms & s_terms) / max(len(question.terms), 1),
                "cover_in_passage_rel": plain[i] - max(plain),
                "cos_in_passage_rel": cosines[i] - max(cosines),
                "prev_cover": plain[i - 1] if i > 0 else 0.0,
                "next_cover": plain[i + 1] if i + 1 < len(plain) else 0.0,
                "kind_match_cover": match * plain[i],
                "money_match": float(money and bool(amounts(sentence))),
                "money_missing": float(money and not amounts(sentence)),
                "class_match": float(bool(of_class)),
                "class_missing": float(bool(place_class) and not of_class),
            })
    if not rows:
        return [], np.zeros((0, len(FEATURES)), dtype=np.float32)
    covers = [r["cover"] for r in rows]
    sims = [r["sentence_cos"] for r in rows]
    for r in rows:
        r["cover_rel"] = r["cover"] - max(covers)
        r["sentence_cos_rel"] = r["sentence_cos"] - max(sims)
    return out, np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float32)


def _bigrams(stems: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(stems, stems[1:]))


def _sentence_index(text: str, start: int) -> int:
    """How many lines (paragraphs) come before the sentence: 0 is the headline, 1 the lead."""
    return text.count("\n", 0, start)
