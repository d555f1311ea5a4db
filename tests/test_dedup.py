"""Near-duplicate detection on the story fixtures: wire copies, versions of one story, unrelated articles."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from datasketch import LeanMinHash

from newsdesk import dedup
from newsdesk.errors import IndexMismatch
from newsdesk.load import Document, load_corpus

STORIES = Path(__file__).parent / "fixtures" / "stories"
BRIDGE = ["bridge-harbour-gazette.md", "bridge-metro-daily.md", "bridge-valley-courier.md"]
LANDSLIDE = ["landslide-day1.md", "landslide-day2.md", "landslide-day3.md"]
UNRELATED = ["ferry-fares.md", "orchestra-conductor.md", "port-director-unconfirmed.md", "rovers-cup.md"]


@pytest.fixture(scope="module")
def docs() -> dict[str, Document]:
    result = load_corpus(STORIES)
    assert not result.skipped
    return {d.doc_id: d for d in result.documents}


@pytest.fixture(scope="module")
def prints(docs: dict[str, Document]) -> dict[str, bytes]:
    return {doc_id: dedup.fingerprint(d.text, d.title) for doc_id, d in docs.items()}


def rows(docs: dict[str, Document], prints: dict[str, bytes], ids=None) -> list[tuple[str, bytes, str | None]]:
    return [(i, prints[i], docs[i].published) for i in (ids if ids is not None else sorted(docs))]


@pytest.fixture(scope="module")
def finder(docs, prints) -> dedup.DuplicateFinder:
    return dedup.DuplicateFinder.from_fingerprints(rows(docs, prints))


# -- fingerprints ------------------------------------------------------------------------------
def test_fingerprint_is_deterministic_bytes_of_fixed_size(docs):
    texts = [d.text for d in docs.values()]
    first = [dedup.fingerprint(t) for t in texts]
    assert first == [dedup.fingerprint(t) for t in texts]
    assert {len(f) for f in first} == {len(first[0])}  # what the index stores per article does not vary
    lean = dedup.read_fingerprint(first[0])
    assert isinstance(lean, LeanMinHash) and len(lean) == dedup.NUM_PERM


def test_fingerprint_ignores_case_punctuation_line_breaks_and_the_headline(docs):
    d = docs["landslide-day1.md"]
    retyped = d.text.upper().replace(",", " ,").replace("\n\n", "\n").replace("—", "-")
    assert dedup.jaccard(dedup.fingerprint(d.text), dedup.fingerprint(retyped)) == 1.0
    # The headline line is left out when the title is given, so another outlet's headline does not count.
    retitled = "# Landslide kills 12 in Varn valley village\n" + d.text.split("\n", 1)[1]
    assert dedup.fingerprint(d.text, d.title) == dedup.fingerprint(retitled, "Landslide kills 12 in Varn valley village")
    assert dedup.fingerprint(d.text) != dedup.fingerprint(retitled)


def test_a_fingerprint_made_another_way_is_refused(prints):
    data = next(iter(prints.values()))
    for bad in (data[:40], b"\x02" + data[1:], data[:1] + b"\x03" + data[2:], b""):
        with pytest.raises(IndexMismatch, match="rebuild the index"):
            dedup.read_fingerprint(bad)


# -- the fixture stories -------------------------------------------------------------------------
def test_wire_copies_in_three_outlets_are_one_copy_group(finder):
    for doc_id in BRIDGE:
        assert finder.copies(doc_id) == tuple(sorted(BRIDGE))
        assert finder.copy_group_id(doc_id) == min(BRIDGE)
    assert tuple(sorted(BRIDGE)) in finder.groups("copies")


def test_versions_of_the_landslide_story_are_one_story_but_not_copies(finder, prints):
    for doc_id in LANDSLIDE:
        assert finder.copies(doc_id) == (doc_id,)
        assert set(LANDSLIDE) <= set(finder.story(doc_id))
    # Day 1 and day 3 share too little to be linked directly: day 2 makes them one story.
    assert dedup.jaccard(prints[LANDSLIDE[0]], prints[LANDSLIDE[2]]) < finder.story_threshold
    assert LANDSLIDE[2] not in {link.doc_id for link in finder.links(LANDSLIDE[0])}


def test_unrelated_articles_stay_alone(finder, docs):
    for doc_id in UNRELATED:
        assert finder.story(doc_id) == (doc_id,)
        assert finder.links(doc_id) == ()
    linked = {d for group in finder.groups("story") for d in group}
    assert not linked & set(UNRELATED)
    for group in finder.groups("story"):
        assert not (set(group) & set(BRIDGE) and set(group) & set(LANDSLIDE))


def test_links_say_copy_or_story_and_are_symmetric(finder):
    for doc_id in BRIDGE + LANDSLIDE:
        for link in finder.links(doc_id):
            back = {x.doc_id: x for x in finder.links(link.doc_id)}[doc_id]
            assert (back.jaccard, back.copy) == (link.jaccard, link.copy)
            assert link.copy == (link.jaccard >= finder.copy_threshold)
            assert link.jaccard >= finder.story_threshold


# -- incremental -------------------------------------------------------------------------------
def test_any_order_of_adds_gives_the_groups_of_a_rebuild(docs, prints, finder):
    ids = sorted(docs)
    for seed in range(5):
        random.Random(seed).shuffle(ids)
        shuffled = dedup.DuplicateFinder.from_fingerprints(rows(docs, prints, ids))
        assert shuffled.groups("copies") == finder.groups("copies")
        assert shuffled.groups("story") == finder.groups("story")


def test_removing_the_bridging_version_splits_the_story_like_a_rebuild_without_it(docs, prints):
    live = dedup.DuplicateFinder.from_fingerprints(rows(docs, prints))
    live.remove(LANDSLIDE[1])
    without = dedup.DuplicateFinder.from_fingerprints(rows(docs, prints, [i for i in sorted(docs) if i != LANDSLIDE[1]]))
    assert live.groups("story") == without.groups("story")
    assert live.groups("copies") == without.groups("copies")
    assert LANDSLIDE[1] not in live
    assert LANDSLIDE[2] not in live.story(LANDSLIDE[0])
    with pytest.raises(KeyError):
        live.story(LANDSLIDE[1])
    live.add(LANDSLIDE[1], prints[LANDSLIDE[1]], docs[LANDSLIDE[1]].published)
    assert set(LANDSLIDE) <= set(live.story(LANDSLIDE[0]))


def test_removing_one_copy_keeps_the_other_two_together(docs, prints):
    live = dedup.DuplicateFinder.from_fingerprints(rows(docs, prints))
    gone = min(BRIDGE)
    live.remove(gone)
    rest = tuple(sorted(set(BRIDGE) - {gone}))
    rebuilt = dedup.DuplicateFinder.from_fingerprints(rows(docs, prints, [i for i in sorted(docs) if i != gone]))
    assert live.copies(rest[0]) == rebuilt.copies(rest[0])
    assert live.copy_group_id(rest[0]) == min(live.copies(rest[0]))


def test_adding_an_id_again_replaces_its_text(docs, prints):
    live = dedup.DuplicateFinder.from_fingerprints(rows(docs, prints))
    doc_id = BRIDGE[0]
    live.add(doc_id, prints["ferry-fares.md"], docs["ferry-fares.md"].published)  # the file now holds another article
    assert live.copies(doc_id) == tuple(sorted([doc_id, "ferry-fares.md"]))
    assert doc_id not in live.copies(BRIDGE[1])
    assert len(live) == len(docs)


def test_similar_finds_without_adding(docs, prints):
    live = dedup.DuplicateFinder.from_fingerprints(rows(docs, prints, [i for i in sorted(docs) if i != BRIDGE[0]]))
    found = live.similar(prints[BRIDGE[0]], docs[BRIDGE[0]].published)
    assert {link.doc_id for link in found if link.copy} >= {BRIDGE[2]}
    assert [link.jaccard for link in found] == sorted((link.jaccard for link in found), reverse=True)
    assert BRIDGE[0] not in live


def test_story_versions_too_far_apart_in_time_are_not_one_story(docs, prints):
    """An explainer re-run a year later shares paragraphs but is not the same story; a copy is a copy."""
    a, b = LANDSLIDE[0], LANDSLIDE[1]
    link = dedup.DuplicateFinder.from_fingerprints(rows(docs, prints, [a, b])).links(a)
    assert link and not link[0].copy  # versions, linked when published a day apart
    year_later = "2027" + docs[b].published[4:]
    apart = dedup.DuplicateFinder.from_fingerprints([(a, prints[a], docs[a].published), (b, prints[b], year_later)])
    assert apart.story(a) == (a,)
    undated = dedup.DuplicateFinder.from_fingerprints([(a, prints[a], None), (b, prints[b], year_later)])
    assert undated.story(a) == (a, b)  # no date, no limit
    c, d = BRIDGE[0], BRIDGE[1]
    copies = dedup.DuplicateFinder.from_fingerprints([(c, prints[c], docs[c].published), (d, prints[d], "2027-02-11")])
    assert copies.copies(c) == (c, d)


def test_texts_without_words_are_like_nothing():
    live = dedup.DuplicateFinder()
    live.add("a", dedup.fingerprint("— … —"))
    live.add("b", dedup.fingerprint(""))
    assert live.copies("a") == ("a",) and live.copies("b") == ("b",)


def test_an_add_checks_only_the_lsh_candidates_not_the_corpus(docs, prints, monkeypatch):
    """Adding to a finder of many unrelated articles compares the new one with a handful."""
    rng = random.Random(7)
    vocab = sorted({w for d in docs.values() for w in dedup.words(d.text)})
    live = dedup.DuplicateFinder()
    for i in range(400):
        live.add(f"filler-{i:03d}", dedup.fingerprint(" ".join(rng.choices(vocab, k=200))))
    live.add(BRIDGE[1], prints[BRIDGE[1]], docs[BRIDGE[1]].published)
    calls = []
    real = LeanMinHash.jaccard
    monkeypatch.setattr(LeanMinHash, "jaccard", lambda self, other: calls.append(1) or real(self, other))
    links = live.add(BRIDGE[0], prints[BRIDGE[0]], docs[BRIDGE[0]].published)
    assert [link.doc_id for link in links] == [BRIDGE[1]]
    assert len(calls) < 20  # of 401 articles
