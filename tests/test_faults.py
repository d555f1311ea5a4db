"""Bad input and faults (issue 14): one bad file never stops the index, a fixed file is read again,
readers survive merges, a read-only index answers, a full disk costs one line and nothing else."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURE_CORPUS, SAMPLE_CORPUS

import newsdesk.embedded as embedded_module
from newsdesk import Desk, IndexWriteFailed, QueryError, UsageError
from newsdesk.check import check_index
from newsdesk.cli import app
from newsdesk.load import load_corpus, normalize_date
from newsdesk.reader import IndexReader
from newsdesk.retrieve import Fusion, fuse


def _skipped(report) -> dict[str, str]:
    return {s.path: s.reason for s in report.skipped}


# -- one bad file never stops the index -----------------------------------------------------------
def test_each_hostile_file_is_skipped_with_its_reason_and_the_rest_is_indexed(embedder, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, corpus)
    (corpus / "nested.json").write_text("[" * 100_000 + "]" * 100_000)
    (corpus / "long-line.txt").write_text("Headline\n" + "word " * 60_000)
    with open(corpus / "huge.txt", "wb") as f:  # a 21 MB one-line file
        f.write(b"x" * 21_000_000)
    os.symlink("/etc/hostname", corpus / "outside.txt")
    os.symlink(corpus / "loop-a.txt", corpus / "loop-b.txt")
    os.symlink(corpus / "loop-b.txt", corpus / "loop-a.txt")
    bad_name = os.fsencode(str(corpus)) + b"/caf\xff.txt"
    with open(bad_name, "wb") as f:
        f.write(b"Cafe owners protest\nThe owners of the old town's cafes protested on Monday.")
    (corpus / "utf16.txt").write_bytes("Tram fares frozen\nTram fares will stay the same next year, the city said."
                                       .encode("utf-16"))
    (corpus / "bad-date.md").write_text("---\ntitle: Pier closed\ndate: the day after yesterday\n---\n"
                                        "The pier closed for storm repairs, the harbour office said.\n")
    desk = Desk.build(corpus, tmp_path / "index")
    report = desk.last_update
    skipped = _skipped(report)
    assert "nested too deeply" in skipped["nested.json"]
    assert "has a line of 300,000 characters" in skipped["long-line.txt"]
    assert "too large to be one article" in skipped["huge.txt"]
    assert "outside the corpus" in skipped["outside.txt"] and "follow_symlinks" in skipped["outside.txt"]
    assert "loop" in skipped["loop-a.txt"] and "loop" in skipped["loop-b.txt"]
    assert any("not valid UTF-8" in reason and path.startswith("caf") for path, reason in skipped.items())
    assert "utf16.txt" in report.added  # UTF-16 with its byte-order mark is text, not "binary"
    assert "bad-date.md" in report.added
    assert any(w.path == "bad-date.md" and "not a date newsdesk understands" in w.reason for w in report.warnings)
    assert len([d for d in report.added if not d.startswith(("utf16", "bad-date"))]) == 8  # the fixture articles
    assert desk.search("tram fares frozen", k=1)[0].doc_id == "utf16.txt"
    assert check_index(IndexReader(tmp_path / "index")) == []


def test_a_symlink_outside_the_corpus_is_indexed_only_when_allowed(embedder, tmp_path):
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("Ferry strike ends\nThe ferry crews ended their strike after a new pay offer.")
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    os.symlink(outside, corpus / "linked.txt")
    assert "linked.txt" in _skipped(Desk.build(corpus, tmp_path / "a").last_update)
    assert "linked.txt" in Desk.build(corpus, tmp_path / "b", follow_symlinks=True).last_update.added


def test_a_skipped_file_is_read_again_once_fixed_even_if_its_size_and_time_did_not_change(embedder, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.json").write_text(json.dumps({"id": "story", "text": "Bridge reopens after repairs on Monday."}))
    (corpus / "b.json").write_text(json.dumps({"id": "story", "text": "Second copy of the bridge story, same id."}))
    broken = corpus / "c.json"
    broken.write_text('{"text": 12345678901234}')  # a record without text: skipped
    stamp = broken.stat().st_mtime_ns
    desk = Desk.build(corpus, tmp_path / "index")
    skipped = _skipped(desk.last_update)
    assert "duplicate id 'story'" in skipped["b.json"] and 'has no "text"' in skipped["c.json"]
    broken.write_text('{"text": "Ferry fares fall"}')  # same size...
    os.utime(broken, ns=(stamp, stamp))  # ...and the same modification time
    (corpus / "a.json").unlink()  # the other file of the duplicate pair goes
    report = desk.update()
    assert set(report.added) == {"c.json"} and report.updated == ["story"] and report.skipped == []
    assert desk.search("second copy bridge story", k=1)[0].doc_id == "story"


# -- readers and writers ----------------------------------------------------------------------------
def test_readers_never_fail_while_merges_delete_segments(embedder, tmp_path, monkeypatch):
    monkeypatch.setattr(embedded_module, "MAX_SEGMENTS", 1)  # every update merges
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, corpus)
    index = tmp_path / "index"
    desk = Desk.build(corpus, index)
    vector = desk.encoder.encode_query("harbour repairs budget")
    stop = threading.Event()
    failures: list[BaseException] = []
    opens = [0]

    def read() -> None:
        while not stop.is_set():
            try:
                reader = IndexReader(index)  # a fresh reader loads every segment file it lists
                with reader.generation() as gen:
                    assert gen.segments
                reader.store.close()
                opens[0] += 1
            except BaseException as err:  # noqa: BLE001 - what the test counts
                failures.append(err)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(6):
            (corpus / f"note-{n}.txt").write_text(f"Harbour note {n}\nThe harbour repair crew finished job {n}.")
            desk.update()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert opens[0] > 20 and failures == [], failures[:3]
    assert desk.search("harbour repair crew job 5", k=1)[0].doc_id == "note-5.txt"
    del vector


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def test_a_published_read_only_index_answers(embedder, tmp_path):
    built = tmp_path / "built"
    Desk.build(SAMPLE_CORPUS, built)
    mounted = tmp_path / "published"
    mounted.mkdir()
    if not (_mount("--bind", str(built), str(mounted)) and _mount("-o", "remount,bind,ro", str(mounted))):
        pytest.skip("cannot make a read-only mount here (needs root and mount)")
    try:
        with pytest.raises(OSError):
            (mounted / "probe").write_text("x")  # truly read-only
        code = ("from newsdesk import Desk\n"
                f"d = Desk.open({str(mounted)!r})\n"
                "a = d.ask('How many Venezuelan security personnel were killed?')\n"
                "print(a.citations[0].quote)\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "up to 80 Venezuelan security personnel" in proc.stdout
        result = CliRunner().invoke(app, ["stats", "--index", str(mounted)])
        assert result.exit_code == 0, result.output
    finally:
        subprocess.run(["umount", "-l", str(mounted)], capture_output=True)  # lazily: open files may remain


def test_a_full_disk_is_one_line_and_loses_nothing(embedder, tmp_path):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=40m", "tmpfs", str(disk)):
        pytest.skip("cannot mount a tmpfs here (needs root and mount)")
    try:
        corpus = tmp_path / "corpus"
        shutil.copytree(FIXTURE_CORPUS, corpus)
        index = disk / "index"
        desk = Desk.build(corpus, index)
        before = desk.stats()
        filler = disk / "filler"
        with open(filler, "wb") as f:  # leave the index almost no room
            try:
                while True:
                    f.write(b"\0" * 1_000_000)
            except OSError:
                pass
        for n in range(4):
            (corpus / f"long-{n}.txt").write_text(f"Long report {n}\n" + "The harbour board met again. " * 100)
        with pytest.raises(IndexWriteFailed, match="the disk is full.*Nothing was lost") as err:
            desk.update()
        assert "\n" not in str(err.value)
        after = Desk.open(index)
        assert (after.stats().documents, after.stats().fingerprint) == (before.documents, before.fingerprint)
        assert not after.ask("How many runners are expected at the marathon?").abstained
        assert check_index(IndexReader(index)) == []
        result = CliRunner().invoke(app, ["index", "--corpus", str(corpus), "--index", str(index)])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "Nothing was lost" in result.stderr
        filler.unlink()
        assert len(desk.update().added) == 4  # with room again, the update completes
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)  # lazily: the desks keep files open


# -- arguments and messages -------------------------------------------------------------------------
def test_bad_arguments_are_usage_errors(sample_desk):
    for k in (0, -1, 51):
        with pytest.raises(UsageError, match="k must be a whole number from 1 to 50"):
            sample_desk.ask("How many were killed?", k=k)
    with pytest.raises(UsageError, match="mode must be one of hybrid, dense, keyword"):
        sample_desk.search("raid", mode="fuzzy")
    with pytest.raises(UsageError, match="since .* is after until"):
        sample_desk.search("raid", since="2026-02-01", until="2026-01-01")
    # Bytes that were not UTF-8 (from a terminal in another encoding) are replaced, not a crash.
    answer = sample_desk.ask("How many Venezuelan security personnel were killed\udcff?")
    assert not answer.abstained


def test_a_filter_that_excludes_everything_says_so(news_desk):
    with pytest.raises(QueryError, match="no article is published on or after 2030-01-01"):
        news_desk.ask("ferry", since="2030-01-01")
    with pytest.raises(QueryError, match=r"from the source 'nowhere' \(the sources are gazette, wire\)"):
        news_desk.search("ferry", source="nowhere")


def test_the_cli_says_which_empty_it_is(embedder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus").mkdir()
    result = CliRunner().invoke(app, ["ask", "anything"])
    assert result.exit_code == 1 and "holds no articles: put articles in the corpus folder" in result.stderr
    result = CliRunner().invoke(app, ["ask", "anything", "--index", "elsewhere"])
    assert result.exit_code == 1 and "run `newsdesk index --index elsewhere`" in result.stderr
    assert not (tmp_path / "elsewhere").exists()  # an index named explicitly is never created by ask
    result = CliRunner().invoke(app, ["search", "  "])
    assert result.exit_code == 2 and "it is empty" in result.stderr


def test_piped_output_is_whole_lines_and_a_closed_pipe_is_no_error(sample_desk):
    index = str(sample_desk.settings.index_dir)
    exe = [sys.executable, "-m", "newsdesk"]
    proc = subprocess.run(" ".join(exe) + f" ask 'Who condemned the raid?' --index {index} | head -1", shell=True,
                          capture_output=True, text=True, timeout=120, executable="/bin/bash",
                          env={**os.environ, "COLUMNS": "40"})
    assert proc.stderr == "" and proc.stdout.startswith("Allies of Venezuela")
    pipe = subprocess.run(["bash", "-c", " ".join(exe) + f" ask 'Who condemned the raid?' --index {index} | head -1; "
                           "echo ${PIPESTATUS[0]}"], capture_output=True, text=True, timeout=120)
    assert pipe.stdout.strip().splitlines()[-1] == "0"
    full = subprocess.run([*exe, "ask", "Who condemned the raid?", "--index", index], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "40"})
    first = full.stdout.splitlines()[0]
    assert len(first) > 80 and first.endswith("[1]")  # one line, not wrapped at 40 or 80 columns


def test_a_bug_keeps_its_traceback_and_a_user_error_is_one_line(sample_desk, monkeypatch):
    index = str(sample_desk.settings.index_dir)
    result = CliRunner().invoke(app, ["ask", "x", "--index", index, "--since", "2030-01-01"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(Desk, "ask", broken)
    result = CliRunner().invoke(app, ["ask", "x", "--index", index])
    assert isinstance(result.exception, ZeroDivisionError)  # not turned into a polite one-liner


# -- small pieces with no other test --------------------------------------------------------------------
def test_fuse_adds_reciprocal_ranks_with_weights():
    fused = fuse([(1, 0.9), (2, 0.8)], [(2, 7.0), (3, 5.0)], Fusion(dense=1.0, keyword=1.0, rrf_k=5))
    assert [i for i, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / 7 + 1 / 6)
    only_keyword = fuse([(1, 0.9)], [(3, 5.0)], Fusion(dense=0.0, keyword=1.0, rrf_k=5))
    assert only_keyword[0][0] == 3


@pytest.mark.parametrize("value,expected", [
    ("2026-01-03", "2026-01-03"), ("Jan. 3, 2026", "2026-01-03"), ("Sept. 5, 2025", "2025-09-05"),
    ("3 January 2026", "2026-01-03"), ("January 3rd, 2026", "2026-01-03"),
    ("Thu, 05 Mar 2026 10:00:00 +0000", "2026-03-05T10:00:00+00:00"), ("2026-03-04T06:00:00Z", "2026-03-04T06:00:00+00:00"),
    ("2026", None), ("March", None), ("yesterday", None), ("", None), (None, None),
])
def test_normalize_date(value, expected):
    assert normalize_date(value) == expected


def test_yaml_front_matter_keeps_a_list_of_authors(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("---\ntitle: Dock strike\nauthor:\n  - Ana Ruiz\n  - Ben Ott\ndate: Jan. 3, 2026\n---\n"
                                 "The dock workers walked out on Friday.\n")
    (doc,) = load_corpus(corpus).documents
    assert doc.authors == ("Ana Ruiz", "Ben Ott") and doc.published == "2026-01-03"


def test_check_names_what_is_wrong_with_a_damaged_index(embedder, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, corpus)
    index = tmp_path / "index"
    Desk.build(corpus, index)
    assert check_index(IndexReader(index)) == []
    store = next(index.glob("store-*"))
    import sqlite3

    db = sqlite3.connect(store / "newsdesk.sqlite")
    db.execute("DELETE FROM chunks WHERE id = (SELECT min(id) FROM chunks)")
    db.commit()
    db.close()
    problems = check_index(IndexReader(index))
    assert any("manifest says" in p and "chunks" in p for p in problems)
    assert any("keyword index and the chunk store disagree" in p for p in problems)
    for seg in (store / "segments").glob("*.faiss"):
        seg.write_bytes(b"not a faiss file")
    problems = check_index(IndexReader(index))
    assert problems and any("segment" in p for p in problems)
    result = CliRunner().invoke(app, ["check", "--index", str(index)])
    assert result.exit_code == 1 and "run `newsdesk index --rebuild --index" in result.stderr

