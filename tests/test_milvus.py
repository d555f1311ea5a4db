"""newsdesk on Milvus (issue 11), against Milvus Lite started by these tests: in this process
(`milvus-lite:///file.db`) and as a gRPC server on a local port (`milvus://127.0.0.1:port/name`),
which is how a Milvus server or cluster is reached. No Milvus call is mocked; where a test needs a
failure (a crash halfway through a batch, a stolen lease) it makes a real call fail or a real row
change at a chosen moment."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from conftest import FIXTURE_CORPUS

import newsdesk.milvus as milvus
from newsdesk import Desk, IndexBusy, IndexMismatch, IndexUnreachable, UsageError
from newsdesk.answer import answer
from newsdesk.backend import open_backend
from newsdesk.cli import app
from newsdesk.desk import gather_evidence
from newsdesk.milvus import Connection, MilvusBackend, Target
from newsdesk.store import Filters
from test_backends import assert_verbatim, copy_corpus

_names = iter(range(10**6))


@pytest.fixture(scope="module")
def lite_db(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("milvus") / "index.db"


@pytest.fixture
def location(lite_db, embedder):
    """A fresh index in the session's Milvus Lite file."""
    def make(**options) -> str:
        query = "&".join([f"collection=m{next(_names)}", *(f"{k}={v}" for k, v in options.items())])
        return f"milvus-lite://{lite_db}?{query}"
    return make


# -- Milvus Lite as a server -----------------------------------------------------------------------
class RequireToken(grpc.ServerInterceptor):
    """What a Milvus server with authentication enabled does with a wrong or missing token."""

    def __init__(self, token: str):
        self.token = token

    def intercept_service(self, continuation, details):
        sent = dict(details.invocation_metadata).get("authorization", "")
        sent = sent.decode() if isinstance(sent, bytes) else sent
        if sent and base64.b64decode(sent).decode() == self.token:
            return continuation(details)

        def refuse(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "auth check failure, please check username, password or API key are correct")
        return grpc.unary_unary_rpc_method_handler(refuse)


def serve_lite(folder: Path, token: str | None = None):
    """Milvus Lite's own gRPC service (the Milvus protocol) on a free local port."""
    from milvus_lite.adapter.grpc.servicer import MilvusServicer
    from milvus_lite.db import MilvusLite
    from pymilvus.grpc_gen import milvus_pb2_grpc

    db = MilvusLite(str(folder))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         interceptors=[RequireToken(token)] if token else [],
                         options=[("grpc.max_receive_message_length", 256 << 20),
                                  ("grpc.max_send_message_length", 256 << 20)])
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, db, port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv, db, port = serve_lite(tmp_path_factory.mktemp("served") / "data")
    yield port
    srv.stop(grace=1)
    db.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    srv, db, port = serve_lite(tmp_path_factory.mktemp("secured") / "data", token="newsroom:s3cret")
    yield port
    srv.stop(grace=1)
    db.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- locations -------------------------------------------------------------------------------------
def test_locations_name_the_server_the_collections_and_the_ingest_part():
    t = Target("milvus://db.example.org:19531/news?ingest=host-a&consistency=bounded")
    assert (t.uri, t.address, t.prefix, t.ingest, t.consistency, t.lite) == (
        "http://db.example.org:19531", "db.example.org:19531", "news", "host-a", "Bounded", False)
    assert t.index_name == "milvus://db.example.org:19531/news"  # this host's options are not the index's name
    t = Target("milvuss://cloud.example.org/news")
    assert (t.uri, t.ingest, t.consistency) == ("https://cloud.example.org:443", "main", "Strong")
    t = Target("milvus-lite:///srv/news/index.db")
    assert (t.uri, t.prefix, t.lite) == ("/srv/news/index.db", "newsdesk", True)
    for bad, says in [("milvus-lite:///srv/news/index", "ending in .db"), ("milvus://h:port/x", "port must be"),
                      ("milvus://h:19530/bad-name", "cannot name Milvus collections"),
                      ("milvus://h:19530/news?ingest=a/b", "ingest part"),
                      ("milvus://h:19530/news?consistency=sometimes", "consistency must be"),
                      ("milvus://h:19530/news?shards=2", "unknown option")]:
        with pytest.raises(UsageError, match=says):
            Target(bad)


