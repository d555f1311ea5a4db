"""What an answer says about its stories: who else ran it, as of when, what is newer, how it changed.

Pure functions over `newsdesk.results` types. The caller says, for each cited article, which
articles are in its story group and which of those are copies of it (`Member`, usually from
`newsdesk.dedup.DuplicateFinder.story` / `.copies` and the index's metadata); nothing here reads
the index or the text of uncited articles.

Rules, and why:

* **Also reported by** are the copies of a cited article from *other* outlets. A copy from the
  same outlet is that outlet's update or re-run of its own story (a wire agency updating its
  report keeps most of the text, so it can pass for a copy), so a newer one is listed as a
  newer article, never as another outlet. One report per outlet: the earliest of its copies.
* **Sources** (`sources_count`) count the distinct named outlets among the cited article and
  its copies, as `Citation` defines it. Outlets that ran one agency's story are not independent
  reporters; the count says how many carried the claim, not how many checked it.
* **As of** is the date of the newest cited article: the copies carry the same sentence and
  say nothing newer.
* **Newer** are the articles of a cited story published after every cited article of that
  story, other than copies from other outlets (those are "also reported by"). Undated articles
  are never newer; a story none of whose cited articles is dated has nothing newer.
* **Single source**: a cited sentence that only one outlet carries and that gives its content
  as someone's claim ("according to officials", "allegedly", "could not be confirmed") is
  marked as such in the notes. A plain "the council said" is not: news attributes nearly every
  sentence that way, and marking them all would mark every answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from newsdesk.answer import _ATTRIBUTION
from newsdesk.load import published_day
from newsdesk.results import Answer, Citation, Report, TimelineEntry


@dataclass(frozen=True)
class Member:
    """One article of a cited article's story group."""

    doc_id: str
    title: str
    source: str | None
    published: str | None  # ISO 8601, as the loader stores it
    url: str | None
    copy: bool  # a copy of the cited article (its copy group), not another version of the story

    def report(self) -> Report:
        return Report(self.doc_id, self.title, self.source, self.published, self.url)


def members(doc_id: str, story: Iterable[str], copies: Iterable[str], meta: Mapping[str, Report]) -> tuple[Member, ...]:
    """The members of `doc_id`'s story group, from its story and copy groups (doc_ids, as
    `DuplicateFinder.story(doc_id)` and `.copies(doc_id)` return them) and each article's
    metadata. The article itself is left out; so are ids without metadata."""
    copy_ids = set(copies)
    out = []
    for other in sorted(set(story) | copy_ids):
        if other == doc_id or other not in meta:
            continue
        r = meta[other]
        out.append(Member(other, r.title, r.source, r.published, r.url, other in copy_ids))
    return tuple(out)


# -- an answer's stories -------------------------------------------------------------------------
def with_story(answer: Answer, groups: Mapping[str, Sequence[Member]]) -> Answer:
    """`answer` with `also_reported_by` and `sources_count` on its citations and related
    passages, `as_of` and `newer`, and a note for each attributed single-source claim.

    `groups` maps a cited article's doc_id to its story group's members (`members`); an article
    missing from it is alone in its story. The notes the fields already carry ("As of ...",
    "A newer article ...") are not added: `story_notes` gives them to a front end that shows
    only notes.
    """
    citations = tuple(_with_copies(c, groups.get(c.doc_id, ())) for c in answer.citations)
    related = tuple(_with_copies(c, groups.get(c.doc_id, ())) for c in answer.related)
    notes = tuple(f"[{c.n}] Single source: {c.source or c.title}." for c in _single_source_claims(citations))
    return replace(answer, citations=citations, related=related, as_of=as_of(citations),
                   newer=newer(citations, groups), notes=(*answer.notes, *notes))


def also_reported_by(citation: Citation, group: Sequence[Member]) -> tuple[Report, ...]:
    """The copies of the cited article run by other outlets: one per outlet (its earliest
    copy), oldest first."""
    by_outlet: dict[str, Member] = {}
    for m in group:
        if not m.copy or m.doc_id == citation.doc_id or _same_outlet(m.source, citation.source):
            continue
        key = _outlet(m.source) or f"doc:{m.doc_id}"  # without a source name, each copy stands alone
        if key not in by_outlet or _sort_key(m.published) < _sort_key(by_outlet[key].published):
            by_outlet[key] = m
    return tuple(m.report() for m in sorted(by_outlet.values(), key=lambda m: (_sort_key(m.published), m.doc_id)))


def sources_count(citation: Citation, reports: Sequence[Report]) -> int:
    """Distinct named outlets among the cited article and the other outlets' copies (at least 1)."""
    outlets = {_outlet(s) for s in (citation.source, *(r.source for r in reports))} - {None}
    return max(1, len(outlets))


