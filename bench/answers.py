"""Answer quality: the previous answerer and the learned one side by side, in one run.

    python bench/answers.py                  # both sets; writes bench/results/answers.json
    python bench/answers.py --sets squad

For every question the same evidence is gathered once (the 10 best passages of hybrid
retrieval, as `Desk.ask` does) and both answerers answer from it: the previous version's
(bench/baseline_answerer.py, which reads the top 5) and the shipped learned model. Reported per
split (SQuAD calibration/test halves; RealTime QA July-September "tune" and October-December
"held out"; the learned model was trained on the first of each only):

- answer_contains_gold: the answer text holds a gold answer (an abstention counts as a miss);
- first_contains_gold: the first cited sentence holds it;
- r@1: the passage of the first cited sentence holds it (the learned answer reranks passages by
  their best sentence), next to r@1 of retrieval order;
- per question type (when / how many / who / where / which / other);
- on SQuAD's unanswerable questions: how many are abstained on, and the curve over thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import baseline_answerer  # noqa: E402
import numpy as np  # noqa: E402
from evalsets import Dataset, Question, contains_answer, newsqa, open_or_build, split_news, split_squad, squad  # noqa: E402

from newsdesk.answer import AnswerSettings, Evidence, answer, score  # noqa: E402
from newsdesk.answer_model import AnswerModel, shipped_model  # noqa: E402
from newsdesk.desk import gather_evidence  # noqa: E402
from newsdesk.features import Question as FeatureQuestion, candidates_and_features  # noqa: E402
from newsdesk.qtypes import question_kind  # noqa: E402
from newsdesk.retrieve import Fusion  # noqa: E402
from newsdesk.store import Filters  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEPTH = 10


@dataclass
class Item:
    question: Question
    split: str
    evidence: Evidence


def collect(dataset: Dataset, encoder: str = "onnx-int8") -> list[Item]:
    """The evidence for every question of `dataset`, labelled with its split."""
    desk = open_or_build(dataset, encoder)
    if dataset.name == "squad":
        first, second = split_squad(dataset.questions)
        names = ("calibration", "test")
    else:
        first, second = split_news(dataset.questions)
        names = ("tune", "held_out")
    split_of = {id(q): names[0] for q in first} | {id(q): names[1] for q in second}
    items = []
    started = time.perf_counter()
    for n, q in enumerate(dataset.questions):
        vector = desk.encoder.encode_query(q.text)
        with desk.backend.generation() as view:
            evidence = gather_evidence(view, q.text, vector, DEPTH, Filters(), Fusion())
        items.append(Item(q, split_of[id(q)], evidence))
        if n % 1000 == 0:
            print(f"  [{dataset.name}] {n}/{len(dataset.questions)} questions", file=sys.stderr)
    print(f"  [{dataset.name}] evidence for {len(items)} questions in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    return items


def features(item: Item) -> tuple[np.ndarray, np.ndarray]:
    """(feature rows, labels: the sentence holds a gold answer) of every candidate sentence."""
    _, x, y = labelled_sentences(item)
    return x, y


def labelled_sentences(item: Item) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every candidate sentence's text, feature row and label (it holds a gold answer)."""
    e = item.evidence
    question = FeatureQuestion.of(e.question, e.vector, e.idf)
    candidates, x = candidates_and_features(question, e.passages, e.docs, e.sentence_vectors)
    texts = [e.docs[c.passage.doc_id].text[c.start:c.end] for c in candidates]
    y = np.array([contains_answer(t, item.question.answers) for t in texts], dtype=bool) if item.question.answers \
        else np.zeros(len(candidates), bool)
    return texts, x, y


# -- evaluation -------------------------------------------------------------------------------
def evaluate(items: list[Item], model: AnswerModel | None = None, keep_ratio: float = AnswerSettings.keep_ratio) -> dict:
    settings = AnswerSettings(model=model, keep_ratio=keep_ratio)
    threshold = (model or shipped_model()).threshold
    rows = []
    for item in items:
        q = item.question
        base = baseline_answerer.answer(item.evidence)
        new = answer(item.evidence, settings)
        ranked = score(item.evidence, settings)
        confidence = new.confidence
        top_passage = item.evidence.passages[0].text if item.evidence.passages else ""
        rows.append({
            "split": item.split, "kind": question_kind(q.text).name.lower(), "answerable": bool(q.answers),
            "confidence": confidence, "baseline_evidence": base.evidence,
            "base_answered": not base.abstained,
            "base_contains": (not base.abstained) and contains_answer(base.text, q.answers),
            "base_first": (not base.abstained) and bool(base.quotes) and contains_answer(base.quotes[0], q.answers),
            "base_sentences": len(base.quotes),
            "new_answered": not new.abstained,
            "new_contains": (not new.abstained) and contains_answer(new.text, q.answers),
            "new_first": (not new.abstained) and contains_answer(new.citations[0].quote, q.answers),
            "new_sentences": len(new.citations),
            "retrieval_r1": bool(q.answers) and contains_answer(top_passage, q.answers),
            "rerank_r1": bool(q.answers) and bool(ranked) and contains_answer(ranked[0].passage.text, q.answers),
            "any_r5": bool(q.answers) and any(contains_answer(p.text, q.answers) for p in item.evidence.passages[:5]),
        })
    return summarize(rows, threshold)


