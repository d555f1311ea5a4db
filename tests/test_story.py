"""What answers say about their stories, on citations of the story fixtures' real sentences.

The story groups come from `newsdesk.dedup` on the same fixtures, so these tests check the two
modules the way the index will use them together.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from newsdesk import dedup, story
from newsdesk.load import Document, load_corpus
from newsdesk.results import Answer, Citation, Report

STORIES = Path(__file__).parent / "fixtures" / "stories"
BRIDGE = ["bridge-harbour-gazette.md", "bridge-metro-daily.md", "bridge-valley-courier.md"]
LANDSLIDE = ["landslide-day1.md", "landslide-day2.md", "landslide-day3.md"]
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?][\"”]?|$)")


@pytest.fixture(scope="module")
def docs() -> dict[str, Document]:
    return {d.doc_id: d for d in load_corpus(STORIES).documents}


@pytest.fixture(scope="module")
def groups(docs) -> dict[str, tuple[story.Member, ...]]:
    finder = dedup.DuplicateFinder.from_fingerprints(
        (i, dedup.fingerprint(d.text, d.title), d.published) for i, d in docs.items())
    meta = {i: Report(i, d.title, d.source, d.published, d.url) for i, d in docs.items()}
    return {i: story.members(i, finder.story(i), finder.copies(i), meta) for i in docs}


def cite(doc: Document, needle: str, n: int = 1, score: float = 0.9) -> Citation:
    """A citation of the sentence of `doc` that contains `needle`."""
    for m in _SENTENCE.finditer(doc.text):
        if needle in m.group(0):
            start = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
            return Citation(n=n, doc_id=doc.doc_id, title=doc.title, url=doc.url, published=doc.published,
                            quote=doc.text[start:m.end()], start=start, end=m.end(), score=score, source=doc.source,
                            path=doc.source_path)
    raise AssertionError(f"{needle!r} not in {doc.doc_id}")


def answer(question: str, *citations: Citation, related: tuple[Citation, ...] = ()) -> Answer:
    return Answer(question, " ".join(f"{c.quote} [{c.n}]" for c in citations), False, tuple(citations), related)


# -- wire copies ------------------------------------------------------------------------------
def test_a_wire_copy_is_one_citation_also_reported_by_the_other_outlets(docs, groups):
    cited = docs[BRIDGE[1]]  # Metro Daily, which ran it a day after the others
    a = story.with_story(answer("Why was the Old Bridge closed?", cite(cited, "cracks in two")), groups)
    c = a.citations[0]
    others = sorted((docs[i] for i in BRIDGE if i != cited.doc_id), key=lambda d: (d.published, d.doc_id))
    assert [(r.source, r.published, r.doc_id) for r in c.also_reported_by] == [
        (d.source, d.published, d.doc_id) for d in others]
    assert c.sources_count == len({docs[i].source for i in BRIDGE}) == 3
    assert not c.single_source
    assert a.as_of == cited.published
    assert a.newer == ()  # the other outlets' copies are the same text, not newer news
    assert not any("Single source" in note for note in a.notes)  # attributed ("said"), but three outlets carry it
    assert f"[1] Reported by {c.sources_count} sources." in story.story_notes(a)


def test_copies_from_the_cited_outlet_count_once_and_a_newer_one_is_a_newer_version(docs):
    d = docs[BRIDGE[0]]
    c = cite(d, "cracks in two")
    group = [
        story.Member("rerun", d.title, d.source.upper(), "2026-02-12", None, copy=True),  # the same outlet again
        story.Member("courier", "Cracks force closure", "Valley Courier", "2026-02-10", None, copy=True),
        story.Member("courier-2", "Cracks force closure", "Valley Courier", "2026-02-11", None, copy=True),
    ]
    a = story.with_story(answer("Why?", c), {d.doc_id: group})
    assert [r.doc_id for r in a.citations[0].also_reported_by] == ["courier"]  # one per outlet: its first
    assert a.citations[0].sources_count == 2
    assert [r.doc_id for r in a.newer] == ["rerun"]


# -- as of, newer ------------------------------------------------------------------------------
def test_an_answer_from_the_first_report_is_as_of_its_day_and_names_the_newer_ones(docs, groups):
    day1, day2, day3 = (docs[i] for i in LANDSLIDE)
    a = story.with_story(answer("How many people died in the Brekke landslide?", cite(day1, "12 bodies")), groups)
    assert a.as_of == day1.published
    assert [r.doc_id for r in a.newer] == [day3.doc_id, day2.doc_id]  # newest first
    notes = story.story_notes(a)
    assert notes[0] == f"As of {story.human_date(day1.published)}."
    assert notes[1] == (f"A newer article on this story exists: {day3.title} "
                        f"({day3.source}, {story.human_date(day3.published)}).")
    assert a.citations[0].also_reported_by == ()  # versions are not copies


def test_citing_the_newest_version_leaves_nothing_newer(docs, groups):
    day1, _, day3 = (docs[i] for i in LANDSLIDE)
    a = story.with_story(answer("How many died?", cite(day3, "31 bodies", 1), cite(day1, "12 bodies", 2)), groups)
    assert a.as_of == max(day1.published, day3.published) == day3.published
    assert a.newer == ()
    assert not any(line.startswith("A newer article") for line in story.story_notes(a))


def test_the_fields_are_in_the_json_and_the_input_is_unchanged(docs, groups):
    before = answer("How many died?", cite(docs[LANDSLIDE[0]], "12 bodies"))
    after = story.with_story(before, groups)
    assert before.as_of is None and before.newer == () and before.citations[0].also_reported_by == ()
    data = after.to_dict()
    assert data["as_of"] == after.as_of
    assert [r["doc_id"] for r in data["newer"]] == [r.doc_id for r in after.newer]
    assert data["citations"][0]["sources_count"] == 1


def test_undated_articles_say_nothing_about_when(docs, groups):
    c = replace(cite(docs[LANDSLIDE[0]], "12 bodies"), published=None)
    a = story.with_story(answer("How many died?", c), groups)
    assert a.as_of is None
    assert a.newer == ()  # newer than what?
    assert not any(line.startswith(("As of", "A newer")) for line in story.story_notes(a))


def test_related_passages_of_an_abstention_get_their_copies_too(docs, groups):
    rel = cite(docs[BRIDGE[2]], "free ferry", 1)
    a = story.with_story(Answer("Is the ferry free?", "The corpus does not answer.", True, (), (rel,)), groups)
    assert {r.doc_id for r in a.related[0].also_reported_by} == set(BRIDGE) - {BRIDGE[2]}
    assert a.as_of is None


# -- single source -----------------------------------------------------------------------------
def test_an_attributed_claim_from_one_source_is_marked_single_source(docs, groups):
    d = docs["port-director-unconfirmed.md"]
    claim = cite(d, "according to two officials", 1)
    plain = cite(docs["orchestra-conductor.md"], "will take up the post", 2)
    assert story.is_attributed(claim.quote) and not story.is_attributed(plain.quote)
    a = story.with_story(answer("Is the port director resigning?", claim, plain), groups)
    assert a.citations[0].single_source and a.citations[1].single_source
    assert f"[1] Single source: {d.source}." in a.notes
    assert not any(note.startswith("[2]") for note in a.notes)  # one source, but it attributes nothing


def test_hedges_count_as_attribution():
    assert story.is_attributed("The claim could not be independently confirmed.")
    assert story.is_attributed("The minister allegedly met the bidder twice.")
    assert not story.is_attributed("The bridge was built in 1911.")


# -- timelines ---------------------------------------------------------------------------------
@pytest.mark.parametrize("question", [
    "How did the death toll in Brekke change?", "Timeline of the Brekke landslide", "What happened since the landslide?",
    "How has the search evolved?", "Latest on the Brekke landslide", "How has the number of missing fallen?",
    "What has changed since Sunday?", "Any updates on the Old Bridge?"])
def test_change_questions_ask_for_a_timeline(question):
    assert story.asks_for_timeline(question)


@pytest.mark.parametrize("question", [
    "How many people died in the Brekke landslide?", "When did the Old Bridge close?", "Who is the new conductor?",
    "How did the fire start?", "What changed in the new ferry fares?", "How is the risk of slides assessed?"])
def test_other_questions_do_not(question):
    assert not story.asks_for_timeline(question)


def test_a_revised_toll_is_one_sentence_per_day_oldest_first_with_each_figure(docs):
    day1, day2, day3 = (docs[i] for i in LANDSLIDE)
    figures = [cite(day1, "12 bodies", 1, 0.7), cite(day2, "19 bodies", 2, 0.9), cite(day3, "31 bodies", 3, 0.8)]
    weaker = [cite(day2, "Army engineers", 4, 0.2), cite(day3, "Prime Minister", 5, 0.1)]
    steps = story.timeline([figures[2], weaker[0], figures[0], weaker[1], figures[1]])
    assert [s.date for s in steps] == sorted(d.published for d in (day1, day2, day3))
    assert [s.n for s in steps] == [1, 2, 3]
    assert [re.search(r"\d+ bodies", s.quote).group(0) for s in steps] == ["12 bodies", "19 bodies", "31 bodies"]


def test_same_day_reports_give_one_step_and_undated_ones_none(docs):
    day1 = docs[LANDSLIDE[0]]
    same_day = [cite(day1, "12 bodies", 1, 0.5), cite(day1, "150 rescuers", 2, 0.6)]
    undated = replace(cite(docs[LANDSLIDE[1]], "19 bodies", 3, 0.99), published=None)
    steps = story.timeline([*same_day, undated])
    assert [(s.date, s.n) for s in steps] == [(day1.published, 2)]  # the better of the day's two


def test_with_timeline_cites_every_step_and_renumbers_the_related(docs):
    day1, day2, day3 = (docs[i] for i in LANDSLIDE)
    first = cite(day3, "31 bodies", 1)
    related = cite(docs["ferry-fares.md"], "6 percent", 2, 0.1)
    a = answer("How did the Brekke death toll change?", first, related=(related,))
    candidates = [cite(day1, "12 bodies", 0, 0.6), cite(day2, "19 bodies", 0, 0.7), cite(day3, "31 bodies", 0, 0.9)]
    t = story.with_timeline(a, candidates)
    by_n = {c.n: c for c in t.citations}
    assert [s.date for s in t.timeline] == [day1.published, day2.published, day3.published]
    assert all(by_n[s.n].quote == s.quote for s in t.timeline)
    assert t.timeline[-1].n == 1  # the day-3 sentence was already cited as [1]
    assert sorted(by_n) == [1, 2, 3]
    assert [r.n for r in t.related] == [4]
    assert t.text == a.text  # the answer itself stays the newest figure first


def test_human_dates():
    assert story.human_date("2026-01-03") == "3 January 2026"
    assert story.human_date("2026-01-04T18:30:00+00:00") == "4 January 2026"
    assert story.human_date("soon") == "soon"