def as_of(citations: Sequence[Citation]) -> str | None:
    """The date (YYYY-MM-DD) of the newest cited article; None when none is dated."""
    days = [d for c in citations if (d := published_day(c.published))]
    return max(days).isoformat() if days else None


def newer(citations: Sequence[Citation], groups: Mapping[str, Sequence[Member]]) -> tuple[Report, ...]:
    """Articles of the cited stories published after every cited article of their story, newest
    first; not cited themselves, and not other outlets' copies of a cited article."""
    cited = {c.doc_id: c for c in citations}
    found: dict[str, Member] = {}
    for story in _stories(cited, groups):
        dates = [c.published for d in story if (c := cited.get(d)) and published_day(c.published)]
        if not dates:
            continue
        newest = max(dates, key=_sort_key)
        for doc_id in story & cited.keys():
            for m in groups.get(doc_id, ()):
                if m.doc_id in cited or not _later(m.published, newest):
                    continue
                if m.copy and not _same_outlet(m.source, cited[doc_id].source):
                    continue  # the same text elsewhere: "also reported by"
                found[m.doc_id] = m
    ordered = sorted(found.values(), key=lambda m: (_sort_key(m.published), m.doc_id), reverse=True)
    return tuple(m.report() for m in ordered)


def story_notes(answer: Answer) -> tuple[str, ...]:
    """All the story lines of an answer, for a front end that shows notes and not the fields:
    as of when, the newest newer article, how many sources carried each cited claim (when more
    than one), and which attributed claims only one source carried."""
    lines = []
    if answer.as_of:
        lines.append(f"As of {human_date(answer.as_of)}.")
    if answer.newer:
        lines.append(f"A newer article on this story exists: {_describe(answer.newer[0])}.")
    for c in answer.citations:
        if c.sources_count > 1:
            lines.append(f"[{c.n}] Reported by {c.sources_count} sources.")
    lines.extend(f"[{c.n}] Single source: {c.source or c.title}." for c in _single_source_claims(answer.citations))
    return tuple(lines)


# -- attribution ---------------------------------------------------------------------------------
# Besides the answerer's attribution verbs: the words that say a claim is someone's, not checked.
_HEDGE = re.compile(
    r"\b(unconfirmed|not (?:been )?(?:independently )?(?:confirmed|verified)|could not (?:be )?(?:independently )?"
    r"(?:confirmed|verified|confirm|verify)|allegedly|reportedly|purportedly|asked not to be (?:named|identified)|"
    r"speaking on condition of anonymity|sources? (?:close to|familiar with))\b", re.IGNORECASE)


# A claim, not a report: "according to", "claimed", "alleged" (besides the hedges). A plain "said"
# is how news reports nearly everything; marking every such sentence would mark every answer.
_CLAIM = re.compile(r"\b(according to|claim(?:s|ed)?|alleg(?:e|es|ed|ing|ation|ations)|insisted|denied)\b",
                    re.IGNORECASE)


def is_attributed(quote: str) -> bool:
    """The sentence gives its claim as someone's ("according to", "said", "unconfirmed")."""
    return bool(_ATTRIBUTION.search(quote) or _HEDGE.search(quote))


def is_claim(quote: str) -> bool:
    """The sentence gives its content as someone's unchecked claim ("according to two officials",
    "allegedly", "could not be confirmed"), not as reported fact ("the council said")."""
    return bool(_CLAIM.search(quote) or _HEDGE.search(quote))


def _single_source_claims(citations: Sequence[Citation]) -> list[Citation]:
    return [c for c in citations if c.single_source and is_claim(c.quote)]


# -- timelines -----------------------------------------------------------------------------------
_CHANGE = (r"(?:chang(?:e|ed|es|ing)|evolv(?:e|ed|es|ing)|develop(?:ed|ing)?|unfold(?:ed|ing)?|progress(?:ed|ing)?|"
           r"shift(?:ed|ing)?|ris(?:e|en|es|ing)|rose|f[ae]ll(?:en|s|ing)?|gr[eo]w(?:n|s|ing)?|"
           r"(?:in|de)creas(?:e|ed|es|ing)|climb(?:ed|s|ing)?|drop(?:ped|s|ping)?)\b")
_TIMELINE = [re.compile(p, re.IGNORECASE) for p in (
    r"\b(?:timeline|chronology|sequence of events|day by day|over time)\b",
    rf"\bhow\s+(?:did|has|have|had|does|do|is|are|was|were)\b.*\b{_CHANGE}",  # how did the death toll change
    r"\bwhat\s+(?:has\s+|have\s+)?happened\s+(?:since|after|next|then)\b",    # what happened since the vote
    r"\bwhat\b.*\bchanged\b.*\bsince\b",                                       # what has changed since May
    r"\b(?:latest|newest)\s+(?:on|news|about|in|developments?|updates?)\b",      # latest on the strike
    r"\bupdates?\s+on\b",
)]