def summarize(rows: list[dict], threshold: float) -> dict:
    out: dict = {}
    splits = sorted({r["split"] for r in rows}) + ["all"]
    for split in splits:
        chosen = [r for r in rows if split == "all" or r["split"] == split]
        answerable = [r for r in chosen if r["answerable"]]
        unanswerable = [r for r in chosen if not r["answerable"]]
        block = {"answerable": len(answerable), "unanswerable": len(unanswerable)}
        if answerable:
            for who in ("base", "new"):
                block[who] = {
                    "answered": _mean(r[f"{who}_answered"] for r in answerable),
                    "answer_contains_gold": _mean(r[f"{who}_contains"] for r in answerable),
                    "first_contains_gold": _mean(r[f"{who}_first"] for r in answerable),
                    "sentences_per_answer": _mean(r[f"{who}_sentences"] for r in answerable if r[f"{who}_answered"]),
                }
            block["retrieval_r1"] = _mean(r["retrieval_r1"] for r in answerable)
            block["rerank_r1"] = _mean(r["rerank_r1"] for r in answerable)
            block["retrieval_r5"] = _mean(r["any_r5"] for r in answerable)
            kinds: dict[str, dict] = {}
            for kind in sorted({r["kind"] for r in answerable}):
                of_kind = [r for r in answerable if r["kind"] == kind]
                kinds[kind] = {"n": len(of_kind), "base": _mean(r["base_contains"] for r in of_kind),
                               "new": _mean(r["new_contains"] for r in of_kind),
                               "base_first": _mean(r["base_first"] for r in of_kind),
                               "new_first": _mean(r["new_first"] for r in of_kind)}
            block["by_kind"] = kinds
        if unanswerable:
            block["base_abstained_unanswerable"] = _mean(not r["base_answered"] for r in unanswerable)
            block["new_abstained_unanswerable"] = _mean(not r["new_answered"] for r in unanswerable)
            if answerable:
                block["curve"] = curve(chosen)
        out[split] = block
    out["threshold"] = threshold
    return out


def curve(rows: list[dict]) -> list[dict]:
    """Answerable answered vs unanswerable abstained, for thresholds on the learned confidence."""
    points = []
    answerable = [r["confidence"] for r in rows if r["answerable"]]
    unanswerable = [r["confidence"] for r in rows if not r["answerable"]]
    for t in [i / 100 for i in range(2, 96, 3)]:
        points.append({"threshold": t, "answerable_answered": _mean(c >= t for c in answerable),
                       "unanswerable_abstained": _mean(c < t for c in unanswerable)})
    return points


def asked_of(questions: list[Question], other: Dataset, encoder: str = "onnx-int8") -> list[Item]:
    """The evidence `other`'s corpus gives for questions it cannot answer (they are about another corpus)."""
    desk = open_or_build(other, encoder)
    items = []
    for q in questions:
        vector = desk.encoder.encode_query(q.text)
        with desk.backend.generation() as view:
            items.append(Item(Question(q.id, q.text, [], q.group), "off_topic",
                              gather_evidence(view, q.text, vector, DEPTH, Filters(), Fusion())))
    return items


def off_topic(questions: list[Question], other: Dataset, encoder: str, model: AnswerModel | None) -> dict:
    """Questions asked of the other corpus, which cannot answer them: how many are turned away."""
    settings = AnswerSettings(model=model)
    base = new = 0
    for item in asked_of(questions, other, encoder):
        base += baseline_answerer.answer(item.evidence).abstained
        new += answer(item.evidence, settings).abstained
    n = max(len(questions), 1)
    return {"questions": len(questions), "corpus": other.name, "base_abstained": base / n, "new_abstained": new / n}


def _mean(values) -> float:
    values = list(values)
    return float(sum(values)) / len(values) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["squad", "newsqa"], choices=["squad", "newsqa"])
    parser.add_argument("--encoder", default="onnx-int8", choices=["onnx-int8", "onnx", "torch"])
    parser.add_argument("--model", type=Path, help="an answer model file instead of the shipped one")
    parser.add_argument("--keep-ratio", type=float, default=AnswerSettings.keep_ratio,
                        help="a further sentence must be this likely relative to the best (and add a fact)")
    parser.add_argument("--out", type=Path, default=RESULTS / "answers.json")
    args = parser.parse_args()
    model = AnswerModel.from_dict(json.loads(args.model.read_text())) if args.model else None
    results = {}
    for name in args.sets:
        dataset = squad() if name == "squad" else newsqa()
        results[name] = evaluate(collect(dataset, args.encoder), model, args.keep_ratio)
        print(json.dumps({k: v for k, v in results[name].items()}, indent=1, default=str)[:6000])
    if set(args.sets) == {"squad", "newsqa"}:
        s, n = squad(), newsqa()
        results["off_topic"] = {
            "news_questions_on_squad": off_topic([q for q in split_news(n.questions)[1]], s, args.encoder, model),
            "squad_questions_on_news": off_topic(split_squad(s.questions)[1][::10], n, args.encoder, model),
        }
        print(json.dumps(results["off_topic"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"date": time.strftime("%Y-%m-%d %H:%M"), "encoder": args.encoder, "keep_ratio": args.keep_ratio,
               "model": (model or shipped_model()).about, "results": results}
    args.out.write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
