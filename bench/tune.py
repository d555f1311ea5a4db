"""Choose the fusion weights, the answerer's feature weights and the abstention threshold by measurement.

    python bench/tune.py            # needs the indexes bench/evaluate.py builds (it builds them if missing)

Everything is chosen on the SQuAD "calibration" half (alternate article titles) plus the
RealTime QA news questions, and reported on the SQuAD "test" half too, so the figures in
docs/benchmarks.md are not only fitted ones. Rankings are computed once per question (depth 50)
and fused offline, so the grid costs no extra retrieval.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import WORK, contains_answer, newsqa, squad  # noqa: E402
from evaluate import RESULTS, abstention_curve  # noqa: E402

from newsdesk import Desk  # noqa: E402
from newsdesk.answer import AnswerSettings, answer  # noqa: E402
from newsdesk.desk import gather_evidence  # noqa: E402
from newsdesk.retrieve import Fusion, dense_ranking, fuse, keyword_ranking  # noqa: E402
from newsdesk.store import Filters  # noqa: E402

DEPTH = 50


def rankings(desk: Desk, questions):
    """Per question: dense and keyword rankings (chunk ids) and the chunk ids holding an answer."""
    out = []
    with desk.reader.generation() as gen:
        texts = dict(gen.conn.execute("SELECT id, text FROM chunks"))
        for q in questions:
            vector = desk.encoder.encode_query(q.text)
            dense = dense_ranking(gen, vector, DEPTH)
            keyword = keyword_ranking(gen, q.text, DEPTH)
            candidates = {i for i, _ in dense} | {i for i, _ in keyword}
            hits = {i for i in candidates if contains_answer(texts[i], q.answers)}
            out.append((dense, keyword, hits))
    return out


def recall(rows, fusion: Fusion) -> dict[str, float]:
    r1 = r5 = r10 = mrr = 0.0
    for dense, keyword, hits in rows:
        ranked = [i for i, _ in fuse(dense if fusion.dense else [], keyword if fusion.keyword else [], fusion)][:10]
        rank = next((n for n, i in enumerate(ranked, 1) if i in hits), None)
        if rank:
            r1 += rank <= 1
            r5 += rank <= 5
            r10 += 1
            mrr += 1 / rank
    n = len(rows)
    return {"recall@1": r1 / n, "recall@5": r5 / n, "recall@10": r10 / n, "mrr@10": mrr / n}


def tune_fusion(sets: dict[str, list]) -> tuple[Fusion, list[dict]]:
    table = []
    for dense_w, rrf_k in itertools.product([0.0, 0.3, 0.5, 0.7, 1.0, 1.5], [5, 10, 20, 60]):
        fusion = Fusion(dense=dense_w, keyword=1.0, rrf_k=rrf_k)
        row = {"dense": dense_w, "keyword": 1.0, "rrf_k": rrf_k}
        for name, rows in sets.items():
            row[name] = recall(rows, fusion)
        table.append(row)
    table.append({"dense": 1.0, "keyword": 0.0, "rrf_k": 60,
                  **{name: recall(rows, Fusion(1.0, 0.0, 60)) for name, rows in sets.items()}})
    # Chosen: the best mean recall@5 over the tuning sets, ties broken by mean MRR.
    best = max(table, key=lambda r: (round(sum(r[n]["recall@5"] for n in sets) / len(sets), 4),
                                     sum(r[n]["mrr@10"] for n in sets)))
    return Fusion(dense=best["dense"], keyword=best["keyword"], rrf_k=best["rrf_k"]), table


def answer_accuracy(evidence, settings: AnswerSettings) -> float:
    hits = 0
    for q, ev in evidence:
        a = answer(q.text, *ev, settings)
        hits += (not a.abstained) and contains_answer(a.text, q.answers)
    return hits / len(evidence)


def tune_answerer(sets: dict[str, list]) -> tuple[AnswerSettings, list[dict]]:
    table = []
    grid = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    for ws, wp in itertools.product(grid, grid):
        wd = round(1 - ws - wp, 2)
        if wd < 0:
            continue
        settings = AnswerSettings(threshold=-1, w_sentence=ws, w_passage=wp, w_dense=wd)
        row = {"w_sentence": ws, "w_passage": wp, "w_dense": wd}
        for name, evidence in sets.items():
            row[name] = answer_accuracy([e for e in evidence if e[0].answers], settings)
        table.append(row)
    best = max(table, key=lambda r: sum(r[n] for n in sets) / len(sets))
    return AnswerSettings(w_sentence=best["w_sentence"], w_passage=best["w_passage"], w_dense=best["w_dense"]), table


def gather(desk: Desk, questions, fusion: Fusion):
    out = []
    with desk.reader.generation() as gen:
        for q in questions:
            vector = desk.encoder.encode_query(q.text)
            out.append((q, gather_evidence(gen, q.text, vector, 5, Filters(), fusion)))
    return out


def main() -> None:
    sq, nq = squad(), newsqa()
    squad_desk = Desk.build(sq.corpus, WORK / "squad" / "index", progress=True)
    news_desk = Desk.build(nq.corpus, WORK / "newsqa" / "index", progress=True)
    groups = sorted({q.group for q in sq.questions})
    calibration_titles = set(groups[::2])
    sq_cal = [q for q in sq.questions if q.group in calibration_titles]
    sq_test = [q for q in sq.questions if q.group not in calibration_titles]
    nq_ans = [q for q in nq.questions if q.answers]

    print("rankings...", file=sys.stderr)
    rank_sets = {"squad_cal": rankings(squad_desk, [q for q in sq_cal if q.answers]),
                 "newsqa": rankings(news_desk, nq_ans)}
    fusion, fusion_table = tune_fusion(rank_sets)
    test_rows = rankings(squad_desk, [q for q in sq_test if q.answers])
    print("fusion chosen:", fusion, "test half:", recall(test_rows, fusion), file=sys.stderr)

    print("answer evidence...", file=sys.stderr)
    ev_sets = {"squad_cal": gather(squad_desk, sq_cal, fusion), "newsqa": gather(news_desk, nq_ans, fusion)}
    settings, answer_table = tune_answerer(ev_sets)
    ev_test = gather(squad_desk, sq_test, fusion)
    print("answerer chosen:", settings, file=sys.stderr)

    never = replace(settings, threshold=-1.0)

    def scores(evidence, answerable=None):
        return [(answer(q.text, *ev, never).evidence, bool(q.answers) if answerable is None else answerable)
                for q, ev in evidence]

    def curve(evidence):
        return abstention_curve(scores(evidence))

    # Off-topic questions: news quiz questions asked of the Wikipedia paragraphs, and SQuAD
    # questions asked of the news articles. The corpus cannot answer them.
    off_topic = scores(gather(squad_desk, nq.questions, fusion), False) + scores(
        gather(news_desk, [q for q in sq.questions if q.answers][::10], fusion), False)
    on_topic = [s for s in scores(ev_sets["squad_cal"]) if s[1]] + scores(ev_sets["newsqa"])
    # The threshold: the highest that still answers at least 97% of the answerable tuning questions.
    on_scores = sorted(s for s, _ in on_topic)
    threshold = round(on_scores[int(0.03 * len(on_scores))] - 0.005, 3)
    settings = replace(settings, threshold=threshold)
    off_curve = abstention_curve(on_topic + off_topic)

    result = {
        "fusion": fusion.__dict__, "fusion_table": fusion_table,
        "fusion_test_half": recall(test_rows, fusion),
        "answering": settings.__dict__,
        "answer_table_top": sorted(answer_table, key=lambda r: -(r["squad_cal"] + r["newsqa"]))[:15],
        "answer_test_half": answer_accuracy([e for e in ev_test if e[0].answers], settings),
        "abstention_curve_calibration": curve(ev_sets["squad_cal"]),
        "abstention_curve_test": curve(ev_test),
        "off_topic_questions": len(off_topic),
        "abstention_curve_off_topic": off_curve,
        "off_topic_abstained_at_threshold": sum(s < threshold for s, _ in off_topic) / len(off_topic),
        "squad_test_at_threshold": {
            "answerable_answered": sum(s >= threshold for s, a in scores(ev_test) if a) / sum(1 for q, _ in ev_test if q.answers),
            "unanswerable_abstained": sum(s < threshold for s, a in scores(ev_test) if not a) / sum(1 for q, _ in ev_test if not q.answers),
        },
    }
    (RESULTS / "tuning.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if "table" not in k and "curve" not in k}, indent=2))
    for row in result["abstention_curve_off_topic"]:
        print(row)


if __name__ == "__main__":
    main()