def asks_for_timeline(question: str) -> bool:
    """A question about change: "how did the death toll change", "timeline of the raid", "what
    happened since the vote", "how has the outbreak evolved", "latest on the strike"."""
    return any(p.search(question) for p in _TIMELINE)


def timeline(candidates: Sequence[Citation]) -> tuple[TimelineEntry, ...]:
    """One sentence per day, oldest first: of the candidates (numbered citations, e.g. the
    answerer's scored sentences from the articles of one story), each day's best-scoring one.
    Undated candidates are left out. A figure revised from one day to the next shows as each
    day's sentence with its own figure."""
    best: dict[date, Citation] = {}
    for c in candidates:
        day = published_day(c.published)
        if day is None:
            continue
        if day not in best or (c.score, _has_figure(c.quote), -c.n) > (best[day].score, _has_figure(best[day].quote),
                                                                      -best[day].n):
            best[day] = c
    return tuple(TimelineEntry(day.isoformat(), c.n, c.quote) for day, c in sorted(best.items()))


def with_timeline(answer: Answer, candidates: Sequence[Citation]) -> Answer:
    """`answer` with the timeline of `candidates`. A chosen sentence already cited keeps its
    number; the others become new citations after the existing ones (the related passages are
    renumbered after them), so every [n] of the timeline is one of the answer's citations."""
    numbered = [replace(c, n=i) for i, c in enumerate(candidates, start=1)]
    steps = timeline(numbered)
    cited = {(c.doc_id, c.start, c.end): c.n for c in answer.citations}
    citations = list(answer.citations)
    entries = []
    for step in steps:
        c = numbered[step.n - 1]
        n = cited.get((c.doc_id, c.start, c.end))
        if n is None:
            n = len(citations) + 1
            citations.append(replace(c, n=n))
            cited[(c.doc_id, c.start, c.end)] = n
        entries.append(TimelineEntry(step.date, n, step.quote))
    shift = len(citations) - len(answer.citations)
    related = tuple(replace(r, n=r.n + shift) for r in answer.related) if shift else answer.related
    return replace(answer, citations=tuple(citations), related=related, timeline=tuple(entries))


# -- dates ---------------------------------------------------------------------------------------
def human_date(iso: str) -> str:
    """"2026-01-03" -> "3 January 2026" (the input unchanged when it is not an ISO date)."""
    day = published_day(iso)
    return f"{day.day} {day:%B %Y}" if day else iso


def _moment(published: str | None) -> datetime | None:
    """The full date and time, when the value has a time."""
    if not published or len(published) <= 10:
        return None
    try:
        return datetime.fromisoformat(published)
    except ValueError:
        return None


def _later(a: str | None, b: str | None) -> bool:
    """a was published after b: by the clock when both say when in the day (and can be compared),
    otherwise by the day."""
    da, db = published_day(a), published_day(b)
    if da is None or db is None:
        return False
    ma, mb = _moment(a), _moment(b)
    if ma is not None and mb is not None and (ma.tzinfo is None) == (mb.tzinfo is None):
        return ma > mb
    return da > db


def _sort_key(published: str | None) -> tuple[int, str]:
    """Dated before undated; then by the ISO text."""
    return (0, published) if published_day(published) else (1, "")


# -- inside --------------------------------------------------------------------------------------
def _outlet(source: str | None) -> str | None:
    return " ".join(source.casefold().split()) if source and source.strip() else None


def _same_outlet(a: str | None, b: str | None) -> bool:
    return _outlet(a) is not None and _outlet(a) == _outlet(b)


def _with_copies(c: Citation, group: Sequence[Member]) -> Citation:
    reports = also_reported_by(c, group)
    return replace(c, also_reported_by=reports, sources_count=sources_count(c, reports))


def _stories(cited: Mapping[str, Citation], groups: Mapping[str, Sequence[Member]]) -> list[set[str]]:
    """The cited articles' stories: groups that share an article are one story."""
    stories: list[set[str]] = []
    for doc_id in cited:
        ids = {doc_id} | {m.doc_id for m in groups.get(doc_id, ())}
        overlapping = [s for s in stories if s & ids]
        for s in overlapping:
            ids |= s
            stories.remove(s)
        stories.append(ids)
    return stories


def _describe(r: Report) -> str:
    meta = ", ".join(x for x in (r.source, human_date(r.published) if r.published else None) if x)
    return f"{r.title} ({meta})" if meta else r.title


_FIGURE = re.compile(r"\d")


def _has_figure(quote: str) -> bool:
    return bool(_FIGURE.search(quote))
