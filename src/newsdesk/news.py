"""What makes newsdesk's answers news answers, between retrieval and the front ends.

* `Stories` keeps an index's near-duplicate groups (`newsdesk.dedup`) in step with its
  generations, from the fingerprints the index stores per article: after an update only the
  articles added, changed or removed are added to or removed from the groups.
* `collapse` keeps one article of each copy group among the retrieved passages, so five copies
  of one wire story do not crowd out the second story that answers.
* `story_groups` gives the answerer's citations their story (`newsdesk.story.with_story`):
  "also reported by", sources, as of when, what is newer.
* `timeline_answer` is the dated form of an answer, for questions about change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from newsdesk.dedup import DuplicateFinder
from newsdesk.results import Answer, Citation, Report
from newsdesk.retrieve import Passage
from newsdesk.story import Member, human_date, members, timeline


class Stories:
    """The copy and story groups of one index, brought up to date at most once per generation.

    Safe to share between the threads of a `Desk`: lookups and the catch-up after an update
    take one lock, and each holds it for a fraction of a millisecond per article looked up.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._finder = DuplicateFinder()
        self._known: dict[str, tuple[bytes, str | None]] = {}
        self._generation: int | None = None

    def _sync(self, view) -> None:
        generation = int(view.manifest["generation"])
        if generation == self._generation:
            return
        current = {doc_id: (data, published) for doc_id, data, published in view.fingerprints()}
        for doc_id in [d for d, known in self._known.items() if current.get(d) != known]:
            self._finder.remove(doc_id)
            del self._known[doc_id]
        for doc_id, (data, published) in current.items():
            if doc_id not in self._known:
                self._finder.add(doc_id, data, published)
                self._known[doc_id] = (data, published)
        self._generation = generation

    def copy_groups(self, view, doc_ids: Iterable[str]) -> dict[str, str]:
        """doc_id -> the id of its copy group (itself when it has no copies)."""
        with self._lock:
            self._sync(view)
            return {d: self._finder.copy_group_id(d) if d in self._finder else d for d in doc_ids}

    def related(self, view, doc_ids: Iterable[str]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """doc_id -> (its story group, its copy group), as doc_ids; alone: empty."""
        with self._lock:
            self._sync(view)
            return {d: (self._finder.story(d), self._finder.copies(d)) if d in self._finder else ((), ())
                    for d in doc_ids}


def collapse(passages: Sequence[Passage], group_of: Mapping[str, str]) -> list[Passage]:
    """One article per copy group: the newest of the group's retrieved articles (a copy run
    again later, or a version with a revised figure, supersedes the earlier text). Its best
    passage takes the place of the group's best passage; every other passage keeps its order."""
    keep: dict[str, Passage] = {}  # group -> the best passage of the article kept
    for p in passages:
        group = group_of.get(p.doc_id, p.doc_id)
        chosen = keep.get(group)
        if chosen is None or (p.published or "") > (chosen.published or ""):
            keep[group] = p
    out: list[Passage] = []
    placed: set[str] = set()
    for p in passages:
        group = group_of.get(p.doc_id, p.doc_id)
        best = keep[group]
        if group not in placed:
            out.append(best)
            placed.add(group)
        elif p.doc_id == best.doc_id and p.chunk_id != best.chunk_id:
            out.append(p)
    return out


def story_groups(view, stories: Stories, doc_ids: Iterable[str]) -> dict[str, tuple[Member, ...]]:
    """What `newsdesk.story.with_story` reads for these articles: each one's story members."""
    related = stories.related(view, sorted(set(doc_ids)))
    wanted = sorted({m for story, copies in related.values() for m in (*story, *copies)})
    meta: dict[str, Report] = view.headers(wanted) if wanted else {}
    return {d: members(d, story, copies, meta) for d, (story, copies) in related.items() if story or copies}


def story_of(view, stories: Stories, doc_ids: Sequence[str]) -> tuple[str, ...]:
    """These articles and every article of their stories."""
    out = set(doc_ids)
    for story, copies in stories.related(view, doc_ids).values():
        out.update(story, copies)
    return tuple(sorted(out))


def timeline_answer(answer: Answer, candidates: Sequence[Citation]) -> Answer:
    """The answer as a dated timeline: one cited sentence per date, oldest first, from
    `candidates` (the best sentence of each article on the story). The answer's own citations
    that are not steps move to the related passages. Fewer than two dates: `answer` itself."""
    steps = timeline([replace(c, n=i) for i, c in enumerate(candidates, start=1)])
    if len(steps) < 2 or answer.abstained:
        return answer
    chosen = [replace(candidates[s.n - 1], n=i) for i, s in enumerate(steps, start=1)]
    text = "\n".join(f"{human_date(s.date)}: {c.quote} [{c.n}]" for s, c in zip(steps, chosen))
    used = {(c.doc_id, c.start) for c in chosen}
    rest = [c for c in (*answer.citations, *answer.related) if (c.doc_id, c.start) not in used]
    related = tuple(replace(c, n=len(chosen) + i) for i, c in enumerate(rest[:3], start=1))
    entries = tuple(replace(s, n=i) for i, s in enumerate(steps, start=1))
    return replace(answer, text=text, citations=tuple(chosen), related=related, timeline=entries)
