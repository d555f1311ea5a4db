"""Would a cross-encoder fine-tuned from the bundled MiniLM pick answer sentences better? (issue 9)

    python bench/cross_encoder.py        # about 55 minutes on 2 cores; nothing else should run

No cross-encoder or reader with bundled weights installs here, so the one way to get one is to
fine-tune the bundled all-MiniLM-L6-v2 (a bi-encoder) as a cross-encoder on our own training
questions. This measures, on the training questions only (the held-out halves stay unseen):

- two-fold cross-validation, SQuAD's calibration half split by article and the RealTime QA tune
  months alternately; per fold the shipped kind of answer model (`train_answerer.fit`, regression
  plus trees) and a cross-encoder are trained on the other fold;
- the cross-encoder sees (question, sentence) pairs: each training question's 8 sentences the
  answer model ranks first (4 for an unanswerable question) and its answer sentences; binary
  cross-entropy, 2 epochs, learning rate 3e-5;
- top-1 among the answer model's first 10 sentences: the model alone, the cross-encoder alone,
  and the model's log-odds plus w times the cross-encoder's logit;
- abstention: SQuAD's unanswerable questions turned away while 95% of answerable ones are
  answered, thresholding each score's best sentence;
- the cost: the trained cross-encoder on 5 and 10 pairs in torch, and the bundled encoder's int8
  ONNX export (the same network but for a 384-to-1 head) on the same pairs.

Writes bench/results/cross_encoder.json.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from answers import labelled_sentences  # noqa: E402
from train_answerer import fit, training_items  # noqa: E402

from newsdesk.config import Settings, bundled_model_dir  # noqa: E402
from newsdesk.embed import onnx_files  # noqa: E402
from newsdesk.features import FEATURES  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TOP_TRAIN, TOP_UNANSWERABLE, TOP_TEST = 8, 4, 10
EPOCHS, BATCH, RATE, MAX_TOKENS = 2, 16, 3e-5, 96
WEIGHTS = (0.25, 0.5, 1.0, 2.0)


def candidates() -> dict[str, list[dict]]:
    """Per training question: its candidate sentences, their features and labels, and its fold."""
    items = training_items("onnx-int8")
    out: dict[str, list[dict]] = {}
    for name in ("squad", "newsqa"):
        rows = []
        for item in items[name]:
            texts, x, y = labelled_sentences(item)
            if texts:
                rows.append({"question": item.evidence.question, "group": item.question.group, "x": x,
                             "texts": texts, "y": y, "answerable": bool(item.question.answers)})
        if name == "squad":  # by article, so that no paragraph is on both sides
            groups = sorted({r["group"] for r in rows})
            fold_of = {g: n % 2 for n, g in enumerate(groups)}
            for r in rows:
                r["fold"] = fold_of[r["group"]]
        else:
            for n, r in enumerate(rows):
                r["fold"] = n % 2
        out[name] = rows
    return out


def train(pairs: list[tuple[str, str, bool]], tokenizer, folder: Path):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=RATE, weight_decay=0.01)
    steps = math.ceil(len(pairs) / BATCH) * EPOCHS
    warm = int(0.1 * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, warm)) * max(0.0, (steps - s) / steps))
    loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0))
    started, step = time.perf_counter(), 0
    while step < steps:
        random.shuffle(pairs)
        for at in range(0, len(pairs), BATCH):
            if step >= steps:
                break
            batch = pairs[at:at + BATCH]
            logits = model(**encode(tokenizer, batch)).logits.squeeze(-1)
            loss = loss_of(logits, torch.tensor([float(label) for *_, label in batch]))
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 200 == 0:
                print(f"  step {step}/{steps}, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    model.eval()
    return model


def encode(tokenizer, pairs):
    return tokenizer([q for q, *_ in pairs], [s for _, s, *_ in pairs], truncation=True, max_length=MAX_TOKENS,
                     padding=True, return_tensors="pt")


@torch.no_grad()
def predict(model, tokenizer, pairs) -> np.ndarray:
    return np.concatenate([model(**encode(tokenizer, pairs[at:at + 64])).logits.squeeze(-1).numpy()
                           for at in range(0, len(pairs), 64)])


def log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def latency(model, tokenizer, pairs) -> dict[str, float]:
    """ms per call, p50 of 30, for the first 5 and 10 pairs; torch and the int8 ONNX encoder."""
    import onnxruntime as ort

    out = {}
    settings = Settings()
    onnx_file = onnx_files(settings.model_folder(), settings.cache_dir, "onnx-int8")
    for n in (5, 10):
        batch = pairs[:n]
        for threads in (1, 2):
            torch.set_num_threads(threads)
            inputs = encode(tokenizer, batch)
            out[f"torch, {threads} thread(s), {n} pairs"] = _p50(lambda inputs=inputs: model(**inputs))
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
            wanted = {i.name for i in session.get_inputs()}
            feed = {k: v.numpy() for k, v in inputs.items() if k in wanted}
            out[f"onnx int8, {threads} thread(s), {n} pairs"] = _p50(lambda feed=feed, session=session: session.run(None, feed))
    torch.set_num_threads(2)
    return out


def _p50(call) -> float:
    with torch.no_grad():
        for _ in range(3):
            call()
        times = []
        for _ in range(30):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
    return round(float(np.median(times)) * 1000, 1)


def main() -> None:
    from transformers import AutoTokenizer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    random.seed(0)
    folder = bundled_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    data = candidates()
    scored: dict[str, list[dict]] = {name: [] for name in data}
    timings: dict[str, float] = {}
    for fold in (0, 1):
        training = {name: [r for r in rows if r["fold"] != fold] for name, rows in data.items()}
        model = fit({name: [(r["x"], r["y"], r["answerable"]) for r in rows] for name, rows in training.items()},
                    FEATURES, 0.01)
        pairs = []
        for rows in training.values():
            for r in rows:
                order = list(np.argsort(-model.probabilities(r["x"], FEATURES)))
                keep = order[:TOP_TRAIN if r["answerable"] else TOP_UNANSWERABLE]
                keep += [i for i in np.flatnonzero(r["y"]) if i not in keep][:2]
                pairs += [(r["question"], r["texts"][i], bool(r["y"][i])) for i in keep]
        print(f"fold {fold}: {len(pairs)} pairs, {sum(p[2] for p in pairs)} with the answer", file=sys.stderr)
        encoder = train(pairs, tokenizer, folder)
        for name, rows in data.items():
            for r in rows:
                if r["fold"] != fold:
                    continue
                p = model.probabilities(r["x"], FEATURES)
                order = np.argsort(-p)[:TOP_TEST]
                scored[name].append({"answerable": r["answerable"], "y": r["y"][order], "model": log_odds(p[order]),
                                     "cross": predict(encoder, tokenizer, [(r["question"], r["texts"][i]) for i in order])})
        if fold == 0:
            first = next(r for r in data["squad"] if r["fold"] == 0 and r["answerable"])
            timings = latency(encoder, tokenizer, [(first["question"], t) for t in first["texts"][:10]])
    report = {"timings_ms": timings, "sets": {}}
    for name, rows in scored.items():
        answerable = [r for r in rows if r["answerable"]]
        ways = {"answer model": lambda r: r["model"], "cross-encoder": lambda r: r["cross"]}
        ways |= {f"model + {w} x cross": (lambda r, w=w: r["model"] + w * r["cross"]) for w in WEIGHTS}
        entry = {"answerable": len(answerable), "answer in the first 10": float(np.mean([r["y"].any() for r in answerable])),
                 "top-1": {k: float(np.mean([r["y"][np.argmax(f(r))] for r in answerable])) for k, f in ways.items()}}
        unanswerable = [r for r in rows if not r["answerable"]]
        if unanswerable:
            entry["unanswerable abstained at 95% answered"] = {
                k: float(np.mean([f(r).max() < np.quantile([f(a).max() for a in answerable], 0.05) for r in unanswerable]))
                for k, f in ways.items()}
        report["sets"][name] = entry
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cross_encoder.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
