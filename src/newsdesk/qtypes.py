"""What kind of answer a question asks for, and where a sentence holds one.

No named-entity model ships on PyPI with its weights, so this works from the conventions of
English news text: dates written the ways news writes them ("January 3, 2026", "Jan. 3",
"January 3rd", "on Saturday", "last week", "in 2019"), amounts ("up to 80", "4.2 million
euros", "dozens", "a third"), and names as capitalised word sequences. The answerer does not
trust these blindly: whether a sentence holds the asked-for kind of thing (and not just the
question's own words back) is one feature among several, weighed by the learned model.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache

from newsdesk.keywords import stopwords, words


class Kind(str, Enum):
    DATE = "when"
    NUMBER = "how many"
    PERSON = "who"
    PLACE = "where"
    NAMED = "which"
    OTHER = "other"


_MONTHS = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
           r"Jan\.?|Feb\.?|Mar\.?|Apr\.?|Jun\.?|Jul\.?|Aug\.?|Sept?\.?|Oct\.?|Nov\.?|Dec\.?)")
_WEEKDAYS = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_DAY = r"(?:[0-3]?\d(?:st|nd|rd|th)?)"
_YEAR = r"(?:1[5-9]\d\d|20\d\d)"
DATE = re.compile(
    rf"\b{_MONTHS}\s+{_DAY}\b(?:,?\s+{_YEAR})?"  # January 3, 2026 / Jan. 3 / January 3rd
    rf"|\b{_DAY}\s+{_MONTHS}(?:,?\s+{_YEAR})?\b"  # 3 January 2026
    rf"|\b{_MONTHS}\s+{_YEAR}\b"  # January 2026
    rf"|\b(?:in|since|by|until|from|of|during|before|after|early|late|mid-?)\s+{_YEAR}s?\b"  # in 2019
    rf"|\b{_YEAR}s?\b"  # a bare year
    rf"|\b(?:on|last|next|this|since|by|until|late|early)\s+{_WEEKDAYS}\b|\b{_WEEKDAYS}\b"
    r"|\b(?:yesterday|today|tonight|tomorrow|overnight)\b"
    r"|\b(?:last|next|this|earlier this|later this|the previous|the following|the same)\s+"
    r"(?:week|weekend|month|year|decade|century|morning|afternoon|evening|night|spring|summer|autumn|fall|winter)\b"
    r"|\b(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|several|few)\s+"
    r"(?:days?|weeks?|months?|years?|decades?|centuries)\s+(?:ago|earlier|later|before|after)\b"
    r"|\b\d{1,2}(?::\d\d)?\s*(?:a\.m\.|p\.m\.|am\b|pm\b)|\b\d{1,2}:\d\d\b"
    r"|\b(?:the\s+)?(?:1[5-9]|20)\d0s\b|\b(?:\d{1,2}(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|"
    r"seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|"
    r"eighteenth|nineteenth|twentieth|twenty-first)\s+century\b"
    r"|\b\d{4}-\d\d-\d\d\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b",
)
_NUMBER_WORDS = (r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
                 r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|"
                 r"ninety|hundred|thousand|million|billion|trillion|dozens?|hundreds|thousands|millions|billions|"
                 r"half|third|quarter|twice|double|triple|score)")
NUMBER = re.compile(
    rf"[$€£¥]\s?\d[\d,.]*|\b\d[\d,.]*\s?(?:%|percent|per cent)|\b\d[\d,.]*(?:\s?(?:million|billion|trillion|bn|m|k))?"
    rf"|\b{_NUMBER_WORDS}\b",
    re.IGNORECASE,
)
# A capitalised sequence: names of people, organisations and places ("Yván Gil", "the U.N.
# Security Council", "São Paulo", "McDonald's"), joined by short particles.
_CAP = r"(?:[A-ZÀ-ÖØ-Þ][\w’'\-.]*|[A-Z]\.(?:[A-Z]\.)+)"
NAME = re.compile(rf"{_CAP}(?:\s+(?:(?:de|da|del|der|van|von|bin|al|of|the|la|le|du|dos|y)\s+)?{_CAP})*")
_NOT_NAMES = {
    "the", "a", "an", "in", "on", "at", "he", "she", "it", "they", "we", "i", "you", "but", "and", "or", "if",
    "this", "that", "these", "those", "his", "her", "its", "their", "our", "my", "as", "for", "with", "by",
    "from", "to", "of", "after", "before", "when", "while", "there", "here", "what", "who", "where", "which",
    "how", "why", "mr", "mrs", "ms", "dr", "so", "yet", "also", "however", "meanwhile", "still", "then", "now",
    "some", "many", "most", "all", "one", "two", "no", "not", "officials", "police", "according", "under",
}
_MONTH_OR_DAY = re.compile(rf"^(?:{_MONTHS}|{_WEEKDAYS})$")
_PLACE_BEFORE = re.compile(r"\b(?:in|at|from|near|across|outside|inside|into|to|throughout|around|off|towards?)\s+"
                           r"(?:the\s+)?$", re.IGNORECASE)

_PLACE_NOUNS = {"country", "countries", "city", "cities", "state", "states", "town", "county", "region",
                "province", "continent", "nation", "island", "capital", "place", "village", "neighborhood",
                "neighbourhood", "district", "location", "venue", "territory", "area", "border", "port"}
_PERSON_NOUNS = {"person", "man", "woman", "politician", "leader", "actor", "actress", "singer", "player", "president",
                 "senator", "official", "minister", "author", "artist", "ceo", "founder", "governor", "judge",
                 "candidate", "athlete", "star", "rapper", "musician", "director", "journalist", "lawmaker",
                 "company", "companies", "organization", "organisation", "group", "team", "party", "agency",
                 "network", "brand", "firm", "band", "club", "department", "court", "union", "country's leader"}
_DATE_NOUNS = {"year", "years", "month", "day", "date", "time", "decade", "century", "season", "week", "era",
               "period", "hour"}
_NUMBER_NOUNS = {"percentage", "percent", "proportion", "share", "number", "amount", "rate", "age", "price",
                 "cost", "total", "score", "sum", "figure", "population", "distance", "temperature", "size"}


def question_kind(question: str) -> Kind:
    """The kind of answer `question` asks for; OTHER when it asks for an explanation or a description."""
    q = " ".join(question.lower().replace("’", "'").split())
    q = re.sub(r"^(?:and|but|so|also|then|ok|okay)[, ]+", "", q)
    if re.search(r"\bhow (?:many|much|long|old|far|big|large|tall|high|fast|often|deep|heavy|wide)\b", q):
        return Kind.NUMBER
    if re.search(r"^when\b|\bwhen (?:did|was|were|is|will|does|do|has|had)\b|\bwhat (?:year|month|day|date|time)\b|"
                 r"\bwhich (?:year|month|day|date|decade|century)\b|\bsince when\b|\bon what (?:day|date)\b|"
                 r"\bin what (?:year|month|decade)\b|\bhow long ago\b", q):
        return Kind.DATE
    if re.search(r"^who\b|\bwho(?:m|se)?\b|\bwhat is the name of\b|\bname the\b", q):
        return Kind.PERSON
    if re.search(r"^where\b|\bwhere (?:did|was|were|is|are|will|does|do|has|had)\b|\bfrom where\b", q):
        return Kind.PLACE
    m = re.search(r"\b(?:which|what)\s+((?:[a-z\-']+\s*){1,3})", q)
    if m:
        for noun in m.group(1).split():
            for nouns, kind in ((_DATE_NOUNS, Kind.DATE), (_NUMBER_NOUNS, Kind.NUMBER), (_PLACE_NOUNS, Kind.PLACE),
                                (_PERSON_NOUNS, Kind.PERSON)):
                if noun in nouns:
                    return kind
        if re.search(r"\bwhich\b", q):
            return Kind.NAMED
    return Kind.OTHER


_MONEY_QUESTION = re.compile(r"\b(?:cost|costs|price|prices|paid|pay|pays|spend|spent|worth|budget|funding|fund|fine|"
                             r"fined|salary|revenue|profit|loss|deal|raised|raise|charge|fee|fees|toll|money|euros?|"
                             r"dollars?|pounds?)\b", re.IGNORECASE)
MONEY = re.compile(
    r"[$€£¥]\s?\d[\d,.]*(?:\s?(?:million|billion|trillion|bn|m|k)\b)?"
    r"|\b\d[\d,.]*\s?(?:million|billion|trillion|thousand|bn|m)?\s?(?:euros?|dollars?|pounds?|yen|francs?|kronor|"
    r"krona|kroner|rupees?|yuan|pesos?|USD|EUR|GBP|cents?)\b", re.IGNORECASE)


def asks_for_money(question: str) -> bool:
    """"How much did the repairs cost?": an amount of money, not just any number."""
    return question_kind(question) is Kind.NUMBER and bool(_MONEY_QUESTION.search(question))


def amounts(sentence: str) -> list[str]:
    return [m.group(0) for m in MONEY.finditer(sentence)]


def dates(sentence: str) -> list[str]:
    return [m.group(0) for m in DATE.finditer(sentence)]


def numbers(sentence: str) -> list[str]:
    """Amounts and counts; the digits of dates do not count as amounts."""
    masked = DATE.sub(lambda m: " " * len(m.group(0)), sentence)
    return [m.group(0).strip() for m in NUMBER.finditer(masked) if m.group(0).strip()]


def names(sentence: str, context: str = "") -> list[str]:
    """Capitalised sequences that are not a month or a weekday.

    A single capitalised word that opens the sentence ("Rescue crews ...", "Cuba condemned ...")
    counts only if `context` (the article) also capitalises it in mid-sentence.
    """
    out = []
    for m in NAME.finditer(sentence):
        text = m.group(0).strip(" '’-")
        text = text[:-1] if text.endswith(".") and not re.search(r"[A-Z]\.[A-Z]\.?$", text) else text
        parts = text.split()
        while parts and parts[0].lower().strip(".") in _NOT_NAMES:
            parts = parts[1:]
        if not parts:
            continue
        text = " ".join(parts)
        if _MONTH_OR_DAY.match(text):
            continue
        at_start = not sentence[:m.start()].strip(" \"“‘'(")
        if at_start and len(parts) == 1 and not _looks_like_name(parts[0]) and not _named_elsewhere(parts[0], context):
            continue
        out.append(text)
    return out


def _looks_like_name(word: str) -> bool:
    """A capitalised first word is a name if it has inner capitals or dots (McDonald, U.N.)."""
    return bool(re.search(r".[A-Z]|\.", word))


def _named_elsewhere(word: str, context: str) -> bool:
    return bool(context) and word.lower() not in stopwords() and word in _mid_sentence_capitals(context)


_MID_CAPITAL = re.compile(r"[\w,;:’'\-)]\s+([A-ZÀ-ÖØ-Þ][\w’'\-]*)")


@lru_cache(maxsize=256)
def _mid_sentence_capitals(context: str) -> frozenset[str]:
    """The capitalised words an article uses in mid-sentence (one pass per article, then cached)."""
    return frozenset(_MID_CAPITAL.findall(context))  # the one group: findall gives it, without match objects


_ATTRIBUTED = re.compile(
    r"\baccording to ((?:the |a |an )?[\w’'\- .]{2,60}?)(?=[,.;:!?]|$| who| which| that)"
    r"|(?:^|[,;] |\b(?:the|a|an) )([\w’'\- ]{2,50}?) (?:said|says|told|confirmed|announced|reported|stated|declared|"
    r"warned|added|claimed|denied|noted)\b", re.IGNORECASE)


def sources(sentence: str) -> list[str]:
    """Who a sentence attributes its claim to: "according to the regional coroner", "harbour officials said"."""
    out = []
    for m in _ATTRIBUTED.finditer(sentence):
        who = (m.group(1) or m.group(2) or "").strip()
        if who and who.lower() not in {"it", "he", "she", "they", "we", "i", "you", "this", "that"}:
            out.append(who)
    return out


def places(sentence: str) -> list[str]:
    """Names that follow a preposition of place ("in Caracas", "from the Netherlands")."""
    out = []
    for m in NAME.finditer(sentence):
        if _PLACE_BEFORE.search(sentence[max(0, m.start() - 20):m.start()]):
            text = m.group(0).strip(" .'’-")
            if text and not _MONTH_OR_DAY.match(text):
                out.append(text)
    return out


def answers_of_kind(kind: Kind, sentence: str, context: str = "") -> list[str]:
    if kind is Kind.DATE:
        return dates(sentence)
    if kind is Kind.NUMBER:
        return numbers(sentence)
    if kind is Kind.PERSON:
        return list(dict.fromkeys(names(sentence, context) + sources(sentence)))
    if kind is Kind.NAMED:
        return names(sentence, context)
    if kind is Kind.PLACE:
        return places(sentence) or names(sentence, context)
    return []


def new_answers(kind: Kind, sentence: str, question: str, context: str = "") -> list[str]:
    """Things of the asked-for kind in `sentence` that the question does not already name."""
    return unasked(answers_of_kind(kind, sentence, context), question)


def unasked(items: list[str], question: str) -> list[str]:
    """The items the question does not already name."""
    asked = _words_of(question)
    out = []
    for item in items:
        own = set(words(item))
        if own and own <= asked:
            continue
        if not own and re.search(rf"(?<!\w){re.escape(item.lower())}(?!\w)", question.lower()):
            continue
        out.append(item)
    return out


@lru_cache(maxsize=64)
def _words_of(question: str) -> frozenset[str]:
    """A question's words, once: every candidate sentence's things are checked against them."""
    return frozenset(words(question))
