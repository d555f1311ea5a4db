"""Retrieval and answer quality on SQuAD 2.0 (dev subset) and RealTime QA news questions.

    python bench/evaluate.py                 # both sets, all methods, writes bench/results/quality.json
    python bench/evaluate.py --sets squad --no-stock

For each answerable question: answer recall@1/5/10 and MRR@10 (a gold answer string appears in
a retrieved passage) for BM25 alone, dense alone, newsdesk hybrid and the stock llama-index
pipeline (VectorStoreIndex over the same chunks, same model, its default retriever); then the
share of answers whose text, and whose cited quotes, contain a gold answer. On SQuAD's
unanswerable questions: abstention precision/recall over a threshold sweep. SQuAD's 16 articles
are split in two halves (alternate titles): thresholds and weights are chosen on the
"calibration" half and reported on the "test" half too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import WORK, Dataset, Question, contains_answer, newsqa, squad  # noqa: E402

from newsdesk import Desk  # noqa: E402
from newsdesk.answer import AnswerSettings, answer  # noqa: E402
from newsdesk.desk import gather_evidence  # noqa: E402
from newsdesk.retrieve import Fusion, search  # noqa: E402
from newsdesk.store import Filters  # noqa: E402

MODES = ("keyword", "dense", "hybrid")
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Record:
    question: Question
    ranks: dict[str, int | None]  # method -> 1-based rank of the first passage holding an answer
    evidence: tuple  # (passages, texts, idf) for the answerer


def first_hit(texts: list[str], answers: list[str]) -> int | None:
    for i, text in enumerate(texts, start=1):
        if contains_answer(text, answers):
            return i
    return None


def collect(desk: Desk, questions: list[Question], fusion: Fusion, stock=None) -> list[Record]:
    records = []
    for n, q in enumerate(questions):
        vector = desk.encoder.encode_query(q.text)
        ranks: dict[str, int | None] = {}
        with desk.reader.generation() as gen:
            if q.answers:
                for mode in MODES:
                    passages = search(gen, q.text, vector, 10, Filters(), fusion, mode)
                    ranks[mode] = first_hit([p.text for p in passages], q.answers)
            evidence = gather_evidence(gen, q.text, vector, 5, Filters(), fusion)
        if stock is not None and q.answers:
            ranks["llama-index"] = first_hit([n.node.get_content() for n in stock.retrieve(q.text)], q.answers)
        records.append(Record(q, ranks, evidence))
        if n % 500 == 0:
            print(f"  {n}/{len(questions)} questions", file=sys.stderr)
    return records


def retrieval_metrics(records: list[Record]) -> dict[str, dict[str, float]]:
    answerable = [r for r in records if r.question.answers]
    out = {}
    for method in answerable[0].ranks if answerable else []:
        ranks = [r.ranks[method] for r in answerable]
        out[method] = {
            "recall@1": sum(1 for x in ranks if x and x <= 1) / len(ranks),
            "recall@5": sum(1 for x in ranks if x and x <= 5) / len(ranks),
            "recall@10": sum(1 for x in ranks if x and x <= 10) / len(ranks),
            "mrr@10": sum(1 / x for x in ranks if x) / len(ranks),
        }
    return out


def answer_metrics(records: list[Record], settings: AnswerSettings) -> dict[str, float]:
    answerable = [r for r in records if r.question.answers]
    unanswerable = [r for r in records if not r.question.answers]
    text_hits = quote_hits = answered = 0
    for r in answerable:
        a = answer(r.question.text, *r.evidence, settings)
        if a.abstained:
            continue
        answered += 1
        text_hits += contains_answer(a.text, r.question.answers)
        quote_hits += any(contains_answer(c.quote, r.question.answers) for c in a.citations)
    out = {
        "answerable": len(answerable),
        "answered": answered / max(len(answerable), 1),
        "answer_contains_gold": text_hits / max(len(answerable), 1),
        "cited_quote_contains_gold": quote_hits / max(len(answerable), 1),
    }
    if unanswerable:
        abstained = sum(answer(r.question.text, *r.evidence, settings).abstained for r in unanswerable)
        wrong = len(answerable) - answered
        out.update({
            "unanswerable": len(unanswerable),
            "abstain_precision": abstained / max(abstained + wrong, 1),
            "abstain_recall": abstained / len(unanswerable),
        })
    return out


def evidence_scores(records: list[Record], settings: AnswerSettings) -> list[tuple[float, bool]]:
    """(best sentence score, answerable) per question: abstention is score < threshold."""
    never = replace(settings, threshold=-1.0)
    return [(answer(r.question.text, *r.evidence, never).evidence, bool(r.question.answers)) for r in records]


def abstention_curve(scores: list[tuple[float, bool]]) -> list[dict[str, float]]:
    curve = []
    unans = sum(1 for _, a in scores if not a)
    ans = len(scores) - unans
    for i in range(10, 81, 2):
        t = i / 100
        abstain_unans = sum(1 for s, a in scores if s < t and not a)
        abstain_ans = sum(1 for s, a in scores if s < t and a)
        total = abstain_unans + abstain_ans
        curve.append({
            "threshold": t,
            "abstain_precision": abstain_unans / total if total else 1.0,
            "abstain_recall": abstain_unans / unans if unans else 0.0,
            "answerable_answered": 1 - abstain_ans / ans if ans else 0.0,
        })
    return curve


def build_stock(desk: Desk, name: str):
    """The pipeline a llama-index user would write: VectorStoreIndex + HuggingFaceEmbedding, same chunks."""
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    embed = HuggingFaceEmbedding(model_name=str(desk.settings.model_path()), device="cpu")
    LlamaSettings.embed_model = embed
    folder = WORK / name / "stock-llama-index"
    fingerprint = desk.stats().fingerprint
    marker = folder / "fingerprint"
    if marker.exists() and marker.read_text() == fingerprint:
        index = load_index_from_storage(StorageContext.from_defaults(persist_dir=str(folder)), embed_model=embed)
        return index.as_retriever(similarity_top_k=10), None
    with desk.reader.generation() as gen:
        nodes = [TextNode(text=text, id_=str(i)) for i, text in gen.conn.execute("SELECT id, text FROM chunks")]
    started = time.perf_counter()
    index = VectorStoreIndex(nodes, embed_model=embed, show_progress=True)
    seconds = time.perf_counter() - started
    index.storage_context.persist(persist_dir=str(folder))
    marker.write_text(fingerprint)
    return index.as_retriever(similarity_top_k=10), {"chunks": len(nodes), "seconds": seconds}


def split_halves(records: list[Record]) -> tuple[list[Record], list[Record]]:
    groups = sorted({r.question.group for r in records})
    calibration = set(groups[::2])
    return ([r for r in records if r.question.group in calibration],
            [r for r in records if r.question.group not in calibration])


def run(dataset: Dataset, *, stock: bool, fusion: Fusion, settings: AnswerSettings) -> dict:
    print(f"[{dataset.name}] indexing {dataset.corpus}", file=sys.stderr)
    desk = Desk.build(dataset.corpus, WORK / dataset.name / "index", progress=True, fusion=fusion)
    report = desk.last_update
    result: dict = {"dataset": dataset.name, "index": desk.stats() | {"build_seconds": report.seconds}}
    retriever = None
    if stock:
        retriever, info = build_stock(desk, dataset.name)
        result["stock_build"] = info
    print(f"[{dataset.name}] {len(dataset.questions)} questions", file=sys.stderr)
    started = time.perf_counter()
    records = collect(desk, dataset.questions, fusion, retriever)
    result["collect_seconds"] = time.perf_counter() - started
    result["retrieval"] = retrieval_metrics(records)
    result["answers"] = answer_metrics(records, settings)
    if any(not r.question.answers for r in records) and dataset.name == "squad":
        calibration, test = split_halves(records)
        result["abstention_curve"] = {
            "all": abstention_curve(evidence_scores(records, settings)),
            "calibration": abstention_curve(evidence_scores(calibration, settings)),
            "test": abstention_curve(evidence_scores(test, settings)),
        }
        result["halves"] = {"calibration": answer_metrics(calibration, settings),
                            "test": answer_metrics(test, settings)}
    result["_records"] = records
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["squad", "newsqa"], choices=["squad", "newsqa"])
    parser.add_argument("--no-stock", action="store_true", help="skip the stock llama-index baseline")
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    args = parser.parse_args()
    fusion, settings = Fusion(), AnswerSettings()
    results = {}
    for name in args.sets:
        dataset = squad() if name == "squad" else newsqa()
        result = run(dataset, stock=not args.no_stock, fusion=fusion, settings=settings)
        result.pop("_records")
        results[name] = result
        print(json.dumps({k: v for k, v in result.items() if k != "abstention_curve"}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"date": time.strftime("%Y-%m-%d %H:%M"), "fusion": asdict(fusion), "answering": asdict(settings),
               "results": results}
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
