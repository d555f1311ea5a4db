"""News answers end to end: a real index of the story fixtures, asked through `Desk` and the CLI.

The fixtures (tests/fixtures/stories/) are a wire story run by three outlets with light edits,
a landslide reported on three days with a rising death toll, a single-source unconfirmed
claim, unrelated articles, and five later articles of which one is on the landslide.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import assert_quotes_verbatim

from newsdesk import Desk
from newsdesk.cli import app

STORIES = Path(__file__).parent / "fixtures" / "stories"
BRIDGE = {"bridge-harbour-gazette.md", "bridge-metro-daily.md", "bridge-valley-courier.md"}
LANDSLIDE = ["landslide-day1.md", "landslide-day2.md", "landslide-day3.md"]


def _corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    shutil.copytree(STORIES, corpus, ignore=shutil.ignore_patterns("later"))
    return corpus


@pytest.fixture(scope="module")
def story_desk(embedder, tmp_path_factory) -> Desk:
    corpus = _corpus(tmp_path_factory.mktemp("stories"))
    return Desk.build(corpus, corpus.parent / "index")


def test_a_wire_story_is_one_citation_also_reported_by_the_other_two_outlets(story_desk):
    a = story_desk.ask("Why was the Old Bridge in Kessel closed?")
    assert not a.abstained
    cited = {c.doc_id for c in a.citations} | {c.doc_id for c in a.related}
    assert len(cited & BRIDGE) == 1, "the three copies must collapse into one article"
    first = a.citations[0]
    assert first.doc_id in BRIDGE
    others = {r.doc_id for r in first.also_reported_by}
    assert others == BRIDGE - {first.doc_id}
    assert first.sources_count == 3
    assert a.as_of == max(c.published for c in a.citations)[:10]
    assert_quotes_verbatim(story_desk, a)


def test_search_shows_one_copy_of_a_wire_story_and_room_for_others(story_desk):
    passages = story_desk.search("Old Bridge closed cracks piers", k=5)
    assert len({p.doc_id for p in passages} & BRIDGE) == 1
    assert len(passages) == 5  # the places the copies took go to other articles


def test_a_change_question_gets_a_dated_timeline_with_each_figure(story_desk):
    a = story_desk.ask("How did the death toll of the Brekke landslide change?")
    assert not a.abstained
    dates = [t.date for t in a.timeline]
    assert len(dates) >= 2 and dates == sorted(dates) and len(set(dates)) == len(dates)
    by_n = {c.n: c for c in a.citations}
    for step in a.timeline:
        c = by_n[step.n]  # every step is a citation of the answer, of its own date
        assert c.published[:10] == step.date and c.quote == step.quote and c.doc_id in LANDSLIDE
        assert f"{c.quote} [{c.n}]" in a.text
    figures = {m for t in a.timeline for m in re.findall(r"\b(12|19|31)\b", t.quote)}
    assert len(figures) >= 2, "a revised toll shows both figures"
    assert a.as_of == dates[-1]
    assert_quotes_verbatim(story_desk, a)


def test_an_answer_from_an_older_report_names_the_newer_article(story_desk):
    a = story_desk.ask("How many people were killed in the Brekke landslide?", until="2026-01-03", timeline=False)
    assert not a.abstained and a.timeline == ()
    assert {c.doc_id for c in a.citations} == {"landslide-day1.md"}
    assert a.as_of == "2026-01-03"
    assert [r.doc_id for r in a.newer] == ["landslide-day3.md", "landslide-day2.md"]  # newest first


def test_a_single_source_unconfirmed_claim_is_marked(story_desk):
    a = story_desk.ask("Is the port director resigning?")
    assert not a.abstained
    c = a.citations[0]
    assert c.doc_id == "port-director-unconfirmed.md" and c.sources_count == 1
    assert f"[{c.n}] Single source: {c.source}." in a.notes


def test_the_story_fields_are_in_the_cli_json_and_text(story_desk):
    folder = Path(story_desk.settings.index)
    args = ["--index", str(folder), "--corpus", str(story_desk.settings.corpus_dir)]
    result = CliRunner().invoke(app, ["ask", "What happened in Brekke?", "--timeline", "--json", *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["timeline"]) >= 2 and data["as_of"] == data["timeline"][-1]["date"]
    assert all({"also_reported_by", "sources_count"} <= c.keys() for c in data["citations"])
    text = CliRunner().invoke(app, ["ask", "Why was the Old Bridge in Kessel closed?", *args]).output
    assert "also reported by" in text and "reported by 3 sources" in text and "As of " in text


def test_copy_groups_follow_updates_and_an_old_index_gets_its_groups_at_the_next_update(embedder, tmp_path):
    corpus = _corpus(tmp_path)
    desk = Desk.build(corpus, tmp_path / "index")
    question = "Why was the Old Bridge in Kessel closed?"
    assert desk.ask(question).citations[0].sources_count == 3
    # A fourth outlet runs the wire story with a new headline.
    text = (corpus / "bridge-harbour-gazette.md").read_text(encoding="utf-8")
    fourth = corpus / "bridge-river-post.md"
    fourth.write_text(text.replace("Harbour Gazette", "River Post").replace(
        "Kessel's Old Bridge closed after engineers find cracks", "Old Bridge in Kessel closed"), encoding="utf-8")
    desk.update()
    first = desk.ask(question).citations[0]
    assert first.sources_count == 4
    assert "bridge-river-post.md" in {r.doc_id for r in first.also_reported_by} | {first.doc_id}
    fourth.unlink()
    desk.update()
    first = desk.ask(question).citations[0]
    assert first.sources_count == 3
    assert "bridge-river-post.md" not in {r.doc_id for r in first.also_reported_by} | {first.doc_id}
    # An index made before fingerprints were kept gets them at its next update.
    db = next((tmp_path / "index").glob("store-*/newsdesk.sqlite"))
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE prints")
        conn.execute("DROP TABLE groups")
        conn.execute("DROP TABLE bands")
        conn.execute("DELETE FROM meta WHERE key IN ('grouped', 'banded')")
    reopened = Desk.open(tmp_path / "index", corpus=corpus)
    assert reopened.ask(question).citations[0].sources_count == 1  # no fingerprints: no groups, no error
    reopened.update()
    assert reopened.ask(question).citations[0].sources_count == 3


def test_a_followed_topic_matches_the_one_new_article_on_it(embedder, tmp_path):
    corpus = _corpus(tmp_path)
    desk = Desk.build(corpus, tmp_path / "index")
    watch = desk.watch_topic("the Brekke landslide")
    later = sorted((STORIES / "later").iterdir())
    assert len(later) == 5
    for f in later:
        shutil.copy(f, corpus / f.name)
    report = desk.update()
    news = watch.news(report)
    assert news is not None
    assert [a.doc_id for a in news.articles] == ["landslide-inquiry.md"]
    assert not news.summary.abstained
    assert {c.doc_id for c in news.summary.citations} == {"landslide-inquiry.md"}
    assert not any(c.quote.startswith("#") for c in news.summary.citations)  # a headline is not a sentence
    assert_quotes_verbatim(desk, news.summary)
    assert watch.news(desk.update()) is None  # nothing new: nothing to say


def test_stored_groups_after_updates_are_the_groups_of_a_rebuild(embedder, tmp_path):
    """Adds, a removal that splits a story and a rewrite, applied one update at a time, leave the
    index's group rows exactly as a fresh build of the final corpus writes them."""
    corpus = _corpus(tmp_path)
    (corpus / "landslide-day2.md").unlink()  # the middle report arrives in a later update
    desk = Desk.build(corpus, tmp_path / "index")
    shutil.copy(STORIES / "landslide-day2.md", corpus / "landslide-day2.md")
    for f in sorted((STORIES / "later").iterdir()):
        shutil.copy(f, corpus / f.name)
    desk.update()
    (corpus / "bridge-harbour-gazette.md").unlink()  # the copy the other two are joined through
    day3 = corpus / "landslide-day3.md"
    day3.write_text(day3.read_text(encoding="utf-8").replace("31 bodies", "32 bodies"), encoding="utf-8")
    desk.update()
    fresh = Desk.build(corpus, tmp_path / "fresh")

    def rows(d: Desk) -> list:
        with d.backend.generation() as view:
            return view.conn.execute("SELECT doc_id, copy_group, story_group FROM groups ORDER BY doc_id").fetchall()

    assert rows(desk) == rows(fresh)
    assert {r[0] for r in rows(fresh)} >= set(LANDSLIDE)