# -- errors a user sees ----------------------------------------------------------------------------
def test_an_unreachable_server_is_one_line_that_says_what_to_do(embedder):
    port = free_port()
    with pytest.raises(IndexUnreachable, match=rf"cannot reach Milvus at localhost:{port}: is it running\?"):
        Desk.open(f"milvus://localhost:{port}/news")
    result = CliRunner().invoke(app, ["stats", "--index", f"milvus://localhost:{port}/news"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "cannot reach Milvus" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_refused_credentials_say_which_setting_to_fix(secured, embedder, tmp_path):
    where = f"milvus://127.0.0.1:{secured}/news"
    for token in ("", "newsroom:wrong"):
        with pytest.raises(IndexUnreachable, match="refused the credentials.*set NEWSDESK_MILVUS_TOKEN"):
            Desk.build(FIXTURE_CORPUS, where, milvus_token=token)
    corpus = copy_corpus(FIXTURE_CORPUS, tmp_path)
    desk = Desk.build(corpus, where, milvus_token="newsroom:s3cret")
    assert desk.stats().documents == 8
    next(p for p in sorted(corpus.rglob("*")) if p.is_file() and p.suffix == ".txt").unlink()
    assert desk.update().removed  # an update (watch mode, /reindex) keeps the desk's credentials
    result = CliRunner().invoke(app, ["stats", "--index", where], env={"NEWSDESK_MILVUS_TOKEN": "newsroom:nope"})
    assert result.exit_code == 1 and "NEWSDESK_MILVUS_TOKEN" in result.stderr and "Traceback" not in result.stderr
    result = CliRunner().invoke(app, ["stats", "--index", where, "--json"],
                                env={"NEWSDESK_MILVUS_TOKEN": "newsroom:s3cret"})
    assert result.exit_code == 0 and json.loads(result.stdout)["documents"] == 7


def test_a_lite_index_built_by_one_process_answers_in_the_next(tmp_path, embedder):
    """Milvus Lite brings collections back released in a new process: newsdesk loads them."""
    where = f"milvus-lite://{tmp_path / 'later.db'}"
    corpus = copy_corpus(FIXTURE_CORPUS, tmp_path)
    for args in (["index", "--corpus", str(corpus)], ["stats", "--json"], ["ask", "What did the council approve?",
                                                                              "--corpus", str(corpus), "--json"]):
        done = subprocess.run([sys.executable, "-m", "newsdesk", *args, "--index", where], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["citations"]


def test_a_lite_file_open_in_another_process_is_busy_not_a_traceback(tmp_path, embedder):
    path = tmp_path / "held.db"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from milvus_lite import MilvusLite
        db = MilvusLite({str(path)!r})
        print("ready", flush=True)
        input()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(IndexBusy, match="open in another process, and Milvus Lite serves one process"):
            Desk.open(f"milvus-lite://{path}")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_another_model_dimension_is_refused(location, embedder, tmp_path):
    where = location()
    Desk.build(copy_corpus(FIXTURE_CORPUS, tmp_path), where)
    backend = open_backend(where)
    manifest = {**backend.manifest(), "dimension": 768}
    with pytest.raises(IndexMismatch, match="384-dimensional vectors, but this model makes 768"):
        with backend.writer(new_manifest=manifest, compatible=lambda m: None, rebuild=False, lock_timeout=0):
            pass


# -- a server, and ingestion from another process ------------------------------------------------
def test_a_server_index_is_built_by_another_process_while_this_one_answers(server, embedder, tmp_path):
    where = f"milvus://127.0.0.1:{server}/shared"
    corpus = copy_corpus(FIXTURE_CORPUS, tmp_path)
    desk = Desk.build(corpus, where)
    assert desk.stats().documents == 8
    (corpus / "tram.txt").write_text("Tram strike called off\nThe tram drivers' union called off Friday's strike "
                                     "after a pay deal, the union said.")
    # `newsdesk index` on "another host": its own process, writing to the shared collections.
    ingest = subprocess.run([sys.executable, "-m", "newsdesk", "index", "--corpus", str(corpus), "--index", where],
                            capture_output=True, text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stderr
    assert "1 added" in " ".join(ingest.stderr.split())
    result = desk.ask("Who called off the tram strike?")  # this desk was open all along
    assert result.citations[0].doc_id == "tram.txt"
    assert_verbatim(desk, result)


# -- never half an article -------------------------------------------------------------------------
def test_a_question_at_any_step_of_an_update_cites_the_old_or_the_new_article_whole(location, tmp_path, monkeypatch):
    corpus = copy_corpus(FIXTURE_CORPUS, tmp_path)
    where = location()
    desk = Desk.build(corpus, where)
    reader = Desk.open(where)  # another process's desk, reading between the writer's steps
    notes = corpus / "gazette" / "notes.txt"
    old_text = document_text(reader, "gazette/notes.txt")
    notes.write_text(notes.read_text().replace("2,300 people", "2,700 people"))
    (corpus / "gazette" / "budget.md").unlink()
    question = "How many people signed the library petition?"
    seen: list[str] = []
    probing = []
    original = Connection.call

    def probe():
        vector = reader.encoder.encode_query(question)
        with reader.backend.generation() as view:
            evidence = gather_evidence(view, question, vector, 10, Filters(), reader.fusion)
            for p in evidence.passages:  # every passage is its document's text at its offsets
                assert evidence.docs[p.doc_id].text[p.start:p.end] == p.text
            notes_passages = [p for p in evidence.passages if p.doc_id == "gazette/notes.txt"]
            if notes_passages:
                text = evidence.docs["gazette/notes.txt"].text
                assert text == old_text or text == old_text.replace("2,300 people", "2,700 people")
                seen.append("new" if "2,700" in text else "old")
            else:
                seen.append("absent")
            result = answer(evidence)
            for c in result.citations + result.related:
                assert c.quote in evidence.docs[c.doc_id].text

    def call(self, method, *args, doing="read", **kwargs):
        out = original(self, method, *args, doing=doing, **kwargs)
        if doing == "write" and method in ("insert", "upsert", "delete") and not probing:
            probing.append(1)
            try:
                probe()
            finally:
                probing.pop()
        return out

    monkeypatch.setattr(Connection, "call", call)
    report = desk.update()
    monkeypatch.undo()
    assert report.updated == ["gazette/notes.txt"] and report.removed == ["gazette/budget.md"]
    assert len(seen) > 8  # a question after every write of the update
    assert "old" in seen and "new" in seen and seen.index("new") > max(i for i, s in enumerate(seen) if s == "old")
    assert "absent" not in seen  # the reader always found the article: old, then new
    assert desk.check() == []


def test_a_read_during_a_milvus_lite_flush_finds_the_rows_the_flush_hid(location, tmp_path, monkeypatch):
    """Milvus Lite 3.2 swaps in an empty memtable before the segment it flushes is readable, so a
    read that took its segment snapshot before another thread's flush misses rows that exist (in
    CI an update's last flush made a question fail with "changed while this question was being
    answered"). Here that flush happens at exactly that moment; the view reads the text again."""
    from milvus_lite.engine.collection import Collection

    desk = Desk.build(copy_corpus(FIXTURE_CORPUS, tmp_path), location())
    doc_id = "gazette/notes.txt"
    with desk.backend.generation() as view:
        text = view.documents([doc_id])[doc_id].text
        version = view._headers[doc_id]["version"]
        key = milvus.text_key(doc_id, version, 0)
        row = view.conn.get(view.kv_name, [key], ["key", "part", "owner", "num", "value"], level="Strong")[0]
        # Deleted for good and written again: the text piece is only in the memtable, as a new one is.
        view.conn.delete(view.kv_name, [key])
        view.conn.call("flush", view.kv_name, doing="write")
        view.conn.insert(view.kv_name, [milvus.kv_row("text", milvus.text_id(doc_id, version, 0), part=row["part"],
                                                      owner=row["owner"], num=row["num"], value=row["value"])])
        armed = [view.kv_name]
        snapshot = Collection._read_snapshot

        def snapshot_then_flush(collection):
            taken = snapshot(collection)
            if collection._name in armed:
                armed.remove(collection._name)
                flusher = threading.Thread(target=collection.flush)  # as the writer's thread would
                flusher.start()
                flusher.join()
            return taken

        monkeypatch.setattr(Collection, "_read_snapshot", snapshot_then_flush)
        view._headers.clear()
        assert view.documents([doc_id])[doc_id].text == text
        assert armed == []  # the flush did come between the snapshot and the memtable


def document_text(desk: Desk, doc_id: str) -> str:
    with desk.backend.generation() as view:
        return view.documents([doc_id])[doc_id].text


class Crash(BaseException):
    """Stands for the process dying (kill -9) at a chosen call."""


def _rows(args, kwargs):
    return args[1] if len(args) > 1 else kwargs.get("data", [])


CRASH_POINTS = {
    # before the switch: the new texts are written, the new chunks are not
    "at-chunk-insert": lambda name, target, rows: name == "insert" and target.endswith("_chunks"),
    # the new chunks are written, no document row points at them
    "at-switch": lambda name, target, rows: name == "upsert" and target.endswith("_docs"),
    # switched, the old chunks are still there
    "after-switch": lambda name, target, rows: name == "delete" and target.endswith("_chunks"),
    # everything written but the part's counters: the batch's commit
    "at-commit": lambda name, target, rows: (name == "upsert" and target.endswith("_meta") and ":part:" in
                                             rows[0]["key"] and '"pending": null' in rows[0]["value"]),
}


@pytest.mark.parametrize("at", sorted(CRASH_POINTS))
def test_an_update_that_stops_halfway_is_reconciled_by_the_next(location, tmp_path, monkeypatch, at):
    corpus = copy_corpus(FIXTURE_CORPUS, tmp_path)
    where = location()
    desk = Desk.build(corpus, where)
    notes = corpus / "gazette" / "notes.txt"
    notes.write_text(notes.read_text().replace("2,300 people", "2,700 people"))
    (corpus / "gazette" / "budget.md").unlink()
    (corpus / "new.txt").write_text("Tram strike called off\nThe tram drivers' union called off Friday's strike.")
    crash_here = CRASH_POINTS[at]
    original = Connection.call

    def call(self, name, *args, doing="read", **kwargs):
        target = str(args[0] if args else kwargs.get("collection_name", ""))
        if doing == "write" and crash_here(name, target, _rows(args, kwargs)):
            raise Crash()
        return original(self, name, *args, doing=doing, **kwargs)

    monkeypatch.setattr(Connection, "call", call)
    with pytest.raises(Crash):
        desk.update()
    monkeypatch.undo()
    # Whatever it had done, a question sees whole articles (the old version or the new: the file on
    # disk is already the new one, so quotes are checked against the text the index holds).
    result = desk.ask("How many people signed the library petition?")
    with desk.backend.generation() as view:
        docs = view.documents(sorted({c.doc_id for c in result.citations + result.related}))
    assert all(c.quote in docs[c.doc_id].text for c in result.citations + result.related)
    assert "2,300 people" in result.text or "2,700 people" in result.text
    report = Desk.open(where, corpus=corpus).update(lock_timeout=0)  # the lease of the dead writer is gone
    assert desk.check() == []
    expected = Desk.build(corpus, location()).stats()
    stats = desk.stats()
    assert (stats.documents, stats.chunks, stats.fingerprint, stats.sources) == (
        expected.documents, expected.chunks, expected.fingerprint, expected.sources)
    assert "2,700 people" in desk.ask("How many people signed the library petition?").text
    assert all(p.doc_id != "gazette/budget.md" for p in desk.search("harbour budget breakwater", k=10))
    assert report.documents == 8


# -- the writer lease ------------------------------------------------------------------------------
def test_a_dead_writers_lease_expires_and_a_stolen_one_stops_the_update(location, tmp_path, monkeypatch):
    corpus = copy_corpus(FIXTURE_CORPUS, tmp_path)
    where = location()
    desk = Desk.build(corpus, where)
    backend = MilvusBackend(where)
    backend.meta.put("lock:main", {"owner": "dead", "host": "elsewhere", "pid": 1, "expires": 0})
    assert desk.update(lock_timeout=0).unchanged == 8  # expired: taken over at once
    backend.meta.put("lock:main", {"owner": "alive", "host": "elsewhere", "pid": 2, "expires": 4e9})
    with pytest.raises(IndexBusy, match=r"another newsdesk process \(elsewhere pid 2\) is updating ingest part 'main'"):
        desk.update(lock_timeout=0)
    backend.meta.delete("lock:main")

    (corpus / "new.txt").write_text("Tram strike called off\nThe tram drivers' union called off Friday's strike.")
    original = milvus.MilvusWriter.commit

    def commit(self, batch):  # another writer takes the lease while this one stalls
        backend.meta.put("lock:main", {"owner": "thief", "host": "elsewhere", "pid": 3, "expires": 4e9})
        return original(self, batch)

    monkeypatch.setattr(milvus.MilvusWriter, "commit", commit)
    with pytest.raises(IndexBusy, match="lost its writer lease"):
        desk.update()
    monkeypatch.undo()
    assert backend.meta.get("lock:main")["owner"] == "thief"  # not released by the loser
    assert desk.stats().documents == 8


# -- ingest parts ----------------------------------------------------------------------------------
def test_two_ingest_parts_write_one_index_without_clobbering_each_other(location, tmp_path):
    where = location()
    a, b = tmp_path / "host-a", tmp_path / "host-b"
    shutil.copytree(FIXTURE_CORPUS / "gazette", a / "gazette")
    shutil.copytree(FIXTURE_CORPUS / "wire", b / "wire")
    desk_a = Desk.build(a, f"{where}&ingest=host-a")
    desk_b = Desk.build(b, f"{where}&ingest=host-b")
    assert desk_b.last_update.rebuilt is False and len(desk_b.last_update.added) == 4
    reader = Desk.open(where)
    assert reader.stats().documents == 8 and reader.sources() == {"gazette": 4, "wire": 4}
    assert {p.doc_id for p in reader.search("Port Halden", k=20)} == {
        "gazette/festival.html", "gazette/budget.md", "gazette/marathon.pdf", "gazette/notes.txt",
        "wire-ferry-1", "wire-ferry-2", "wire/briefs.jsonl#1", "wire/briefs.jsonl#2"}
    assert reader.check() == []
    # Each part keeps its own file table: an update of one reads nothing of the other.
    (a / "gazette" / "budget.md").unlink()
    report = desk_a.update()
    assert report.removed == ["gazette/budget.md"] and report.unchanged == 3
    assert desk_b.update().changed is False
    # A document id is one namespace: the same file in the other part is a duplicate, not a takeover.
    shutil.copy(a / "gazette" / "notes.txt", b / "gazette-notes.txt")
    (b / "gazette").mkdir()
    shutil.copy(a / "gazette" / "notes.txt", b / "gazette" / "notes.txt")
    report = desk_b.update()
    assert any("duplicate id 'gazette/notes.txt'" in p.reason and "ingest part 'host-a'" in p.reason
               for p in report.skipped)
    assert reader.stats().documents == 8  # 3 + 4 + gazette-notes.txt
    assert reader.check() == []


def test_a_rebuild_switches_when_every_part_has_rebuilt(location, tmp_path, monkeypatch):
    monkeypatch.setattr(milvus, "RETIRE_GRACE", 0.0)
    where = location()
    a, b = tmp_path / "host-a", tmp_path / "host-b"
    shutil.copytree(FIXTURE_CORPUS / "gazette", a / "gazette")
    shutil.copytree(FIXTURE_CORPUS / "wire", b / "wire")
    Desk.build(a, f"{where}&ingest=host-a")
    Desk.build(b, f"{where}&ingest=host-b")
    reader = Desk.open(where)
    first = reader.stats().generation
    backend = MilvusBackend(where)
    old_build = backend.manifest()["build"]
    rebuilt = Desk.build(a, f"{where}&ingest=host-a", rebuild=True)
    assert rebuilt.last_update.rebuilt
    assert backend.manifest()["build"] == old_build and reader.stats().documents == 8  # still the old one
    report = Desk.build(b, f"{where}&ingest=host-b")  # its next update joins the rebuild
    assert report.last_update.rebuilt and len(report.last_update.added) == 4
    assert backend.manifest()["build"] != old_build
    assert reader.stats().documents == 8 and reader.stats().generation > first
    assert reader.check() == []
    Desk.build(a, f"{where}&ingest=host-a")  # the next writer drops the replaced build
    names = backend.conn.call("list_collections")
    assert not [n for n in names if old_build in n]


# -- what Milvus limits ----------------------------------------------------------------------------
def test_an_article_longer_than_a_varchar_is_stored_and_quoted_whole(location, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    filler = " ".join(f"Paragraph {i} of the council minutes records routine business." for i in range(1500))
    (corpus / "minutes.txt").write_text("Council minutes\n" + filler + "\nThe council approved 48 new benches for "
                                        "the harbour promenade, the clerk said.\n")
    odd = "z" * 70000  # one 70,000-character token: a chunk longer than a VARCHAR holds
    (corpus / "odd.txt").write_text(f"Odd file\nThe odd file holds {odd} and the ferry fare rose to 9 euros.\n")
    monkeypatch.setattr(milvus, "SVEC_INLINE", 2000)  # sentence vectors over this many bytes go to kv in pieces
    desk = Desk.build(corpus, location())
    result = desk.ask("How many benches did the council approve?")
    assert "48 new benches" in result.citations[0].quote
    assert_verbatim(desk, result)
    with desk.backend.generation() as view:
        assert len(view.documents(["minutes.txt"])["minutes.txt"].text) > 65535
        header = view.conn.get(view.docs_name, ["minutes.txt"], ["pieces"], level="Strong")[0]
        assert header["pieces"] > 1
    hits = desk.search("odd file ferry fare", k=3)
    assert any(h.doc_id == "odd.txt" and odd in h.text for h in hits)
    assert desk.check() == []


def test_document_frequencies_are_the_embedded_indexs(location, tmp_path):
    corpus = copy_corpus(FIXTURE_CORPUS, tmp_path)
    embedded = Desk.build(corpus, tmp_path / "index")
    on_milvus = Desk.build(corpus, location())
    stems = ["ferri", "port", "halden", "festiv", "marathon", "petit", "nosuchstem"]
    with embedded.backend.generation() as a, on_milvus.backend.generation() as b:
        assert a.document_frequencies(stems) == b.document_frequencies(stems)
        assert a.count_documents(Filters(source="wire")) == b.count_documents(Filters(source="wire"))
        assert a.count_documents(Filters(since="2026-03-02")) == b.count_documents(Filters(since="2026-03-02"))


def test_check_finds_a_chunk_deleted_behind_newsdesks_back(location, tmp_path):
    desk = Desk.build(copy_corpus(FIXTURE_CORPUS, tmp_path), location())
    with desk.backend.generation() as view:
        chunk_id = desk.search("lantern festival visitors", k=1)[0].chunk_id
        view.conn.delete(view.chunks_name, [chunk_id])
    problems = desk.check()
    assert any("says 8 chunks, the index holds 7" in p for p in problems), problems
    result = CliRunner().invoke(app, ["check", "--index", desk.settings.index])
    assert result.exit_code == 1 and "newsdesk index --rebuild" in result.stderr


def test_the_cli_indexes_asks_and_reports_on_milvus(location, tmp_path):
    corpus = copy_corpus(FIXTURE_CORPUS, tmp_path)
    where = location()
    runner = CliRunner()
    result = runner.invoke(app, ["index", "--corpus", str(corpus), "--index", where])
    assert result.exit_code == 0, result.output
    assert "8 added" in " ".join(result.stderr.split())
    result = runner.invoke(app, ["ask", "How many runners are expected at the marathon?", "--corpus", str(corpus),
                                 "--index", where, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["citations"][0]["doc_id"] == "gazette/marathon.pdf"
    result = runner.invoke(app, ["search", "ferry", "--index", where, "--source", "wire", "--json", "-k", "2"])
    assert result.exit_code == 0 and all(r["source"] == "wire" for r in json.loads(result.stdout)["results"])
    result = runner.invoke(app, ["stats", "--index", where, "--json"])
    assert json.loads(result.stdout)["index"] == where and json.loads(result.stdout)["documents"] == 8
    assert runner.invoke(app, ["check", "--index", where]).exit_code == 0
