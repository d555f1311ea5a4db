"""The support check: every sentence of a generated answer must be backed by a passage it cites.

A language model's answer is split into sentences, each with the `[n]` markers it carries. A
sentence is kept only if

- it cites at least one passage that exists (markers outside 1..k are dropped first),
- every number it states appears in the passages it cites (a changed figure is the most common
  way a fluent answer goes wrong, and neither measure below notices it), and
- some cited passage supports it: the share of its content terms (stems, stop words removed)
  found in the passage and its headline is at least `min_overlap`, or the cosine between the
  sentence and the passage's closest sentence is at least `min_cosine`.

A cited passage that does not support the sentence loses its marker; the sentence stays if
another cited passage does. Sentences of a passage that address the reader with instructions
("ignore previous instructions ...") are no evidence for anything, so text copied from a
prompt-injection attempt is never "supported" by it.

The thresholds were measured with `python bench/llm.py --calibrate` on SQuAD (see
docs/llm.md): claims made from a question and its gold answer, checked against the gold
paragraph (supported) and against the best-matching paragraph of another article (not).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from newsdesk.chunk import sentence_spans
from newsdesk.keywords import terms
from newsdesk.results import Sentence
from newsdesk.retrieve import Passage
from newsdesk.store import DocText

MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_DIGITS = re.compile(r"\d+")
# An article sentence that talks to the model instead of about the news.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.]{0,60}\b(?:instructions?|prompts?|"
    r"(?:previous|prior|above|earlier|your|system) (?:rules|guidelines)|everything (?:above|before))\b"
    r"|\b(?:system prompt|developer message|you are now|as an ai\b|language model,? you must)"
    r"|\b(?:reply|respond|answer|say|write|output)\b[^.]{0,25}\b(?:only|exactly|verbatim)\b[^.]{0,10}"
    r"(?:with|the following|[\"“'])",
    re.IGNORECASE,
)

Encode = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class SupportSettings:
    # Measured by `python bench/llm.py --calibrate` (docs/llm.md) on SQuAD: the pair that kept the
    # most supported claims (94%; 94% on held-out articles) while passing at most 5% of claims
    # cited to a wrong passage (held out: 0% from another article, 11% from the same article).
    min_overlap: float = 0.65
    min_cosine: float = 0.70
    numbers_must_match: bool = True


@dataclass(frozen=True)
class Evidence:
    """How well one passage backs one sentence, and the passage sentence that backs it best."""

    overlap: float
    cosine: float
    numbers_ok: bool
    start: int  # document offsets of the closest passage sentence
    end: int

    def supports(self, s: SupportSettings) -> bool:
        return (self.numbers_ok or not s.numbers_must_match) and (
            self.overlap >= s.min_overlap or self.cosine >= s.min_cosine)

    @property
    def score(self) -> float:
        return max(self.overlap, self.cosine)


@dataclass(frozen=True)
class Verdict:
    sentence: Sentence
    kept: tuple[int, ...]  # cited passages (prompt numbering) that support it
    evidence: dict[int, Evidence] = field(default_factory=dict)
    reason: str = ""  # why it was removed; empty when kept

    @property
    def supported(self) -> bool:
        return bool(self.kept)


def split_answer(text: str) -> list[Sentence]:
    """The sentences of `text` with the markers each carries.

    A marker that follows a sentence's full stop ("... euros. [2]") belongs to that sentence.
    While a reply is streaming, all but the last sentence are complete.
    """
    spans = sentence_spans(text)
    pieces = [text[a:b] for a, b in spans]
    merged: list[str] = []
    for piece in pieces:
        lead = re.match(r"^(?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\])+", piece)
        if lead and merged:
            merged[-1] += " " + lead.group(0).strip()
            piece = piece[lead.end():]
        if piece.strip():
            merged.append(piece)
    sentences = []
    for piece in merged:
        cites = tuple(dict.fromkeys(int(n) for m in MARKER.finditer(piece) for n in m.group(1).split(",")))
        plain = _LIST_ITEM.sub("", MARKER.sub("", piece))
        plain = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(plain.split()))
        if plain:
            sentences.append(Sentence(plain, cites))
    return sentences


class SupportChecker:
    """Checks sentences against the k passages the model was shown (numbered 1..k)."""

    def __init__(self, passages: Sequence[Passage], doc_texts: dict[str, DocText], encode: Encode,
                 settings: SupportSettings = SupportSettings()):
        self.passages = list(passages)
        self.doc_texts = doc_texts
        self.encode = encode
        self.settings = settings
        self._units: dict[int, list[tuple[int, int, str]]] = {}
        self._vectors: dict[int, np.ndarray] = {}
        self._terms: dict[int, set[str]] = {}
        self._digits: dict[int, set[str]] = {}

    def _prepare(self, n: int) -> None:
        """Passage n's evidence sentences (instructions excluded), their vectors and its terms."""
        if n in self._units:
            return
        p = self.passages[n - 1]
        text = self.doc_texts[p.doc_id].text
        units = [(a, b, text[a:b]) for a, b in p.sentences if not INSTRUCTION.search(text[a:b])]
        self._units[n] = units
        body = " ".join(u[2] for u in units)
        self._terms[n] = set(terms(body)) | set(terms(p.title))
        self._digits[n] = set(_DIGITS.findall(body + " " + p.title))
        self._vectors[n] = self.encode([u[2] for u in units]) if units else np.zeros((0, 1), dtype=np.float32)

    def evidence(self, sentence: Sentence, vector: np.ndarray, n: int) -> Evidence:
        self._prepare(n)
        claim_terms = set(terms(sentence.text))
        overlap = len(claim_terms & self._terms[n]) / len(claim_terms) if claim_terms else 0.0
        numbers_ok = set(_DIGITS.findall(sentence.text)) <= self._digits[n]
        units = self._units[n]
        if not units:
            return Evidence(overlap, 0.0, numbers_ok, 0, 0)
        sims = self._vectors[n] @ vector
        best = int(np.argmax(sims))
        return Evidence(overlap, float(sims[best]), numbers_ok, units[best][0], units[best][1])

    def check(self, sentences: Sequence[Sentence]) -> list[Verdict]:
        vectors = self.encode([s.text for s in sentences]) if sentences else []
        verdicts = []
        for sentence, vector in zip(sentences, vectors):
            verdicts.append(self._verdict(sentence, vector))
        return verdicts

    def _verdict(self, sentence: Sentence, vector: np.ndarray) -> Verdict:
        if not sentence.cites:
            return Verdict(sentence, (), reason="cites no passage")
        real = [n for n in sentence.cites if 1 <= n <= len(self.passages)]
        if not real:
            return Verdict(sentence, (), reason=f"cites passage {sentence.cites[0]}, which does not exist")
        if len(terms(sentence.text)) < 2:
            return Verdict(sentence, (), reason="too short to check")
        evidence = {n: self.evidence(sentence, vector, n) for n in real}
        kept = tuple(n for n in real if evidence[n].supports(self.settings))
        if kept:
            return Verdict(sentence, kept, evidence)
        if not any(e.numbers_ok for e in evidence.values()) and self.settings.numbers_must_match:
            return Verdict(sentence, (), evidence, reason="states a number its sources do not")
        return Verdict(sentence, (), evidence, reason="not supported by the passages it cites")
