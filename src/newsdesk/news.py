"""What makes newsdesk's answers news answers, between retrieval and the front ends.

* The copy and story groups come from the index (`newsdesk.groups`, written by its writer):
  a question looks up only the articles it retrieved.
* `collapse` keeps one article of each copy group among the retrieved passages, so five copies
  of one wire story do not crowd out the second story that answers.
* `story_groups` gives the answerer's citations their story (`newsdesk.story.with_story`):
  "also reported by", sources, as of when, what is newer.
* `timeline_answer` is the dated form of an answer, for questions about change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from newsdesk.results import Answer, Citation, Report
from newsdesk.retrieve import Passage
from newsdesk.story import Member, human_date, members, timeline


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


def copy_groups(view, passages: Sequence[Passage]) -> dict[str, str]:
    """doc_id -> copy group id of the passages' articles (those without copies: absent)."""
    return view.copy_groups(sorted({p.doc_id for p in passages})) if passages else {}


def story_groups(view, doc_ids: Iterable[str]) -> dict[str, tuple[Member, ...]]:
    """What `newsdesk.story.with_story` reads for these articles: each one's story members."""
    related = view.group_members(sorted(set(doc_ids)))
    wanted = sorted({m for story, copies in related.values() for m in (*story, *copies)})
    meta: dict[str, Report] = view.headers(wanted) if wanted else {}
    return {d: members(d, story, copies, meta) for d, (story, copies) in related.items()}


def story_of(view, doc_ids: Sequence[str]) -> tuple[str, ...]:
    """These articles and every article of their stories."""
    out = set(doc_ids)
    for story, copies in view.group_members(list(doc_ids)).values():
        out.update(story, copies)
    return tuple(sorted(out))


def lead_with(answer: Answer, first: Citation) -> Answer:
    """`answer` with `first` as its first sentence: the newest article's figure ahead of the
    older ones. The earlier citations follow (at most two of them), then the related passages,
    all renumbered."""
    kept = [c for c in answer.citations if (c.doc_id, c.start) != (first.doc_id, first.start)][:2]
    citations = tuple(replace(c, n=i) for i, c in enumerate([first, *kept], start=1))
    related = tuple(replace(c, n=len(citations) + i) for i, c in enumerate(answer.related, start=1))
    text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
    return replace(answer, text=text, citations=citations, related=related)


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
