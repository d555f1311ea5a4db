"""News answers on RealTime QA (issue 13): wire copies collapsed in retrieval, and followed topics.

    python bench/news.py              # prints the figures, writes bench/results/news.json

Retrieval with collapsing: for each answerable question, the top 5 passages of `Desk.search`
(copies collapsed) against the same search without collapsing, side by side in one run: R@5
(a gold answer string in a passage), gold-article R@5 (one of the question's articles among
the passages' articles), and the distinct articles, copy groups and story groups in the top 5.

Topic matching: each question is a followed topic; every article of the set is a "new article";
the articles that match are the question's own search results (`article_ids`, at most 5). That
label is noisy both ways (a search result can be off topic, another question's article can be on
it), so precision is a lower bound. The score is `Desk.topic_scores` (the best passage cosine);
the threshold is chosen for F1 on the tune half (July-September) and reported on the held-out
half (October-December), with the curve.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import contains_answer, newsqa, open_or_build, split_news  # noqa: E402

from newsdesk.retrieve import search  # noqa: E402
from newsdesk.store import Filters  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = [round(t, 2) for t in np.arange(0.2, 0.81, 0.025)]


def retrieval(desk, questions) -> dict:
    rows = {"collapsed": [], "plain": []}
    for q in questions:
        vector = desk.encoder.encode_query(q.text)
        collapsed = desk.search(q.text, k=5)
        with desk.backend.generation() as view:
            plain = search(view, q.text, vector, 5, Filters(), desk.fusion)
            for name, passages in (("collapsed", collapsed), ("plain", plain)):
                ids = [p.doc_id for p in passages]
                found = view.copy_groups(ids)
                copies = {d: found.get(d, d) for d in ids}
                members = view.group_members(ids)
                stories = {d: members[d][0][0] if d in members else d for d in ids}
                rows[name].append({
                    "hit": any(contains_answer(p.text, q.answers) for p in passages),
                    "article_hit": bool(set(ids) & set(q.doc_ids)),
                    "articles": len(set(ids)), "copy_groups": len(set(copies.values())),
                    "stories": len(set(stories.values())),
                })
    out = {}
    for name, rs in rows.items():
        n = max(len(rs), 1)
        out[name] = {"recall@5": sum(r["hit"] for r in rs) / n, "article_recall@5": sum(r["article_hit"] for r in rs) / n,
                     "distinct_articles": sum(r["articles"] for r in rs) / n,
                     "distinct_copy_groups": sum(r["copy_groups"] for r in rs) / n,
                     "distinct_stories": sum(r["stories"] for r in rs) / n}
    out["questions"] = len(questions)
    out["questions_with_copies_in_top5"] = sum(r["articles"] > r["copy_groups"] for r in rows["plain"])
    return out


def topic_scores(desk, questions, doc_ids) -> list[tuple[dict[str, float], set[str]]]:
    return [(desk.topic_scores(q.text, doc_ids), set(q.doc_ids)) for q in questions]


def curve(scored, thresholds=THRESHOLDS) -> list[dict]:
    out = []
    for t in thresholds:
        tp = fp = fn = 0
        for scores, gold in scored:
            matched = {d for d, s in scores.items() if s >= t}
            tp += len(matched & gold)
            fp += len(matched - gold)
            fn += len(gold - matched)
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 0.0
        out.append({"threshold": t, "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0})
    return out


def main() -> None:
    data = newsqa()
    desk = open_or_build(data)  # also fingerprints an index made before fingerprints were kept
    answerable = [q for q in data.questions if q.answers]
    started = time.perf_counter()
    result = {"retrieval": retrieval(desk, answerable)}
    result["retrieval"]["seconds"] = round(time.perf_counter() - started, 1)
    with desk.backend.generation() as view:
        doc_ids = [d for d, _, _ in view.fingerprints()]
        members = view.group_members(doc_ids)
    result["copy_groups"] = {"articles": len(doc_ids),
                             "in_a_copy_group": sum(1 for story, copies in members.values() if len(copies) > 1)}
    tune, held = split_news(data.questions)
    started = time.perf_counter()
    tune_scores = topic_scores(desk, tune, doc_ids)
    held_scores = topic_scores(desk, held, doc_ids)
    seconds = time.perf_counter() - started
    tune_curve, held_curve = curve(tune_scores), curve(held_scores)
    best = max(tune_curve, key=lambda row: (row["f1"], -row["threshold"]))
    chosen = next(row for row in held_curve if row["threshold"] == best["threshold"])
    result["topics"] = {"tune": {"topics": len(tune), "curve": tune_curve, "chosen": best},
                        "held_out": {"topics": len(held), "curve": held_curve, "at_chosen": chosen},
                        "ms_per_topic_over_all_articles": round(1000 * seconds / max(len(tune) + len(held), 1), 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "news.json").write_text(json.dumps(result, indent=2))
    r = result["retrieval"]
    for name in ("plain", "collapsed"):
        print(f"{name:>9}: R@5 {r[name]['recall@5']:.3f}  article R@5 {r[name]['article_recall@5']:.3f}  "
              f"distinct articles {r[name]['distinct_articles']:.2f}  copy groups {r[name]['distinct_copy_groups']:.2f}"
              f"  stories {r[name]['distinct_stories']:.2f}")
    print(f"questions with copies in the plain top 5: {r['questions_with_copies_in_top5']} of {r['questions']}")
    print(f"topics: threshold {best['threshold']} (tune F1 {best['f1']:.3f}, P {best['precision']:.3f}, "
          f"R {best['recall']:.3f}); held out P {chosen['precision']:.3f} R {chosen['recall']:.3f} F1 {chosen['f1']:.3f}")


if __name__ == "__main__":
    main()