def test_an_update_regroups_only_the_articles_it_can_affect(embedder, tmp_path, monkeypatch):
    """The writer finds an added article's possible duplicates in the index (band keys) instead of
    building a finder of every article, so one new article costs the same at any index size; an
    index made before band keys were kept gets them at its next update, with the same groups."""
    from newsdesk.dedup import DuplicateFinder

    corpus = _corpus(tmp_path)
    desk = Desk.build(corpus, tmp_path / "index")
    db = next((tmp_path / "index").glob("store-*/newsdesk.sqlite"))
    with sqlite3.connect(db) as conn:  # as made before band keys were kept
        conn.execute("DELETE FROM bands")
        conn.execute("DELETE FROM meta WHERE key = 'banded'")
    built = []
    real = DuplicateFinder.from_fingerprints.__func__

    def recorded(cls, items, **settings):
        items = list(items)
        built.append(sorted(doc_id for doc_id, _, _ in items))
        return real(cls, items, **settings)

    monkeypatch.setattr(DuplicateFinder, "from_fingerprints", classmethod(recorded))
    text = (corpus / "bridge-harbour-gazette.md").read_text(encoding="utf-8")
    (corpus / "bridge-river-post.md").write_text(text.replace("Harbour Gazette", "River Post"), encoding="utf-8")
    desk.update()
    with sqlite3.connect(db) as conn:
        documents = conn.execute("SELECT count(*) FROM docs").fetchone()[0]
        banded = conn.execute("SELECT count(DISTINCT doc_id) FROM bands").fetchone()[0]
    assert banded == documents  # the older articles got theirs
    copies = desk.ask("Why was the Old Bridge in Kessel closed?").citations[0]
    assert copies.sources_count == 4
    assert len(built) == 1 and "bridge-river-post.md" in built[0]
    assert len(built[0]) < documents  # the bridge story's articles, not the whole index
    assert set(built[0]) >= {"bridge-river-post.md", "bridge-harbour-gazette.md"}


def test_a_revised_figure_leads_the_answer_and_the_earlier_one_follows(story_desk):
    a = story_desk.ask("How many people died in the Brekke landslide?")
    assert not a.abstained and a.timeline == ()
    first = a.citations[0]
    assert first.doc_id == "landslide-day3.md" and "31" in first.quote  # the newest toll first
    assert any(re.search(r"\b(12|19)\b", c.quote) for c in a.citations[1:])  # an earlier figure after it
    assert a.as_of == "2026-01-05" and a.newer == ()
    assert [c.n for c in a.citations + a.related] == list(range(1, len(a.citations) + len(a.related) + 1))
    assert_quotes_verbatim(story_desk, a)
