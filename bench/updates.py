"""Live-update figures: one-article add/delete at 10k and 100k chunks, full-build throughput,
peak memory, and the time from a file landing in corpus/ to it being answerable (watch mode).

    python bench/updates.py                      # everything, writes bench/results/updates.json
    python bench/updates.py --sizes 10000        # one size only

The large indexes are filled with the 2,225 BBC articles (../shared/data/news-corpus),
replicated under new ids until the index holds the wanted number of chunks. Their vectors
are the real model's, computed once by a real full build (which is also the throughput
figure) and replayed from a cache while filling, because embedding 100k chunks here takes
over an hour and the update cost does not depend on which vectors the index holds. Every
measured add, delete and watch step runs the real pipeline, real encoder included, on
RealTime QA articles that are not in the index. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import DATA, WORK  # noqa: E402
from speed import build_against_encoder  # noqa: E402

from newsdesk import Desk  # noqa: E402
from newsdesk.config import Settings  # noqa: E402
from newsdesk.desk import load_embedder  # noqa: E402
from newsdesk.embed import Embedder, use_threads  # noqa: E402
from newsdesk.index import update_index  # noqa: E402
from newsdesk.watch import Watcher  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BBC = DATA / "news-corpus" / "bbc-news-2225.jsonl"


class ReplayEmbedder(Embedder):
    """The real model, but vectors already computed for a text are looked up, not recomputed."""

    def __init__(self, real: Embedder, cache: dict[str, np.ndarray]):
        self.__dict__.update(real.__dict__)
        self.cache = cache
        self.real = real

    def encode(self, texts, *, batch_size=32, progress=False):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for text, vector in zip(missing, self.real.encode(missing, batch_size=batch_size, progress=progress)):
                self.cache[text] = vector
        return np.stack([self.cache[t] for t in texts]) if texts else self.real.encode([])


def full_build(embedder: Embedder) -> tuple[dict, dict[str, np.ndarray]]:
    """A real full build of the BBC corpus, the raw encoder on the same chunks, and the vectors."""
    corpus = WORK / "bbc" / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.copy(BBC, corpus / "bbc.jsonl")
    index = WORK / "bbc" / "index"
    shutil.rmtree(index, ignore_errors=True)
    desk, figures = build_against_encoder(corpus, index, embedder, progress=True)
    return figures, cached_vectors(desk)


def cached_vectors(desk: Desk) -> dict[str, np.ndarray]:
    with desk.reader.generation() as gen:
        rows = gen.conn.execute("SELECT id, text, segment FROM chunks ORDER BY id").fetchall()
        return {text: gen.segments[seg].index.reconstruct(i) for i, text, seg in rows}


def fill(size: int, embedder: Embedder, cache: dict[str, np.ndarray]) -> tuple[Path, Path, dict]:
    """A corpus of BBC replicas holding about `size` chunks, indexed with replayed vectors."""
    records = [json.loads(line) for line in BBC.read_text().splitlines()]
    per_copy = len(cache)
    copies = max(1, math.ceil(size / per_copy))
    root = WORK / f"fill-{size}"
    shutil.rmtree(root, ignore_errors=True)
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for r in range(copies):
        with open(corpus / f"bbc-{r:03d}.jsonl", "w") as out:
            for rec in records:
                out.write(json.dumps({"id": f"r{r}-{rec['id']}", "title": rec["title"], "text": rec["text"]}) + "\n")
    settings = Settings(corpus_dir=corpus, index=str(root / "index"))
    started = time.perf_counter()
    report = update_index(settings, ReplayEmbedder(embedder, cache))
    info = {"copies": copies, "documents": report.documents, "chunks": report.chunks,
            "fill_seconds": time.perf_counter() - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return corpus, root / "index", info


def news_articles(n: int, skip: int = 0) -> list[dict]:
    lines = (DATA / "newsqa-like" / "articles.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[skip:skip + n]]


def article_file(a: dict) -> str:
    return f"{a['title']}\n\n{a['text']}"


def add_and_delete(corpus: Path, index: Path, embedder: Embedder, rounds: int) -> dict:
    desk = Desk.open(index, corpus=corpus)
    desk.ask("warm up")
    adds, deletes, embedded, visible, encoding = [], [], [], [], []
    for n, a in enumerate(news_articles(rounds, skip=100)):
        path = corpus / f"new-{n}.txt"
        path.write_text(article_file(a))
        report = desk.update()
        assert report.added == [path.name], report
        adds.append(report.seconds)
        encoding.append(report.embed_seconds)
        embedded.append(report.chunks_embedded)
        started = time.perf_counter()
        hits = desk.search(a["title"], k=10)  # the first question after an update loads the new generation
        visible.append(time.perf_counter() - started)
        assert any(h.doc_id == path.name for h in hits), a["title"]
    for n in range(rounds):
        (corpus / f"new-{n}.txt").unlink()
        report = desk.update()
        assert report.removed == [f"new-{n}.txt"], report
        deletes.append(report.seconds)
    use_threads(1)
    return {
        "add_seconds": {"median": statistics.median(adds), "max": max(adds), "all": adds},
        "chunks_per_added_article": statistics.median(embedded),
        "chunks_added": embedded,
        # What an add costs besides encoding the article itself: the part that could grow with the index.
        "add_seconds_without_encoding": {"median": statistics.median(a - e for a, e in zip(adds, encoding)),
                                         "max": max(a - e for a, e in zip(adds, encoding))},
        "delete_seconds": {"median": statistics.median(deletes), "max": max(deletes), "all": deletes},
        "first_search_after_update_seconds": statistics.median(visible),
        "stats": desk.stats(),
    }


def watch_latency(corpus: Path, index: Path, embedder: Embedder, files: int) -> dict:
    desk = Desk.open(index, corpus=corpus)
    reader = Desk.open(index, corpus=corpus)  # a second open Desk, as the bot's
    latencies = []
    with Watcher(desk) as watcher:
        while watcher.updates < 1:
            time.sleep(0.1)
        for n, a in enumerate(news_articles(files, skip=200)):
            name = f"watched-{n}.txt"
            started = time.perf_counter()
            (corpus / name).write_text(article_file(a))
            while not any(h.doc_id == name for h in reader.search(a["title"], k=10)):
                time.sleep(0.05)
            latencies.append(time.perf_counter() - started)
    for n in range(files):
        (corpus / f"watched-{n}.txt").unlink()
    desk.update()
    return {"debounce": watcher.debounce, "settle": watcher.settle, "files": files,
            "median_seconds": statistics.median(latencies), "max_seconds": max(latencies), "all": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--watch-files", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS / "updates.json")
    parser.add_argument("--reuse-build", action="store_true",
                        help="take the BBC vectors and the full-build figures from the previous run")
    args = parser.parse_args()
    embedder = load_embedder(Settings())
    embedder.encode(["warm up"])
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count()}
    if args.reuse_build and args.out.exists():
        previous = json.loads(args.out.read_text())
        result["full_build"] = previous["full_build"] | {"measured": previous["date"]}
        cache = cached_vectors(Desk.open(WORK / "bbc" / "index"))
    else:
        result["full_build"], cache = full_build(embedder)
    print(json.dumps(result["full_build"], indent=2), flush=True)
    for size in sorted(args.sizes):
        corpus, index, info = fill(size, embedder, cache)
        print(json.dumps(info, indent=2), flush=True)
        info.update(add_and_delete(corpus, index, embedder, args.rounds))
        if size == min(args.sizes):
            info["watch"] = watch_latency(corpus, index, embedder, args.watch_files)
        result[f"size_{size}"] = info
        print(json.dumps({k: v for k, v in info.items() if k != "stats"}, indent=2), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
