"""What issue 10 changed underneath: approximate segments, masks for filters and deletions,
resumable builds, refused old formats, and commands that start without loading torch."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURE_CORPUS

import newsdesk.embedded as embedded_module
import newsdesk.index as index_module
import newsdesk.vectors as vectors_module
from newsdesk import Desk, IndexMismatch
from newsdesk.check import check_index
from newsdesk.config import Settings
from newsdesk.index import update_index
from newsdesk.reader import IndexReader
from newsdesk.store import Filters
from newsdesk.vectors import Mask, new_segment, search

ROOT = Path(__file__).resolve().parents[1]


def _random_unit(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_an_approximate_segment_finds_what_an_exact_one_finds():
    vectors = _random_unit(3000)
    ids = np.arange(100, 3100, dtype=np.int64)
    days = np.arange(3000, dtype=np.int32) % 60
    sources = (np.arange(3000, dtype=np.int32) % 3) + 1
    flat = new_segment("flat", ids, vectors, days, sources, ann_threshold=10**9)
    hnsw = new_segment("hnsw", ids, vectors, days, sources, ann_threshold=1)
    assert hnsw.approximate and not flat.approximate
    queries = _random_unit(50, seed=1)
    overlap = []
    for q in queries:
        exact, _ = search([flat], q, 10)
        approx, _ = search([hnsw], q, 10)
        overlap.append(len(set(exact) & set(approx)) / 10)
    assert np.mean(overlap) >= 0.95
    # Masks are exact in both: only allowed positions come back, whatever the index type.
    mask = Mask(since_day=10, until_day=12, source=2)
    allowed = set(ids[(days >= 10) & (days <= 12) & (sources == 2)].tolist())
    for seg in (flat, hnsw):
        got, _ = search([seg], queries[0], 20, mask=mask)
        assert set(got.tolist()) <= allowed and len(got) == min(20, len(allowed))
    dead = np.ones(3000, dtype=bool)
    dead[:2990] = False  # only ten positions alive
    got, _ = search([hnsw], queries[0], 50, alive={"hnsw": dead})
    assert sorted(got.tolist()) == ids[2990:].tolist()


def test_deletions_and_merges_keep_working_with_approximate_segments(embedder, tmp_path, monkeypatch):
    monkeypatch.setattr(vectors_module, "ANN_THRESHOLD", 5)  # every merged segment is HNSW
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, corpus)
    desk = Desk.build(corpus, tmp_path / "index")
    with desk.reader.generation() as gen:
        assert all(seg.approximate for seg in gen.segments.values())
    assert desk.search("ferry accident death toll", k=1)[0].doc_id in {"wire-ferry-1", "wire-ferry-2"}
    (corpus / "wire" / "ferry-2026-03-01.json").unlink()
    desk.update()
    assert all(p.doc_id != "wire-ferry-1" for p in desk.search("ferry accident death toll", k=10))
    monkeypatch.setattr(embedded_module, "MAX_SEGMENTS", 1)
    for n in range(3):  # several small updates, then a merge
        (corpus / f"extra-{n}.txt").write_text(f"Harbour crane {n} repaired\nThe harbour crane number {n} was repaired.")
        desk.update()
    assert desk.search("harbour crane 2 repaired", k=1)[0].doc_id == "extra-2.txt"
    assert check_index(IndexReader(tmp_path / "index")) == []


def test_filters_are_exact_on_both_halves(news_desk):
    for kwargs in ({"since": "2026-03-02"}, {"until": "2026-02-10"}, {"source": "gazette"},
                   {"since": "2026-03-04", "until": "2026-03-04"}):
        with news_desk.reader.generation() as gen:
            where, params = Filters(**kwargs).sql()
            allowed = {r[0] for r in gen.conn.execute(f"SELECT d.doc_id FROM docs d WHERE {where}", params)}
        for mode in ("dense", "keyword", "hybrid"):
            got = {p.doc_id for p in news_desk.search("Port Halden harbour ferry rail", k=20, mode=mode, **kwargs)}
            assert got <= allowed, (kwargs, mode)
            if mode == "dense":
                assert got == allowed  # dense search ranks every chunk, so every allowed article shows


def test_an_interrupted_build_is_continued_not_restarted(embedder, tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "BATCH_CHUNKS", 2)  # many batches on a small corpus
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, corpus)
    index = tmp_path / "index"
    settings = Settings(corpus_dir=corpus, index=str(index))
    embedded = []

    def stop_halfway(done: int) -> None:
        embedded.append(done)
        if len(embedded) == 3:
            raise KeyboardInterrupt  # Ctrl-C, or the machine went down

    with pytest.raises(KeyboardInterrupt):
        update_index(settings, embedder, on_batch=stop_halfway)
    assert (index / "BUILDING").exists() and not (index / "CURRENT").exists()
    first = embedded[-1]
    report = update_index(settings, embedder)
    assert report.rebuilt and report.resumed and not (index / "BUILDING").exists()
    total = report.chunks
    assert first + report.chunks_embedded <= 1.1 * total, (first, report.chunks_embedded, total)
    assert report.chunks_embedded < total
    expected = Desk.build(corpus, tmp_path / "fresh").stats()
    got = Desk.open(index).stats()
    assert (got.documents, got.chunks, got.fingerprint) == (expected.documents, expected.chunks, expected.fingerprint)
    assert check_index(IndexReader(index)) == []


def test_an_index_of_an_older_format_is_refused_with_rebuild(sample_desk, tmp_path):
    old = tmp_path / "old-index"
    shutil.copytree(sample_desk.settings.index_dir, old)
    store = next(old.glob("store-*"))
    db = sqlite3.connect(store / "newsdesk.sqlite")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'format'")
    db.commit()
    db.close()
    with pytest.raises(IndexMismatch, match=r"older newsdesk.*newsdesk index --rebuild"):
        Desk.open(old)


@pytest.mark.parametrize("args", [["--help"], ["stats", "--index", "{index}"], ["ask", ""], ["check", "--index", "{index}"]])
def test_light_commands_never_import_torch(sample_desk, args):
    index = str(sample_desk.settings.index_dir)
    code = ("import sys\nfrom newsdesk.cli import main\nsys.argv = ['newsdesk'] + %r\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\n") % (
        [a.replace("{index}", index) for a in args],)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.stderr.strip().endswith("NO-TORCH"), proc.stderr


def test_ask_needs_no_torch_either(sample_desk):
    """A question on an index built with the ONNX encoder is embedded by onnxruntime alone."""
    code = ("import sys\nfrom newsdesk import Desk\n"
            f"d = Desk.open({str(sample_desk.settings.index_dir)!r})\n"
            "print(d.ask('How many Venezuelan security personnel were killed?').citations[0].quote[:40])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("NO-TORCH"), proc.stdout
