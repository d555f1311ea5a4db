"""The Desk tests that are not about the storage format, run against both index implementations:
the embedded index (a folder) and Milvus (here Milvus Lite, started by these tests in a temporary
file for the session). Everything above the index must behave the same on either (issue 11)."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import FIXTURE_CORPUS, SAMPLE_CORPUS, source_texts

from newsdesk import Desk, IndexBusy, IndexEmpty, IndexMismatch, IndexMissing, QueryError, UsageError
from newsdesk.answer import answer
from newsdesk.config import ChunkSettings, Settings
from newsdesk.desk import gather_evidence
from newsdesk.index import update_index
from newsdesk.store import Filters

BACKENDS = ["embedded", "milvus-lite"]
ANSWERS = Path(__file__).parent / "fixtures" / "answers"
_names = itertools.count()


@pytest.fixture(scope="session")
def lite_file(tmp_path_factory) -> Path:
    """One Milvus Lite file for the session; every index in it has its own collection prefix."""
    return tmp_path_factory.mktemp("milvus-lite") / "index.db"


def where(kind: str, folder: Path, lite_file: Path) -> str:
    """A new, empty index location of the given kind."""
    if kind == "embedded":
        return str(folder / f"index-{next(_names)}")
    return f"milvus-lite://{lite_file}?collection=t{next(_names)}"


@pytest.fixture(params=BACKENDS)
def new_index(request, tmp_path, lite_file, embedder):
    return lambda: where(request.param, tmp_path, lite_file)


def copy_corpus(source: Path, folder: Path) -> Path:
    corpus = folder / "corpus"
    shutil.copytree(source, corpus)
    return corpus


@pytest.fixture(scope="module", params=BACKENDS)
def news(request, embedder, tmp_path_factory, lite_file) -> Desk:
    """Eight short articles in every supported format, from two sources, with dates."""
    folder = tmp_path_factory.mktemp(f"news-{request.param}")
    return Desk.build(copy_corpus(FIXTURE_CORPUS, folder), where(request.param, folder, lite_file))


@pytest.fixture(scope="module", params=BACKENDS)
def kessel(request, embedder, tmp_path_factory, lite_file) -> Desk:
    folder = tmp_path_factory.mktemp(f"kessel-{request.param}")
    return Desk.build(copy_corpus(ANSWERS, folder), where(request.param, folder, lite_file))


def document(desk: Desk, doc_id: str):
    with desk.backend.generation() as view:
        return view.documents([doc_id]).get(doc_id)


def assert_verbatim(desk: Desk, result) -> None:
    """Every quote is the document text at its span, and is in the source file where it says."""
    cited = result.citations + result.related
    with desk.backend.generation() as view:
        docs = view.documents(sorted({c.doc_id for c in cited}))
    for c in cited:
        doc = docs[c.doc_id]
        assert c.quote in doc.text
        assert c.path == doc.source_path
        source = desk.settings.corpus_dir / doc.source_path
        if c.offsets_in == "file":
            assert source.read_bytes().decode("utf-8-sig")[c.start:c.end] == c.quote
        elif c.offsets_in == "record":
            assert any(t[c.start:c.end] == c.quote for t in source_texts(source)), c.quote
        else:
            assert doc.text[c.start:c.end] == c.quote


# -- asking and searching ------------------------------------------------------------------------
def test_the_newer_report_comes_first_and_every_quote_is_verbatim(news):
    result = news.ask("How many people died in the ferry accident?")
    assert not result.abstained
    cited = [c.doc_id for c in result.citations]
    assert cited.index("wire-ferry-2") < cited.index("wire-ferry-1")
    assert result.text.index("risen to 19") < result.text.index("At least 12 people died")
    for c in result.citations:
        assert f"{c.quote} [{c.n}]" in result.text
    assert_verbatim(news, result)


def test_search_passages_are_their_documents_text_at_their_offsets(news):
    results = news.search("ferry accident death toll", k=3)
    assert len(results) == 3
    assert results[0].doc_id in {"wire-ferry-1", "wire-ferry-2"}
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    for r in results:
        assert document(news, r.doc_id).text[r.start:r.end] == r.text
    assert {"doc_id", "title", "url", "published", "text", "start", "end", "score"} <= set(results[0].to_dict())


def test_date_and_source_filters(news):
    def docs(**filters):
        return {p.doc_id for p in news.search("Port Halden", k=20, **filters)}

    assert len(docs()) == 8
    assert docs(since="2026-03-02") == {"wire-ferry-2", "wire/briefs.jsonl#1", "wire/briefs.jsonl#2"}
    assert docs(until="2026-02-10") == {"gazette/festival.html", "gazette/budget.md"}
    assert docs(since="2026-03-04", until="2026-03-04") == {"wire/briefs.jsonl#1"}
    assert docs(source="GAZETTE") == {"gazette/festival.html", "gazette/budget.md", "gazette/marathon.pdf",
                                      "gazette/notes.txt"}
    result = news.ask("How many people died in the ferry accident?", until="2026-03-02")
    assert {c.doc_id for c in result.citations} == {"wire-ferry-1"}
    with pytest.raises(UsageError, match="since must be a date"):
        news.search("ferry", since="last week")


def test_filters_that_exclude_every_article_say_what_they_excluded(news):
    with pytest.raises(QueryError, match=r"from the source 'nowhere' \(the sources are gazette, wire\)"):
        news.search("ferry", source="nowhere")
    with pytest.raises(QueryError, match="published on or after 2030-01-01"):
        news.ask("How many people died?", since="2030-01-01")


def test_each_format_is_answerable(news):
    for question, doc_id in [
        ("How many visitors attended the lantern festival?", "gazette/festival.html"),
        ("How many runners are expected at the marathon?", "gazette/marathon.pdf"),
        ("How big is the harbour repair budget?", "gazette/budget.md"),
        ("How many people signed the library petition?", "gazette/notes.txt"),
        ("How often will trains run to Vessby?", "wire/briefs.jsonl#2"),
    ]:
        result = news.ask(question)
        assert not result.abstained, question
        assert result.citations[0].doc_id == doc_id, question
        assert_verbatim(news, result)


def test_stats_sources_and_check(news):
    stats = news.stats()
    assert (stats.documents, stats.chunks, stats.dimension) == (8, 8, 384)
    assert stats.sources == {"gazette": 4, "wire": 4} and news.sources() == {"gazette": 4, "wire": 4}
    assert stats.generation >= 1 and news.generation == stats.generation
    assert news.check() == []


def test_a_reopened_index_answers_the_same(news):
    again = Desk.open(news.settings.index, corpus=news.settings.corpus_dir)
    assert again.stats().fingerprint == news.stats().fingerprint
    question = "How many runners are expected at the marathon?"
    assert again.ask(question).text == news.ask(question).text


@pytest.mark.parametrize("question,fact", [
    ("How many firefighters fought the warehouse fire?", "43 firefighters"),
    ("Who is the fire chief in Kessel?", "Fire chief Annika Brandt"),
    ("How much will the Vinmark bridge toll be?", "6 euros"),
    ("Which union called the ferry strike?", "Nordic Seafarers Union"),
])
def test_the_asked_for_fact_is_in_the_first_cited_sentence(kessel, question, fact):
    result = kessel.ask(question)
    assert not result.abstained, question
    assert fact in result.citations[0].quote, (question, result.text)
    assert_verbatim(kessel, result)


def test_offsets_index_the_file_the_record_or_the_extracted_text(kessel):
    seen = set()
    for question in ["How many firefighters fought the warehouse fire?",  # Markdown with front matter
                     "How did the Kessel council vote on the tram depot?",  # text with CRLF line ends
                     "How many crew members does the seafarers union represent?",  # JSONL record
                     "How many pupils will the new Oster school teach?",  # JSON record
                     "How much did the maritime museum renovation cost?"]:  # HTML
        result = kessel.ask(question)
        seen.add(result.citations[0].offsets_in)
        assert_verbatim(kessel, result)
    assert seen == {"file", "record", "extracted"}


def test_a_follow_up_reads_the_conversation(kessel):
    chat = kessel.chat()
    chat.ask("Why did ferry crews go on strike?")
    follow = chat.ask("which union called it?")
    assert follow.query and "Nordic Seafarers Union" in follow.citations[0].quote


# -- updating ------------------------------------------------------------------------------------
def test_update_embeds_only_new_and_changed_and_removes_deleted(new_index, tmp_path):
    corpus = copy_corpus(FIXTURE_CORPUS, tmp_path)
    desk = Desk.build(corpus, new_index())
    first = desk.last_update
    assert len(first.added) == 8 and first.rebuilt

    again = desk.update()
    assert (again.chunks_embedded, again.unchanged, again.changed) == (0, 8, False)

    notes = corpus / "gazette" / "notes.txt"
    notes.write_text(notes.read_text().replace("2,300 people", "2,700 people"))
    (corpus / "gazette" / "budget.md").unlink()
    (corpus / "new.txt").write_text("Tram strike called off\nThe tram drivers' union called off Friday's strike "
                                    "after a pay deal.")
    report = desk.update()
    assert report.added == ["new.txt"] and report.updated == ["gazette/notes.txt"]
    assert report.removed == ["gazette/budget.md"] and report.unchanged == 6
    assert report.chunks_embedded == 2

    result = desk.ask("How many people signed the library petition?")
    assert "2,700 people" in result.text and "2,300" not in result.text
    assert_verbatim(desk, result)
    assert all(p.doc_id != "gazette/budget.md" for p in desk.search("harbour budget breakwater", k=10))
    assert desk.search("tram strike", k=1)[0].doc_id == "new.txt"
    assert desk.stats().documents == 8
    assert desk.check() == []


def test_an_emptied_index_says_so_and_fills_again_with_new_chunk_ids(new_index, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    article = "Bridge closes for repairs\nThe old bridge closed on Monday for six months of repairs, the city said."
    (corpus / "a.txt").write_text(article)
    desk = Desk.build(corpus, new_index())
    first = {p.chunk_id for p in desk.search("bridge repairs", k=5)}
    (corpus / "a.txt").unlink()
    desk.update()
    with pytest.raises(IndexEmpty, match="holds no articles"):
        desk.search("bridge repairs")
    (corpus / "a.txt").write_text(article)
    (corpus / "b.txt").write_text("Ferry timetable changes\nFerries will leave every 40 minutes from May, the "
                                  "operator said.")
    desk.update()
    hits = desk.search("bridge repairs", k=5)
    assert [h.doc_id for h in hits][0] == "a.txt" and len(hits) == 2
    assert not first & {h.chunk_id for h in hits}
    assert desk.stats().documents == 2


def test_another_open_desk_sees_an_update_at_its_next_question(new_index, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Bridge closes\nThe old bridge closed on Monday for repairs, the city said.")
    desk = Desk.build(corpus, new_index())
    reader = Desk.open(desk.settings.index)  # e.g. the bot's
    assert reader.stats().documents == 1
    (corpus / "b.txt").write_text("Museum reopens\nThe maritime museum reopened on Friday after a renovation.")
    desk.update()
    assert reader.search("maritime museum", k=1)[0].doc_id == "b.txt"


def test_questions_during_an_update_cite_whole_articles(new_index, tmp_path):
    """Every quote of an answer read while an update runs is in the document text of the same view."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    towns = ["Arlen", "Brisk", "Corvo", "Dunmore", "Elsby", "Farrow"]

    def write(version):
        for i, town in enumerate(towns):
            (corpus / f"{town.lower()}.txt").write_text(
                f"{town} opens new bridge\nThe town of {town} opened a new bridge on Monday, the mayor said. "
                f"The bridge cost {3 + i + version * 10} million euros and took {i + 2} years to build.")

    write(1)
    desk = Desk.build(corpus, new_index())
    write(2)
    import newsdesk.index as index_module

    old_batch, index_module.BATCH_CHUNKS = index_module.BATCH_CHUNKS, 2
    updater = threading.Thread(target=desk.update)
    updater.start()
    asked = 0
    try:
        while updater.is_alive() or asked < 4:
            question = f"How much did the {towns[asked % len(towns)]} bridge cost?"
            vector = desk.encoder.encode_query(question)
            with desk.backend.generation() as view:
                evidence = gather_evidence(view, question, vector, 5, Filters(), desk.fusion)
                result = answer(evidence)
                for p in evidence.passages:
                    assert evidence.docs[p.doc_id].text[p.start:p.end] == p.text
                for c in result.citations + result.related:
                    assert c.quote in evidence.docs[c.doc_id].text
            asked += 1
    finally:
        updater.join()
        index_module.BATCH_CHUNKS = old_batch
    brisk = desk.search("Brisk bridge cost", k=1)[0]
    assert brisk.doc_id == "brisk.txt" and "cost 24 million euros" in brisk.text  # version 2: 3 + 1 + 2 * 10


