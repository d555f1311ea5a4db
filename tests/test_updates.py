"""Live updates: crash safety under kill -9, one writer at a time, queries during updates, watch mode."""

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from newsdesk import Desk
from newsdesk.answer import answer
from newsdesk.check import check_index
from newsdesk.desk import gather_evidence
from newsdesk.keyword_index import KeywordFilter
from newsdesk.keywords import question_terms
from newsdesk.layout import IndexBusy, writer_lock
from newsdesk.reader import IndexReader
from newsdesk.retrieve import keyword_ranking
from newsdesk.store import Filters, Store
from newsdesk.watch import Watcher

TOWNS = ["Arlen", "Brisk", "Corvo", "Dunmore", "Elsby", "Farrow", "Glenn", "Harlow", "Ilford", "Jarrow",
         "Kelso", "Lorne", "Marden", "Norley", "Otley", "Penrith", "Quarry", "Rosslyn", "Selby", "Tarland",
         "Ulden", "Varley", "Wexton", "Yarrow"]


def article(i: int, version: int = 1) -> str:
    town = TOWNS[i]
    return (f"{town} council opens new bridge\n"
            f"The town of {town} opened a new bridge over the river on Monday, the mayor said. "
            f"The bridge cost {3 + i + version * 10} million euros and took {i + 2} years to build.\n"
            f"Residents of {town} had campaigned for a crossing since {1990 + i}. "
            f"Traffic on the old ferry route is expected to fall by half, officials said.")


