"""The three ways to run the model, side by side: torch fp32, ONNX fp32, ONNX int8.

    python bench/encoders.py                 # throughput and query latency (about 10 minutes)
    python bench/encoders.py --quality       # also retrieval quality: builds both sets' indexes with
                                             # each encoder (about 40 minutes the first time)
    python bench/encoders.py --quality --quality-of torch,onnx-int8   # only the two that decide
    python bench/encoders.py --openvino      # also OpenVINO fp32 and NNCF int8 on the same chunks
                                             # (needs `pip install openvino nncf`; not newsdesk deps)

Throughput: the same 2,048 BBC chunks (real chunk texts from the BBC bench index, about 250 word
pieces each) encoded by each encoder with both cores, batches of 32, longest first. Query
latency: the 296 RealTime QA questions, one at a time, one thread. Quality: R@1/R@5/MRR@10 of
hybrid retrieval (a gold answer string in the top passages) on SQuAD and RealTime QA with an index
built by each encoder; int8 is the default only if it stays within one point of torch fp32 at R@5.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import bbc, contains_answer, index_dir, newsqa, open_or_build, squad  # noqa: E402

from newsdesk import Desk  # noqa: E402
from newsdesk.config import Settings  # noqa: E402
from newsdesk.desk import load_encoder  # noqa: E402
from newsdesk.retrieve import Fusion, search  # noqa: E402
from newsdesk.store import Filters  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = ("torch", "onnx", "onnx-int8")


def chunk_texts(n: int) -> list[str]:
    desk = open_or_build(bbc())
    with desk.backend.generation() as view:
        return [r[0] for r in view.conn.execute("SELECT text FROM chunks ORDER BY id LIMIT ?", (n,))]


def throughput(kind: str, texts: list[str]) -> dict:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # the torch encoder uses torch's process-wide threads
    encoder = load_encoder(Settings().model_folder(), kind)
    encoder.encode(texts[:64])  # warm up
    started = time.perf_counter()
    encoder.encode(texts, batch_size=32)
    seconds = time.perf_counter() - started
    return {"chunks_per_s": len(texts) / seconds, "seconds": seconds}


def openvino_throughput(texts: list[str], calibration: list[str]) -> dict:
    """OpenVINO on the same exported ONNX graph newsdesk runs, fp32 and int8 (NNCF post-training
    quantization calibrated on other chunks): the alternative the issue names, measured, not shipped."""
    import nncf
    import openvino as ov

    from newsdesk.embed import onnx_files

    folder = Settings().model_folder()
    fp32 = onnx_files(folder, Settings().cache_dir, "onnx")
    encoder = load_encoder(folder, "onnx")

    def feeds(batch: list[str]) -> dict:
        return encoder.inputs(batch)[0]

    core = ov.Core()
    model = core.read_model(str(fp32))
    int8 = nncf.quantize(model, nncf.Dataset([feeds(calibration[i:i + 8]) for i in range(0, len(calibration), 8)]),
                         model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calibration) // 8)
    ordered = sorted(texts, key=len, reverse=True)
    out = {}
    for name, graph in (("openvino", model), ("openvino-int8", int8)):
        compiled = core.compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": os.cpu_count() or 1,
                                                     "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        request.infer(feeds(ordered[:32]))
        started = time.perf_counter()
        for at in range(0, len(ordered), 32):
            request.infer(feeds(ordered[at:at + 32]))
        out[name] = {"chunks_per_s": len(texts) / (time.perf_counter() - started)}
    return out


def query_latency(kind: str, questions: list[str]) -> dict:
    import torch

    torch.set_num_threads(1)
    encoder = load_encoder(Settings().model_folder(), kind)
    for q in questions[:20]:
        encoder.encode_query(q)
    ms = []
    for q in questions:
        t0 = time.perf_counter()
        encoder.encode_query(q)
        ms.append((time.perf_counter() - t0) * 1000)
    return {"query_p50_ms": float(np.percentile(ms, 50)), "query_p95_ms": float(np.percentile(ms, 95))}


def quality(kind: str) -> dict:
    out = {}
    for dataset in (squad(), newsqa()):
        desk = open_or_build(dataset, kind)
        ranks = []
        for q in dataset.questions:
            if not q.answers:
                continue
            vector = desk.encoder.encode_query(q.text)
            with desk.backend.generation() as view:
                passages = search(view, q.text, vector, 10, Filters(), Fusion())
            ranks.append(next((i for i, p in enumerate(passages, 1) if contains_answer(p.text, q.answers)), None))
        n = len(ranks)
        out[dataset.name] = {"r@1": sum(1 for r in ranks if r and r <= 1) / n, "r@5": sum(1 for r in ranks if r and r <= 5) / n,
                             "mrr@10": sum(1 / r for r in ranks if r) / n, "questions": n,
                             "build_s": desk.last_update.seconds if desk.last_update else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=2048)
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--quality-of", default=",".join(KINDS),
                        help="the encoders whose indexes --quality builds (default all; ONNX fp32 is never the "
                             "default, so `torch,onnx-int8` answers the question that decides)")
    parser.add_argument("--openvino", action="store_true", help="also OpenVINO fp32 and int8 throughput")
    args = parser.parse_args()
    texts = chunk_texts(args.chunks + 256)
    texts, calibration = texts[:args.chunks], texts[args.chunks:]
    questions = [q.text for q in newsqa().questions]
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "chunks": len(texts), "encoders": {}}
    for kind in KINDS:
        row = throughput(kind, texts) | query_latency(kind, questions)
        if args.quality and kind in args.quality_of.split(","):
            row["quality"] = quality(kind)
        results["encoders"][kind] = row
        print(kind, json.dumps(row), flush=True)
    if args.openvino:
        results["encoders"].update(openvino_throughput(texts, calibration))
        print("openvino", json.dumps({k: results["encoders"][k] for k in ("openvino", "openvino-int8")}), flush=True)
    base = results["encoders"]["torch"]["chunks_per_s"]
    for kind in results["encoders"]:
        results["encoders"][kind]["speed_vs_torch"] = results["encoders"][kind]["chunks_per_s"] / base
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "encoders.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
