"""The embedded index against Milvus Lite (issue 11), on the same data and questions, in one run.

    python bench/milvus.py                              # both sets; writes bench/results/milvus.json
    python bench/milvus.py --questions 20 --no-build    # a quick try: 20 questions a set, no build timing

For each shared set (SQuAD: 832 chunks; RealTime QA: 16,427 chunks) there is one corpus (a copy
of the set's, under bench/work/milvus/, so the add/delete step never touches the shared one) and
two indexes of it: the embedded index (a folder) and Milvus Lite (`milvus-lite:///.../x.db`).

- SQuAD, with build timing (the default): both indexes are built from scratch by `Desk.build`
  with the real encoder, and the raw encoder (`encode_passages` of the same chunk texts and
  sentence spans) is timed in the same run, after each of the two builds (embedded first;
  --milvus-first swaps them).
- RealTime QA (and SQuAD with --no-build): the embedded index is a copy of the bench index
  (`evalsets.open_or_build`), and the Milvus collection is filled from that index's own
  documents, chunks, vectors, sentence vectors and fingerprints through the backend's writer, so
  both answer from identical vectors (re-embedding 16k chunks takes 10-17 minutes here).

Measured on both, over the answerable questions: R@1/R@5/R@10 and MRR@10 (a gold answer string in
the passage text, as bench/evaluate.py; `newsdesk.retrieve.search` on one view, for keyword,
dense and hybrid), how often the two return the same top 10; `Desk.search` (k=5) and `Desk.ask`
p50/p95 latency over (at most 500 of) the same questions, the backends alternating question by
question; adding one article (a new
file, embedded for real) and deleting it again (the file removed), through `Desk.update`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import WORK, Dataset, Question, contains_answer, newsqa, open_or_build, squad  # noqa: E402

from newsdesk import Desk  # noqa: E402
from newsdesk.backend import Batch, open_backend  # noqa: E402
from newsdesk.chunk import Chunk  # noqa: E402
from newsdesk.config import ChunkSettings, Settings  # noqa: E402
from newsdesk.dedup import fingerprint  # noqa: E402
from newsdesk.desk import load_encoder  # noqa: E402
from newsdesk.embedded import EmbeddedView  # noqa: E402
from newsdesk.index import BATCH_CHUNKS, check_compatible  # noqa: E402
from newsdesk.load import Document, Skipped  # noqa: E402
from newsdesk.retrieve import Fusion, SearchMode, search  # noqa: E402
from newsdesk.store import Filters, Store  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
HERE = WORK / "milvus"
MODES = ("keyword", "dense", "hybrid")
BACKENDS = ("embedded", "milvus")
MANIFEST_KEYS = ("format", "model", "encoder", "dimension", "max_tokens", "chunking")


# -- the two indexes -------------------------------------------------------------------------------
def fresh(path: Path) -> Path:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    return path


def copy_corpus(dataset: Dataset, folder: Path) -> Path:
    """The set's corpus, with its files' sizes and modification times (the index's file table)."""
    target = fresh(folder / "corpus")
    shutil.copytree(dataset.corpus, target, copy_function=shutil.copy2)
    return target


def lite(folder: Path) -> str:
    return f"milvus-lite://{fresh(folder / 'milvus.db')}"


def fill_milvus(embedded: Desk, location: str) -> dict:
    """A Milvus index holding exactly what the embedded index holds: its documents, chunks,
    vectors, sentence vectors, fingerprints and file table, written through the Milvus writer in
    batches of about BATCH_CHUNKS chunks, as `newsdesk.index.update_index` writes them (no
    encoder runs)."""
    manifest = embedded.backend.manifest()
    settings = Settings(model=manifest["model"], chunking=ChunkSettings(**manifest["chunking"]))
    backend = open_backend(location)
    started = time.perf_counter()
    with embedded.backend.generation() as view:
        conn, gen = view.conn, view.gen
        chunks: dict[str, list[tuple[Chunk, np.ndarray, bytes]]] = {}
        for cid, doc_id, seq, start, end, text, sentences, segment, blob in conn.execute(
                'SELECT id, doc_id, seq, start, "end", text, sentences, segment, sentence_vectors FROM chunks '
                "ORDER BY doc_id, seq"):
            chunk = Chunk(doc_id, seq, start, end, text, tuple(tuple(s) for s in json.loads(sentences)))
            chunks.setdefault(doc_id, []).append((chunk, gen.segments[segment].vector_of(cid).copy(), blob))
        prints = {doc_id: data for doc_id, data, _ in Store.fingerprints(conn)}
        files, problems = Store.files(conn), Store.problems(conn)
        docs = []
        for row in conn.execute("SELECT doc_id, source_path, content_hash, title, url, published, source, authors, "
                                "text, offsets_in, line_map FROM docs ORDER BY source_path, rowid"):
            doc_id, source_path, content_hash, title, url, published, source, authors, text, offsets_in, line_map = row
            doc = Document(doc_id, text, title, source_path, url, published, source, tuple(json.loads(authors)),
                           offsets_in, tuple(tuple(p) for p in json.loads(line_map)))
            assert doc.content_hash() == content_hash, doc_id  # the same article, as the update compares it
            docs.append(doc)
    read_s = time.perf_counter() - started
    with backend.writer(new_manifest={k: manifest[k] for k in MANIFEST_KEYS},
                        compatible=lambda m: check_compatible(m, settings, location, manifest["encoder"]),
                        rebuild=True, lock_timeout=-1) as writer:
        writer.keep_encoder(embedded.encoder.onnx_file)
        pending: list[Document] = []
        size = 0

        def commit(last: bool) -> None:
            rows = [c for d in pending for c in chunks.get(d.doc_id, [])]
            writer.commit(Batch(
                docs=[(d, [c for c, _, _ in chunks.get(d.doc_id, [])]) for d in pending],
                vectors=np.stack([v for _, v, _ in rows]).astype(np.float32) if rows else None,
                sentence_vectors=[b for _, _, b in rows],
                prints=[prints.get(d.doc_id) or fingerprint(d.text, d.title) for d in pending],
                files=files if last else {}, problems=[Skipped(p.path, p.reason, p.line) for p in problems] if last
                else []))

        for doc in docs:
            pending.append(doc)
            size += len(chunks.get(doc.doc_id, []))
            if size >= BATCH_CHUNKS:
                commit(False)
                pending, size = [], 0
        commit(True)
        writer.finish()
    backend.close()
    return {"documents": len(docs), "chunks": sum(len(c) for c in chunks.values()), "read_s": read_s,
            "write_s": time.perf_counter() - started - read_s}


def same_vectors(embedded: Desk, milvus: Desk) -> dict:
    """Whether the two indexes hold the same vector for each (document, chunk number)."""
    with embedded.backend.generation() as view:
        ours = {(d, s): view.gen.segments[seg].vector_of(i).copy() for i, d, s, seg in view.conn.execute(
            "SELECT id, doc_id, seq, segment FROM chunks")}
    with milvus.backend.generation() as view:
        theirs = {(r["doc_id"], int(r["seq"])): np.asarray(r["vector"], np.float32) for r in view.conn.query_all(
            view.chunks_name, "id >= 0", ["doc_id", "seq", "vector"])}
    common = sorted(set(ours) & set(theirs))
    diff = max((float(np.abs(ours[k] - theirs[k]).max()) for k in common), default=float("nan"))
    return {"embedded_chunks": len(ours), "milvus_chunks": len(theirs), "common": len(common), "max_abs_diff": diff}


# -- build throughput ------------------------------------------------------------------------------
def chunk_inputs(desk: Desk) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """The chunk texts and sentence spans `update_index` gave the encoder, in build order."""
    with desk.backend.generation() as view:
        if isinstance(view, EmbeddedView):
            rows = [(t, start, json.loads(spans)) for t, start, spans in view.conn.execute(
                "SELECT text, start, sentences FROM chunks ORDER BY id")]
        else:  # Milvus: chunk ids are given in build order too
            rows = [(r["text"], r["start"], r["sentences"]) for r in sorted(view.conn.query_all(
                view.chunks_name, "id >= 0", ["id", "text", "start", "sentences"]), key=lambda r: r["id"])]
    return [t for t, _, _ in rows], [[(s - start, e - start) for s, e in spans] for _, start, spans in rows]


def raw_encode(encoder, texts, spans) -> float:
    started = time.perf_counter()
    for at in range(0, len(texts), BATCH_CHUNKS):  # update_index's batches
        encoder.encode_passages(texts[at:at + BATCH_CHUNKS], spans[at:at + BATCH_CHUNKS])
    return time.perf_counter() - started


def build_both(dataset: Dataset, folder: Path, *, milvus_first: bool = False) -> tuple[Desk, Desk, dict]:
    """Full builds of the corpus into a fresh embedded folder and a fresh Milvus Lite file, with
    the raw encoder on the same chunks after each (the machine is shared: the two raw timings
    show how steady it was)."""
    corpus = copy_corpus(dataset, folder)
    from newsdesk.chunk import _punkt

    encoder = load_encoder(Settings().model_folder(), "onnx-int8")
    encoder.encode_passages(["warm up the model"] * 8, [[(0, 17)]] * 8)
    _punkt()  # the sentence splitter, loaded once per process (2-3 s): not the first build's cost
    out: dict = {}
    desks = {}
    order = [("embedded", str(fresh(folder / "embedded"))), ("milvus", lite(folder))]
    out["order"] = [name for name, _ in order[::-1 if milvus_first else 1]]
    for name, location in order[::-1 if milvus_first else 1]:
        started = time.perf_counter()
        desks[name] = Desk.build(corpus, location, encoder="onnx-int8")
        seconds = time.perf_counter() - started
        report = desks[name].last_update
        out[name] = {"seconds": seconds, "embed_seconds": report.embed_seconds, "chunks": report.chunks,
                     "documents": report.documents}
        print(f"  built {name}: {report.chunks} chunks in {seconds:.1f} s", file=sys.stderr)
        if len(desks) == 1:
            texts, spans = chunk_inputs(desks[name])
            out["raw_1_s"] = raw_encode(encoder, texts, spans)
    out["raw_2_s"] = raw_encode(encoder, texts, spans)
    raw = (out["raw_1_s"] + out["raw_2_s"]) / 2
    out["raw_chunks_per_s"] = len(texts) / raw
    for name in BACKENDS:
        out[name]["chunks_per_s"] = out[name]["chunks"] / out[name]["seconds"]
        out[name]["ratio_to_raw"] = raw / out[name]["seconds"]
    return desks["embedded"], desks["milvus"], out


def copy_and_fill(dataset: Dataset, folder: Path) -> tuple[Desk, Desk, dict]:
    """The bench index copied (the add/delete step must not change it) and Milvus filled from it."""
    bench = open_or_build(dataset)
    corpus = copy_corpus(dataset, folder)
    target = fresh(folder / "embedded")
    shutil.copytree(Path(bench.backend.location), target, copy_function=shutil.copy2)
    embedded = Desk.open(target, corpus=corpus)
    location = lite(folder)
    info = fill_milvus(embedded, location)
    print(f"  filled Milvus Lite with {info['chunks']} chunks in {info['write_s']:.1f} s", file=sys.stderr)
    return embedded, Desk.open(location, corpus=corpus), {"fill": info}


# -- retrieval quality -----------------------------------------------------------------------------
def first_hit(texts: list[str], answers: list[str]) -> int | None:
    for i, text in enumerate(texts, start=1):
        if contains_answer(text, answers):
            return i
    return None


def metrics(ranks: list[int | None]) -> dict:
    n = max(len(ranks), 1)
    out = {f"recall@{k}": sum(1 for r in ranks if r and r <= k) / n for k in (1, 5, 10)}
    return out | {"mrr@10": sum(1 / r for r in ranks if r) / n}


def quality(desks: dict[str, Desk], questions: list[Question], fusion: Fusion) -> dict:
    """Each mode's metrics on both backends, from one query vector per question, and how often
    the two agree: the same top 10 (as document and offset), and which one alone has the answer in
    its top 5 (paired: the questions are the same)."""
    ranks = {(b, m): [] for b in BACKENDS for m in MODES}
    same_top10 = dict.fromkeys(MODES, 0)
    only = {(b, m): 0 for b in BACKENDS for m in MODES}
    encoder = desks["embedded"].encoder
    for q in questions:
        vector = encoder.encode_query(q.text)
        for mode in MODES:
            tops = {}
            for b in BACKENDS:
                with desks[b].backend.generation() as view:
                    passages = search(view, q.text, vector, 10, Filters(), fusion, SearchMode(mode))
                tops[b] = [(p.doc_id, p.start) for p in passages]
                ranks[(b, mode)].append(first_hit([p.text for p in passages], q.answers))
            same_top10[mode] += tops["embedded"] == tops["milvus"]
            hit = {b: (ranks[(b, mode)][-1] or 99) <= 5 for b in BACKENDS}
            for b, other in (("embedded", "milvus"), ("milvus", "embedded")):
                only[(b, mode)] += hit[b] and not hit[other]
    out: dict = {"questions": len(questions)}
    for mode in MODES:
        out[mode] = {b: metrics(ranks[(b, mode)]) for b in BACKENDS}
        out[mode]["same_top10"] = same_top10[mode] / max(len(questions), 1)
        out[mode]["only_in_top5"] = {b: only[(b, mode)] for b in BACKENDS}
    return out


# -- latency ---------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def latency(desks: dict[str, Desk], questions: list[Question]) -> dict:
    """Desk.search (k=5) and Desk.ask, warm, one question at a time, the backends taking turns."""
    texts = [q.text for q in questions]
    for text in texts[:20]:
        for b in BACKENDS:
            desks[b].ask(text)
    times = {(b, what): [] for b in BACKENDS for what in ("search", "ask")}
    for text in texts:
        for what in ("search", "ask"):
            for b in BACKENDS:
                t0 = time.perf_counter()
                desks[b].search(text, k=5) if what == "search" else desks[b].ask(text)
                times[(b, what)].append((time.perf_counter() - t0) * 1000)
    return {b: {f"{what}_p{q}_ms": percentile(times[(b, what)], q) for what in ("search", "ask") for q in (50, 95)}
            for b in BACKENDS} | {"questions": len(texts)}


# -- updates ---------------------------------------------------------------------------------------
def articles_to_add(dataset: Dataset, count: int) -> list[dict]:
    """Articles that are not in the corpus: the set's own longest ones, under a new id and date."""
    with open(next(dataset.corpus.glob("*.jsonl"))) as f:
        rows = [json.loads(line) for line in f]
    rows.sort(key=lambda r: -len(r["text"]))
    picked = [rows[len(rows) * (k + 1) // (count + 1)] for k in range(count)]  # quartiles of length, for 3
    return [{"id": f"bench-new-{k}", "title": r.get("title", "") + " (updated)", "text": "Update: " + r["text"],
             "published": "2026-11-30", "source": "bench"} for k, r in enumerate(picked)]


def add_and_delete(desks: dict[str, Desk], corpus: Path, articles: list[dict]) -> dict:
    """Each article added as a new file and then deleted, through Desk.update, on one backend then
    the other; the add embeds the article for real (the same work on both backends). The sentence
    splitter is loaded first: the first update of a process loads it (2-3 s), which is not the
    backend's cost."""
    from newsdesk.chunk import _punkt

    _punkt()
    out: dict = {}
    for b in BACKENDS:
        noop = time.perf_counter()
        report = desks[b].update()
        assert not report.changed, (b, report)
        out[b] = {"noop_s": time.perf_counter() - noop, "adds": []}
    for article in articles:
        for b in BACKENDS:
            desk = desks[b]
            path = corpus / f"{article['id']}.json"
            path.write_text(json.dumps(article))
            t0 = time.perf_counter()
            added = desk.update()
            add_s = time.perf_counter() - t0
            with desk.backend.generation() as view:  # what the next question reads
                found = bool(view.headers([article["id"]]))
            path.unlink()
            t0 = time.perf_counter()
            removed = desk.update()
            delete_s = time.perf_counter() - t0
            with desk.backend.generation() as view:
                gone = not view.headers([article["id"]])
            assert added.added == [article["id"]] and removed.removed == [article["id"]], (b, added, removed)
            out[b]["adds"].append({"chunks": added.chunks_embedded, "add_s": add_s, "add_embed_s": added.embed_seconds,
                                   "add_other_s": add_s - added.embed_seconds, "delete_s": delete_s,
                                   "seen_after_add": found, "gone_after_delete": gone})
    for b in BACKENDS:
        adds = out[b]["adds"]
        for key in ("add_s", "add_other_s", "delete_s"):
            out[b][f"{key}_median"] = statistics.median(a[key] for a in adds)
            out[b][f"{key}_max"] = max(a[key] for a in adds)
    return out


def disk_mb(folder: Path, skip: str = "") -> float:
    """Bytes on disk under `folder`, in MB (the embedded index without its copy of the encoder)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and skip not in f.parts) / 1e6


# -- the run ---------------------------------------------------------------------------------------
def run(dataset: Dataset, *, build: bool, questions: int | None, timed: int, updates: int, fusion: Fusion,
        milvus_first: bool = False) -> dict:
    folder = HERE / dataset.name
    folder.mkdir(parents=True, exist_ok=True)
    print(f"[{dataset.name}] {'building' if build else 'copying the bench index and filling Milvus Lite'}",
          file=sys.stderr)
    result: dict = {"dataset": dataset.name}
    if build:
        embedded, milvus, result["build"] = build_both(dataset, folder, milvus_first=milvus_first)
        result["vectors"] = same_vectors(embedded, milvus)
    else:
        embedded, milvus, info = copy_and_fill(dataset, folder)
        result.update(info)
    desks = {"embedded": embedded, "milvus": milvus}
    result["index"] = {b: {"documents": d.stats().documents, "chunks": d.stats().chunks} for b, d in desks.items()}
    result["index"]["embedded"]["disk_mb"] = disk_mb(Path(embedded.backend.location), skip="encoder")
    result["index"]["milvus"]["disk_mb"] = disk_mb(folder / "milvus.db")
    answerable = [q for q in dataset.questions if q.answers]
    if questions is not None and questions < len(answerable):
        answerable = random.Random(7).sample(answerable, questions)
    print(f"[{dataset.name}] quality, {len(answerable)} answerable questions", file=sys.stderr)
    t0 = time.perf_counter()
    result["quality"] = quality(desks, answerable, fusion)
    result["quality_s"] = time.perf_counter() - t0
    sample = answerable if timed >= len(answerable) else random.Random(11).sample(answerable, timed)
    print(f"[{dataset.name}] latency, {len(sample)} of those questions", file=sys.stderr)
    result["latency"] = latency(desks, sample)
    if updates:
        print(f"[{dataset.name}] add and delete {updates} article(s) on each", file=sys.stderr)
        result["updates"] = add_and_delete(desks, Path(embedded.settings.corpus_dir),
                                           articles_to_add(dataset, updates))
    for d in desks.values():
        d.backend.close()
    return result


def table(results: dict) -> str:
    lines = []
    for name, r in results.items():
        q = r["quality"]
        lines.append(f"\n{name}: {r['index']['embedded']['chunks']} chunks, {q['questions']} answerable questions; "
                     "on disk "
                     f"{r['index']['embedded']['disk_mb']:.0f} MB embedded (without the encoder copy), "
                     f"{r['index']['milvus']['disk_mb']:.0f} MB Milvus Lite")
        lines.append(f"{'':18}{'embedded':>34}  {'milvus lite':>34}")
        for mode in MODES:
            cells = ["  ".join(f"{q[mode][b][k]:.3f}" for k in ("recall@1", "recall@5", "recall@10", "mrr@10"))
                     for b in BACKENDS]
            lines.append(f"{mode + ' R1 R5 R10 MRR':18}{cells[0]:>34}  {cells[1]:>34}   same top 10 "
                         f"{q[mode]['same_top10']:.1%}, only in top 5 {q[mode]['only_in_top5']}")
        lat = r["latency"]
        for what in ("search", "ask"):
            cells = [f"{lat[b][f'{what}_p50_ms']:.1f} / {lat[b][f'{what}_p95_ms']:.1f} ms" for b in BACKENDS]
            lines.append(f"{what + ' p50 / p95':18}{cells[0]:>34}  {cells[1]:>34}")
        if "updates" in r:
            u = r["updates"]
            for key in ("add_s_median", "add_other_s_median", "delete_s_median", "noop_s"):
                lines.append(f"{key:18}{u['embedded'][key]:>32.3f} s  {u['milvus'][key]:>32.3f} s")
        if "build" in r:
            b = r["build"]
            for name2 in BACKENDS:
                lines.append(f"build {name2:12}{b[name2]['seconds']:.1f} s, {b[name2]['chunks_per_s']:.1f} chunks/s, "
                             f"ratio to raw {b[name2]['ratio_to_raw']:.2f}")
            lines.append(f"raw encoder       {b['raw_1_s']:.1f} s and {b['raw_2_s']:.1f} s (after the {b['order'][0]} "
                         f"build, then the {b['order'][1]} one), "
                         f"{b['raw_chunks_per_s']:.1f} chunks/s; same vectors: {r['vectors']}")
        if "fill" in r:
            lines.append(f"milvus fill       {r['fill']['chunks']} chunks written in {r['fill']['write_s']:.1f} s "
                         "(stored vectors, no encoder)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["squad", "newsqa"], choices=["squad", "newsqa"])
    parser.add_argument("--questions", type=int, default=None, help="at most this many answerable questions a set")
    parser.add_argument("--timed", type=int, default=500, help="of those, at most this many timed with Desk.search "
                        "and Desk.ask")
    parser.add_argument("--updates", type=int, default=3, help="articles added and deleted on each backend")
    parser.add_argument("--no-build", action="store_true",
                        help="no build timing: SQuAD's Milvus index is filled from stored vectors too")
    parser.add_argument("--milvus-first", action="store_true", help="build into Milvus Lite first, then the "
                        "embedded folder (to see what the order does)")
    parser.add_argument("--out", type=Path, default=RESULTS / "milvus.json")
    args = parser.parse_args()
    import milvus_lite
    import pymilvus

    fusion = Fusion()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = {}
    for name in args.sets:
        dataset = squad() if name == "squad" else newsqa()
        results[name] = run(dataset, build=name == "squad" and not args.no_build, questions=args.questions,
                            timed=args.timed, updates=args.updates, fusion=fusion, milvus_first=args.milvus_first)
    payload = {"date": started, "pymilvus": pymilvus.__version__,
               "milvus_lite": getattr(milvus_lite, "__version__", "?"), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1))
    print(table(results))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