def write_corpus(folder: Path, ids, version=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i in ids:
        (folder / f"{TOWNS[i].lower()}.txt").write_text(article(i, (version or {}).get(i, 1)))


@pytest.fixture(scope="module")
def crash_setup(embedder, tmp_path_factory):
    """An index of 12 articles, and a corpus that since changed: 12 added, 2 changed, 2 deleted."""
    root = tmp_path_factory.mktemp("crash")
    corpus, initial = root / "corpus", root / "initial-index"
    write_corpus(corpus, range(12))
    Desk.build(corpus, initial)
    for i in (10, 11):
        (corpus / f"{TOWNS[i].lower()}.txt").unlink()
    write_corpus(corpus, [0, 1], version={0: 2, 1: 2})
    write_corpus(corpus, range(12, 24))
    expected = Desk.build(corpus, root / "expected-index").stats()
    return corpus, initial, expected


@pytest.fixture(scope="module")
def worker(crash_setup):
    corpus, _, _ = crash_setup
    index = corpus.parent / "index"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "crash_worker.py"), str(corpus), str(index)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert json.loads(proc.stdout.readline()) == {"ready": True}

    def run(command):
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(crash_setup[1], index)
        proc.stdin.write(json.dumps(command) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    yield run, index
    proc.stdin.close()
    proc.wait(timeout=30)


@pytest.mark.parametrize("kill", [
    {"kill": "after_batches", "n": 1},
    {"kill": "after_batches", "n": 4},
    {"kill": "after_segment_write", "n": 1},
    {"kill": "after_segment_write", "n": 3},
    {"kill": "after_keyword_commit", "n": 2},
    {"kill": "after_keyword_commit", "n": 4},
    {"kill": "mid_transaction", "n": 1},
    {"kill": "mid_transaction", "n": 5},
    {"kill": "at_seconds", "n": 0.5},
    {"kill": "at_seconds", "n": 1.5},
    {"kill": "at_seconds", "n": 3.0},
], ids=lambda k: f"{k['kill']}-{k['n']}")
def test_kill_9_leaves_a_consistent_index_and_the_next_update_completes(kill, worker, crash_setup, embedder):
    corpus, _, expected = crash_setup
    run, index = worker
    outcome = run(kill)
    assert outcome["exit"] in (0, None)
    if kill["kill"] != "at_seconds":
        assert outcome["killed"]  # the kill point was reached
    reader = IndexReader(index)
    assert check_index(reader) == []
    desk = Desk.open(index, corpus=corpus)
    assert not desk.ask("How much did the Arlen bridge cost?").abstained
    report = desk.update()
    assert check_index(IndexReader(index)) == []
    stats = desk.stats()
    assert (stats.documents, stats.chunks, stats.fingerprint) == (
        expected.documents, expected.chunks, expected.fingerprint)
    assert report.documents == 22
    brisk = desk.search("Brisk bridge cost", k=1)[0]
    assert brisk.doc_id == "brisk.txt" and "cost 24 million euros" in brisk.text  # version 2: 3 + 1 + 2 * 10


def test_a_reader_cuts_off_keyword_hits_of_a_batch_newer_than_its_generation_only_when_there_is_one(
        worker, crash_setup, embedder):
    corpus, _, _ = crash_setup
    run, index = worker
    assert run({"kill": "after_keyword_commit", "n": 2})["killed"]  # tantivy has a batch SQLite never got
    query = " ".join(TOWNS)
    with IndexReader(index).generation() as gen:
        first_new = gen.manifest["next_chunk_id"]
        assert gen.keywords_ahead
        raw = gen.keywords.search(question_terms(query), 200, KeywordFilter(), gen.searcher)
        assert any(i >= first_new for i, _ in raw)
        assert all(i < first_new for i, _ in keyword_ranking(gen, query, 200))
    Desk.open(index, corpus=corpus).update()
    with IndexReader(index).generation() as gen:
        assert not gen.keywords_ahead  # nothing to cut off: the fast, unfiltered query
        raw = gen.keywords.search(question_terms(query), 200, KeywordFilter(), gen.searcher)
        live = Store.live_chunks(gen.conn, [i for i, _ in raw])  # the update's deletions are purged by the next
        assert keyword_ranking(gen, query, 200) == [(i, score) for i, score in raw if i in live]


def test_a_second_writer_waits_or_gives_up_with_a_clear_message(embedder, tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, range(3))
    desk = Desk.build(corpus, tmp_path / "index")
    write_corpus(corpus, range(3, 5))
    lock = writer_lock(tmp_path / "index")
    try:
        with pytest.raises(IndexBusy, match="another newsdesk process is updating"):
            desk.update(lock_timeout=0)
        waiting = threading.Thread(target=desk.update)
        waiting.start()
        time.sleep(1.0)
        assert waiting.is_alive()  # blocked on the lock, not interleaving
        assert desk.stats().documents == 3
    finally:
        lock.release()
    waiting.join(timeout=60)
    assert sorted(desk.last_update.added) == ["dunmore.txt", "elsby.txt"]
    assert desk.stats().documents == 5


def test_questions_during_an_update_see_one_whole_generation(embedder, tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, range(8))
    desk = Desk.build(corpus, tmp_path / "index")
    write_corpus(corpus, range(8), version={i: 3 for i in range(8)})
    write_corpus(corpus, range(8, 24))
    (corpus / "arlen.txt").unlink()
    import newsdesk.index as index_module

    old_batch, index_module.BATCH_CHUNKS = index_module.BATCH_CHUNKS, 3
    updater = threading.Thread(target=desk.update)
    updater.start()
    generations, asked = set(), 0
    try:
        while updater.is_alive() or asked < 5:
            question = f"How much did the {TOWNS[asked % 24]} bridge cost?"
            vector = desk.encoder.encode_query(question)
            with desk.backend.generation() as view:
                result = answer(gather_evidence(view, question, vector, 5, Filters(), desk.fusion))
                generations.add(view.manifest["generation"])
                for c in result.citations + result.related:
                    row = view.conn.execute("SELECT text FROM docs WHERE doc_id = ?", (c.doc_id,)).fetchone()
                    assert row is not None, f"{c.doc_id} is not in generation {view.manifest['generation']}"
                    assert c.quote in row[0]
            assert result.abstained or result.citations
            asked += 1
    finally:
        updater.join()
        index_module.BATCH_CHUNKS = old_batch
    assert len(generations) > 1  # questions really ran while generations changed
    assert desk.stats().documents == 23


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_watch_makes_new_articles_answerable_and_batches_bursts(embedder, tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, range(2))
    desk = Desk.build(corpus, tmp_path / "index")
    reader_desk = Desk.open(tmp_path / "index")  # another open Desk, e.g. the bot's
    reports = []
    with Watcher(desk, debounce=0.5, settle=0.5, on_update=reports.append) as watcher:
        assert wait_until(lambda: watcher.updates >= 1)
        write_corpus(corpus, [2])
        assert wait_until(lambda: any(p.doc_id == "corvo.txt" for p in reader_desk.search("Corvo bridge", k=3)))
        before = watcher.updates
        write_corpus(corpus, range(3, 24))  # a burst of 21 files
        assert wait_until(lambda: reader_desk.stats().documents == 24)
        assert watcher.updates - before <= 2
        (corpus / "corvo.txt").unlink()
        assert wait_until(lambda: reader_desk.stats().documents == 23)
    assert all(not r.skipped for r in reports)


def test_watch_indexes_a_file_still_being_written_once_complete(embedder, tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, range(2))
    desk = Desk.build(corpus, tmp_path / "index")
    reports = []
    with Watcher(desk, debounce=0.3, settle=1.0, on_update=reports.append) as watcher:
        assert wait_until(lambda: watcher.updates >= 1)
        text = article(5)
        with open(corpus / "slow.txt", "w") as f:
            for part in (text[:40], text[40:120], text[120:]):
                f.write(part)
                f.flush()
                time.sleep(0.4)  # a slow copy: each write within `settle` of the last
        assert wait_until(lambda: desk.stats().documents == 3)
    with desk.reader.generation() as gen:
        stored = gen.conn.execute("SELECT text FROM docs WHERE doc_id = 'slow.txt'").fetchone()[0]
    assert stored == text.strip()
    assert sum(1 for r in reports if "slow.txt" in r.added + r.updated) == 1  # indexed once, whole
