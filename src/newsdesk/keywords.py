"""One tokenizer for everything lexical: the BM25 index, query terms, and sentence scoring.

Text is lower-cased, split on letters and digits, stripped of English stop words and stemmed
(Snowball, via PyStemmer). SQLite's FTS5 receives these stems already made, so the index and
the answerer always agree on what a term is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import Stemmer

_TOKEN = re.compile(r"[^\W_]+")


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@cache
def stopwords() -> frozenset[str]:
    """nltk's English stop words, from the copy llama-index ships (read as a file: importing
    llama-index or nltk would cost a second at every query)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_index.core")
    folder = Path(list(spec.submodule_search_locations)[0]) if spec and spec.submodule_search_locations else None
    path = folder / "_static" / "nltk_cache" / "corpora" / "stopwords" / "english" if folder else None
    if path is None or not path.exists():
        from llama_index.core.utils import globals_helper

        return frozenset(globals_helper.stopwords)
    return frozenset(w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip())


def words(text: str) -> list[str]:
    """Lower-cased content words, before stemming."""
    stop = stopwords()
    return [w for w in _TOKEN.findall(text.lower()) if w not in stop]


def terms(text: str) -> list[str]:
    return stems(words(text))


def stems(content_words: list[str]) -> list[str]:
    """The stems of words `words` gave: for a caller that needs both."""
    return _stemmer().stemWords(content_words)


# The scaffolding of questions ("how many", "when did it take place", "what date"): they say what
# kind of answer is wanted, not what it is about, and an article rarely uses them, so as search
# terms they would outweigh the words that matter.
_SCAFFOLD = frozenset({"many", "much", "take", "took", "taken", "place", "happen", "happened", "happens",
                       "occur", "occurred", "date"})


def question_terms(question: str) -> list[str]:
    """The stems a question is searched and scored with: `terms` without the question scaffolding."""
    return _stemmer().stemWords([w for w in words(question) if w not in _SCAFFOLD])


def fts_query(query_terms: list[str]) -> str | None:
    """An FTS5 MATCH expression that ORs the terms; quoting keeps FTS syntax out of user text."""
    unique = list(dict.fromkeys(query_terms))
    if not unique:
        return None
    return " OR ".join(f'"{t}"' for t in unique)


def idf_from(frequencies: dict[str, int], total: int) -> Callable[[str], float]:
    """BM25's IDF; a term the corpus never uses gets the highest weight, so missing it counts."""
    def idf(term: str) -> float:
        # A term no chunk uses weighs as much as one used once: in a small corpus the first would
        # otherwise outweigh every word the question shares with it.
        df = max(frequencies.get(term, 0), 1)
        return math.log(1 + (total - df + 0.5) / (df + 0.5))
    return idf
