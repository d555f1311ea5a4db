"""How long `Desk.ask` takes with the shipped answer model against another model file, in one run.

    python bench/ask_latency.py --previous bench/work/answer_model-previous.json
    # git show <commit>:src/newsdesk/answer_model.json > bench/work/answer_model-previous.json

Warm, one question at a time, everything on one thread, on the RealTime QA bench index (1,324
articles, 16,427 chunks): the 296 questions and 200 SQuAD ones, each asked of both desks (the
same index opened twice) one after the other, so that the machine's noise falls on both alike,
each desk first for every other question. The query embedding is included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import index_dir, newsqa, squad  # noqa: E402

from newsdesk import Desk  # noqa: E402
from newsdesk.answer import AnswerSettings  # noqa: E402
from newsdesk.answer_model import AnswerModel  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--previous", type=Path, required=True, help="the answer model file to compare with")
    parser.add_argument("--encoder", default="onnx-int8")
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)  # the ONNX encoder embeds a question on one thread already
    news = newsqa()
    index = index_dir(news, args.encoder)
    previous = AnswerModel.from_dict(json.loads(args.previous.read_text()))
    desks = {"shipped": Desk.open(index), "previous": Desk.open(index, answering=AnswerSettings(model=previous))}
    questions = [q.text for q in news.questions] + [q.text for q in squad().questions[::30]][:200]
    for desk in desks.values():
        for q in questions[:20]:
            desk.ask(q)  # warm caches and the encoder
    times: dict[str, list[float]] = {name: [] for name in desks}
    for n, q in enumerate(questions):
        # Each desk goes first for half the questions: the second to ask finds the articles' text
        # and their caches warm, which made the second ~4 ms faster when the order was fixed.
        for name, desk in (list(desks.items()) if n % 2 == 0 else list(desks.items())[::-1]):
            started = time.perf_counter()
            desk.ask(q)
            times[name].append((time.perf_counter() - started) * 1000)
    chunks = desks["shipped"].backend.manifest()["chunks"]
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "chunks": chunks, "questions": len(questions)}
    for name, ms in times.items():
        ms.sort()
        result[name] = {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * len(ms))], 1)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
