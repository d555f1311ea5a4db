"""Print the tables of docs/benchmarks.md from the JSON files the benchmarks wrote.

    python bench/report.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def quality() -> None:
    data = load("quality.json")
    if not data:
        return
    print(f"Run: {data['date']}; fusion {data['fusion']}\n")
    print("| set | method | recall@1 | recall@5 | recall@10 | MRR@10 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, result in data["results"].items():
        for method in ("keyword", "dense", "hybrid", "llama-index"):
            if method in result["retrieval"]:
                r = result["retrieval"][method]
                label = {"keyword": "BM25 alone", "dense": "dense alone", "hybrid": "**newsdesk hybrid**",
                         "llama-index": "stock llama-index"}[method]
                print(f"| {name} | {label} | {pct(r['recall@1'])} | {pct(r['recall@5'])} | "
                      f"{pct(r['recall@10'])} | {r['mrr@10']:.3f} |")
    print("\n| set | answerable | answered | answer text contains gold | a cited quote contains gold |")
    print("| --- | --- | --- | --- | --- |")
    for name, result in data["results"].items():
        a = result["answers"]
        print(f"| {name} | {a['answerable']} | {pct(a['answered'])} | {pct(a['answer_contains_gold'])} | "
              f"{pct(a['cited_quote_contains_gold'])} |")
        for half, h in result.get("halves", {}).items():
            print(f"| {name} ({half} half) | {h['answerable']} | {pct(h['answered'])} | "
                  f"{pct(h['answer_contains_gold'])} | {pct(h['cited_quote_contains_gold'])} |")
    print("\n| set | unanswerable | abstained on them (recall) | abstentions that were right (precision) |")
    print("| --- | --- | --- | --- |")
    for name, result in data["results"].items():
        a = result["answers"]
        if "unanswerable" in a:
            print(f"| {name} | {a['unanswerable']} | {pct(a['abstain_recall'])} | {pct(a['abstain_precision'])} |")
    for name, result in data["results"].items():
        if "index" in result:
            i = result["index"]
            print(f"\n{name} index: {i['documents']} documents, {i['chunks']} chunks.")


def tuning() -> None:
    data = load("tuning.json")
    if not data:
        return
    print("\nFusion grid (BM25 weight 1.0), recall@5 / MRR@10:\n")
    print("| dense weight | rrf k | SQuAD calibration half | RealTime QA |")
    print("| --- | --- | --- | --- |")
    for row in data["fusion_table"]:
        cells = " | ".join(f"{pct(row[n]['recall@5'])} / {row[n]['mrr@10']:.3f}" for n in ("squad_cal", "newsqa"))
        print(f"| {row['dense']} (BM25 {row['keyword']}) | {row['rrf_k']} | {cells} |")
    print(f"\nChosen: {data['fusion']}; on the SQuAD test half: {data['fusion_test_half']}")
    print(f"Answerer chosen: {data['answering']}; SQuAD test half answer accuracy {pct(data['answer_test_half'])}")
    print("\nAbstention, answerable tuning questions vs off-topic questions "
          f"({data['off_topic_questions']} questions asked of the other corpus):\n")
    curve_table(data["abstention_curve_off_topic"], "off-topic abstained")
    print("\nAbstention on SQuAD 2.0 unanswerable questions (test half):\n")
    curve_table(data["abstention_curve_test"], "unanswerable abstained")


def curve_table(curve: list[dict], abstained: str) -> None:
    print(f"| threshold | answerable answered | {abstained} | abstentions that were right |")
    print("| --- | --- | --- | --- |")
    for row in curve[::2]:
        print(f"| {row['threshold']:.2f} | {pct(row['answerable_answered'])} | {pct(row['abstain_recall'])} | "
              f"{pct(row['abstain_precision'])} |")


def speed() -> None:
    data = load("speed.json")
    if not data:
        return
    i = data["indexing"]
    print(f"\nSpeed run: {data['date']}, {data['cores']} cores\n")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| full build, SQuAD ({i['documents']} docs, {i['chunks']} chunks) | {i['build_seconds']:.1f} s, "
          f"{i['build_chunks_per_s']:.1f} chunks/s |")
    print(f"| raw `SentenceTransformer.encode`, same chunks | {i['encode_seconds']:.1f} s, "
          f"{i['encode_chunks_per_s']:.1f} chunks/s |")
    print(f"| ratio build / raw encode | {i['ratio']:.2f} |")
    for name, v in data["latency_ms"].items():
        print(f"| {name} latency p50 / p95 (n={v['n']}) | {v['p50']:.1f} ms / {v['p95']:.1f} ms |")


def updates() -> None:
    data = load("updates.json")
    if not data:
        return
    f = data["full_build"]
    print(f"\nUpdates run: {data['date']}\n")
    print(f"Full build of the BBC corpus ({f['documents']} docs, {f['chunks']} chunks): {f['build_seconds']:.0f} s "
          f"({f['build_chunks_per_s']:.1f} chunks/s); raw encode {f['encode_seconds']:.0f} s "
          f"({f['encode_chunks_per_s']:.1f} chunks/s); ratio {f['ratio']:.2f}.\n")
    print("| index | add one article, total (median / max) | of which not encoding the article (median / max) | "
          "delete one article (median / max) | first search after an update | fill peak RSS |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key, v in data.items():
        if key.startswith("size_"):
            print(f"| {v['chunks']} chunks, {v['documents']} docs | {v['add_seconds']['median']:.2f} s / "
                  f"{v['add_seconds']['max']:.2f} s ({v['chunks_per_added_article']:.0f} chunks) | "
                  f"{v['add_seconds_without_encoding']['median']:.2f} s / {v['add_seconds_without_encoding']['max']:.2f} s | "
                  f"{v['delete_seconds']['median']:.2f} s / {v['delete_seconds']['max']:.2f} s | "
                  f"{1000 * v['first_search_after_update_seconds']:.0f} ms | {v['peak_rss_mb']:.0f} MB |")
            if "watch" in v:
                w = v["watch"]
                print(f"\nWatch mode on the {v['chunks']}-chunk index (debounce {w['debounce']} s, settle "
                      f"{w['settle']} s): file written -> answerable through another open Desk, median "
                      f"{w['median_seconds']:.2f} s, max {w['max_seconds']:.2f} s over {w['files']} files.")


if __name__ == "__main__":
    quality()
    tuning()
    speed()
    updates()
