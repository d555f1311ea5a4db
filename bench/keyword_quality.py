"""BM25 quality of the keyword index (tantivy) against the previous one (SQLite FTS5) and bm25s,
on the same chunks and the same stems, side by side in one run (issue 10: "keep BM25 quality").

    python bench/keyword_quality.py        # prints the table, writes bench/results/keyword_quality.json

For each answerable question of SQuAD and RealTime QA: recall@1/5/10 and MRR@10 (a gold answer
string in a top-10 chunk) of keyword search alone, and how much tantivy's top 10 overlaps
FTS5's. FTS5 is queried as the previous version did (an OR of the question's stems, bm25 with
title weight 0.5, body 1.0); "FTS5 smart" leaves out stems in more than 5% of chunks (the plan
bench/scale.py times); bm25s indexes title and body stems together. No model is loaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anchors import Bm25s, Fts5, stem_rows  # noqa: E402
from evalsets import contains_answer, index_dir, newsqa, squad  # noqa: E402

from newsdesk.embedded import EmbeddedBackend  # noqa: E402
from newsdesk.store import Filters  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEPTH = 10


def rankings(view, questions) -> dict[str, list[list[int]]]:
    rows = stem_rows(view.conn)
    fts, bm25 = Fts5(rows), Bm25s(rows)
    out: dict[str, list[list[int]]] = {"tantivy": [], "fts5": [], "fts5_smart": [], "bm25s": []}
    for q in questions:
        out["tantivy"].append([i for i, _ in view.keyword(q.text, DEPTH, Filters())])
        out["fts5"].append(fts.search(q.text, DEPTH))
        out["fts5_smart"].append(fts.search(q.text, DEPTH, smart=True))
        out["bm25s"].append(bm25.search(q.text, DEPTH))
    fts.close()
    return out


def metrics(view, questions, ranked: list[list[int]]) -> dict[str, float]:
    texts = dict(view.conn.execute("SELECT id, text FROM chunks"))
    firsts = []
    for q, ids in zip(questions, ranked):
        first = next((n for n, i in enumerate(ids, start=1) if contains_answer(texts[i], q.answers)), None)
        firsts.append(first)
    n = max(len(firsts), 1)
    return {f"recall@{k}": sum(1 for f in firsts if f and f <= k) / n for k in (1, 5, 10)} | {
        "mrr@10": sum(1 / f for f in firsts if f) / n}


def main() -> None:
    result = {}
    for data in (squad(), newsqa()):
        backend = EmbeddedBackend(index_dir(data))
        questions = [q for q in data.questions if q.answers]
        with backend.generation() as view:
            ranked = rankings(view, questions)
            result[data.name] = {name: metrics(view, questions, r) for name, r in ranked.items()}
            overlap = [len(set(a) & set(b)) / max(len(set(b)), 1) for a, b in zip(ranked["tantivy"], ranked["fts5"])]
            result[data.name]["tantivy_top10_overlap_with_fts5"] = sum(overlap) / max(len(overlap), 1)
            result[data.name]["questions"] = len(questions)
            result[data.name]["chunks"] = view.manifest["chunks"]
        backend.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "keyword_quality.json").write_text(json.dumps(result, indent=2))
    for name, r in result.items():
        print(f"{name} ({r['questions']} questions, {r['chunks']} chunks); tantivy top 10 shares "
              f"{r['tantivy_top10_overlap_with_fts5']:.1%} with FTS5")
        for engine in ("tantivy", "fts5", "fts5_smart", "bm25s"):
            m = r[engine]
            print(f"  {engine:>10}: R@1 {m['recall@1']:.3f}  R@5 {m['recall@5']:.3f}  R@10 {m['recall@10']:.3f}  "
                  f"MRR {m['mrr@10']:.3f}")


if __name__ == "__main__":
    main()
