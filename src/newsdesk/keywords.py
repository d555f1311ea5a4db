"""One tokenizer for everything lexical: the BM25 index, query terms, and sentence scoring.

Text is lower-cased, split on letters and digits, stripped of English stop words and stemmed
(Snowball, via PyStemmer). SQLite's FTS5 receives these stems already made, so the index and
the answerer always agree on what a term is.
"""

from __future__ import annotations

import re
from functools import cache

import Stemmer

_TOKEN = re.compile(r"[^\W_]+")


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@cache
def stopwords() -> frozenset[str]:
    from llama_index.core.utils import globals_helper  # ships nltk's list; nothing to download

    return frozenset(globals_helper.stopwords)


def words(text: str) -> list[str]:
    """Lower-cased content words, before stemming."""
    stop = stopwords()
    return [w for w in _TOKEN.findall(text.lower()) if w not in stop]


def terms(text: str) -> list[str]:
    return _stemmer().stemWords(words(text))


def fts_query(query_terms: list[str]) -> str | None:
    """An FTS5 MATCH expression that ORs the terms; quoting keeps FTS syntax out of user text."""
    unique = list(dict.fromkeys(query_terms))
    if not unique:
        return None
    return " OR ".join(f'"{t}"' for t in unique)