@contextmanager
def writer_held(desk: Desk):
    """The index's writer lock, held as another process would hold it."""
    backend = desk.backend
    if hasattr(backend, "index_dir"):
        from newsdesk.layout import writer_lock

        lock = writer_lock(backend.index_dir)
        try:
            yield
        finally:
            lock.release()
    else:
        from newsdesk.milvus import Lease

        lease = Lease(backend.conn, backend.meta, backend.target.ingest, backend.location)
        lease.owner = "another-process"
        lease._try()
        try:
            yield
        finally:
            lease.release()


def test_a_second_writer_waits_or_gives_up_with_a_clear_message(new_index, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Bridge closes\nThe old bridge closed on Monday for repairs, the city said.")
    desk = Desk.build(corpus, new_index())
    (corpus / "b.txt").write_text("Museum reopens\nThe maritime museum reopened on Friday after a renovation.")
    with writer_held(desk):
        with pytest.raises(IndexBusy, match="another newsdesk process .*updating"):
            desk.update(lock_timeout=0)
        waiting = threading.Thread(target=desk.update)
        waiting.start()
        time.sleep(1.5)
        assert waiting.is_alive()  # waiting for the lock, not interleaving
        assert desk.stats().documents == 1
    waiting.join(timeout=60)
    assert desk.last_update.added == ["b.txt"] and desk.stats().documents == 2


# -- refusing ------------------------------------------------------------------------------------
def test_another_model_or_chunking_is_refused_with_what_to_do(new_index, tmp_path, embedder):
    location = new_index()
    Desk.build(SAMPLE_CORPUS, location)
    with pytest.raises(IndexMismatch, match="newsdesk index --rebuild"):
        Desk.open(location, model=str(tmp_path))
    other = Settings(corpus_dir=SAMPLE_CORPUS, index=location, chunking=ChunkSettings(100, 20))
    with pytest.raises(IndexMismatch, match="chunking"):
        update_index(other, embedder)


def test_a_missing_index_is_a_clear_error(new_index):
    with pytest.raises(IndexMissing, match="newsdesk index"):
        Desk.open(new_index())


def test_answers_json_is_the_same_shape(news):
    data = json.loads(json.dumps(news.ask("How many people died in the ferry accident?").to_dict()))
    assert data["citations"] and all(c["path"] and c["end"] > c["start"] for c in data["citations"])


# -- news answers --------------------------------------------------------------------------------
STORIES = Path(__file__).parent / "fixtures" / "stories"


def test_wire_copies_collapse_and_follow_updates_on_both_backends(new_index, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(STORIES, corpus, ignore=shutil.ignore_patterns("later"))
    desk = Desk.build(corpus, new_index())
    question = "Why was the Old Bridge in Kessel closed?"
    bridge = {"bridge-harbour-gazette.md", "bridge-metro-daily.md", "bridge-valley-courier.md"}
    a = desk.ask(question)
    first = a.citations[0]
    assert first.doc_id in bridge and {r.doc_id for r in first.also_reported_by} == bridge - {first.doc_id}
    assert len(({c.doc_id for c in a.citations} | {c.doc_id for c in a.related}) & bridge) == 1
    assert first.sources_count == 3
    (corpus / "bridge-valley-courier.md").unlink()
    desk.update()
    first = desk.ask(question).citations[0]
    assert "bridge-valley-courier.md" not in {first.doc_id, *(r.doc_id for r in first.also_reported_by)}
    assert first.sources_count == 2
