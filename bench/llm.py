"""Generated answers next to extractive ones, and the calibration of the support check.

    python bench/llm.py                 # needs a model: see below; writes bench/results/llm.json
    python bench/llm.py --calibrate     # no model needed; writes bench/results/support.json

With a model: set NEWSDESK_LLM_PROVIDER, NEWSDESK_LLM_MODEL and NEWSDESK_LLM_BASE_URL (as for
the bot and the CLI, see README) to a running server, e.g. llama.cpp's `llama-server` or Ollama
with a small instruct model. A sample of answerable SQuAD 2.0 questions (and some unanswerable
ones) is answered both ways over the SQuAD index that bench/evaluate.py builds, and for each
way we report: answers containing a gold answer, answers given, and for the model: the share
of its sentences that passed the support check, fallbacks to the extractive answer and
latency. Without a configured, reachable model it says so and exits (status 0).

--calibrate measures the support check's thresholds without a model. From each sampled SQuAD
question and its gold answer it makes a claim like a model's ("<question words> <answer>."),
then checks it against
  - the retrieved passage of the gold paragraph that holds the answer (should pass),
  - the best-ranked passage of another article (a wrong citation: should fail),
  - the best-ranked other paragraph of the same article without the answer (should fail),
and the gold sentence itself (a copied sentence: should pass), and a claim with another
question's answer against the gold passage (a wrong fact: the number rule catches some).
Thresholds are chosen on half the articles (most supported claims kept with at most 5% of
wrong citations passing) and reported on the other half.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import WORK, Question, contains_answer, squad  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
WH = re.compile(r"^\s*(?:(?:in|on|at|by|for|from|of|to|during|after|before)\s+)?"
                r"(?:what|which|who|whom|whose|when|where|why|how(?:\s+(?:many|much|long|old|far|often|large))?)\b",
                re.IGNORECASE)


def sample(questions: list[Question], n: int, *, answerable: bool = True) -> list[Question]:
    pool = [q for q in questions if bool(q.answers) == answerable]
    pool.sort(key=lambda q: hashlib.sha1(q.id.encode()).hexdigest())
    return pool[:n]


def open_squad_desk(**options):
    from newsdesk import Desk
    from newsdesk.layout import current_store

    index = WORK / "squad" / "index"
    if current_store(index) is None:
        sys.exit(f"No SQuAD index in {index}: run `python bench/evaluate.py --sets squad --no-stock` first "
                 "(it builds the index this benchmark reads).")
    return Desk.open(index, **options)


# -- calibration -----------------------------------------------------------------------------
def claim(question: str, answer: str) -> str:
    rest = WH.sub("", question).strip().rstrip("?").strip()
    return f"{rest} {answer}.".strip()


def calibrate(n: int) -> dict:
    from newsdesk.desk import gather_evidence
    from newsdesk.store import Filters
    from newsdesk.support import Sentence, SupportChecker, SupportSettings

    dataset = squad()
    desk = open_squad_desk()
    questions = sample(dataset.questions, n)
    by_group: dict[str, list[Question]] = {}
    for q in questions:
        by_group.setdefault(q.group, []).append(q)
    rows: list[dict] = []
    checkers: dict[int, SupportChecker] = {}
    started = time.perf_counter()
    for q in questions:
        gold_doc = q.doc_ids[0]
        with desk.reader.generation() as gen:
            passages, texts, _ = gather_evidence(gen, q.text, desk.encoder.encode_query(q.text), 10, Filters(),
                                                 desk.fusion)
        gold = next((p for p in passages if p.doc_id == gold_doc and contains_answer(p.text, q.answers)), None)
        if gold is None:
            continue
        other_article = next((p for p in passages if p.title != gold.title), None)
        same_article = next((p for p in passages if p.title == gold.title and p.doc_id != gold_doc
                             and not contains_answer(p.text, q.answers)), None)
        text = claim(q.text, q.answers[0])
        others = [o for o in by_group[q.group] if o.id != q.id and not contains_answer(gold.text, o.answers)]
        wrong_fact = claim(q.text, others[0].answers[0]) if others else None
        copied = next((texts[gold_doc][a:b] for a, b in gold.sentences
                       if contains_answer(texts[gold_doc][a:b], q.answers)), None)
        pairs = [("supported", text, gold), ("copied", copied, gold), ("other_article", text, other_article),
                 ("same_article", text, same_article), ("wrong_fact", wrong_fact, gold)]
        for kind, sentence, passage in pairs:
            if sentence is None or passage is None:
                continue
            checker = checkers.get(passage.chunk_id) or SupportChecker([passage], texts, desk.encoder.encode)
            checkers[passage.chunk_id] = checker
            vector = desk.encoder.encode([sentence])[0]
            e = checker.evidence(Sentence(sentence, (1,)), vector, 1)
            rows.append({"kind": kind, "group": q.group, "overlap": e.overlap, "cosine": e.cosine,
                         "numbers_ok": e.numbers_ok})
    seconds = time.perf_counter() - started
    groups = sorted({r["group"] for r in rows})
    calibration = set(groups[::2])
    halves = {"calibration": [r for r in rows if r["group"] in calibration],
              "test": [r for r in rows if r["group"] not in calibration]}

    def rates(items: list[dict], o: float, c: float, numbers: bool = True) -> dict[str, float]:
        out = {}
        for kind in ("supported", "copied", "other_article", "same_article", "wrong_fact"):
            xs = [r for r in items if r["kind"] == kind]
            ok = [r for r in xs if (r["numbers_ok"] or not numbers) and (r["overlap"] >= o or r["cosine"] >= c)]
            out[kind] = round(len(ok) / len(xs), 3) if xs else None
        return out

    grid = [x / 100 for x in range(30, 101, 5)] + [1.01]
    best = None
    for o in grid:
        for c in grid:
            r = rates(halves["calibration"], o, c)
            wrong = max(r["other_article"] or 0, r["same_article"] or 0)
            if wrong <= 0.05 and (best is None or r["supported"] > best[0]):
                best = (r["supported"], o, c)
    _, o, c = best
    defaults = SupportSettings()
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "questions": len(questions), "pairs": len(rows),
        "seconds": round(seconds, 1),
        "chosen": {"min_overlap": o, "min_cosine": c},
        "chosen_rates": {h: rates(items, o, c) for h, items in halves.items()},
        "default_rates": {h: rates(items, defaults.min_overlap, defaults.min_cosine) for h, items in halves.items()},
        "sweep": [{"min_overlap": so, "min_cosine": sc, **{h: rates(items, so, sc) for h, items in halves.items()}}
                  for so in (0.6, 0.65, 0.7, 0.75, 0.8) for sc in (0.65, 0.7, 0.75, 0.8)],
        "overlap_only": {h: rates(items, o, 1.01) for h, items in halves.items()},
        "cosine_only": {h: rates(items, 1.01, c) for h, items in halves.items()},
        "without_number_rule": {h: rates(items, o, c, numbers=False) for h, items in halves.items()},
        "quantiles": {kind: {m: _quantiles([r[m] for r in rows if r["kind"] == kind]) for m in ("overlap", "cosine")}
                      for kind in ("supported", "copied", "other_article", "same_article", "wrong_fact")},
        "counts": {kind: sum(r["kind"] == kind for r in rows)
                   for kind in ("supported", "copied", "other_article", "same_article", "wrong_fact")},
    }
    return result


def _quantiles(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    if not xs:
        return {}
    return {f"p{p}": round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 3) for p in (5, 25, 50, 75, 95)}


# -- the model run ---------------------------------------------------------------------------
def model_settings():
    """The configured model, or an exit with a message saying why there is none."""
    from newsdesk.llm import LLM, Deadline, LLMSettings, LLMSettingsError, LLMUnavailable

    try:
        settings = LLMSettings.from_env()
    except LLMSettingsError as err:
        sys.exit(f"bench/llm.py: {err}")
    if settings is None:
        print("bench/llm.py: no language model is configured, so there is nothing to compare; set "
              "NEWSDESK_LLM_PROVIDER (openai-compatible or ollama), NEWSDESK_LLM_MODEL and NEWSDESK_LLM_BASE_URL "
              "to a running server (e.g. llama.cpp's llama-server or Ollama) and run this again. "
              "(`python bench/llm.py --calibrate` needs no model.)", file=sys.stderr)
        sys.exit(0)
    try:
        LLM(replace(settings, retries=0)).chat([("user", "Say OK.")], Deadline(min(settings.timeout, 30)))
    except LLMUnavailable as err:
        print(f"bench/llm.py: the language model at {settings.url} ({settings.model}) is not reachable or not "
              f"usable ({err}); start it, or fix NEWSDESK_LLM_BASE_URL / NEWSDESK_LLM_MODEL, and run this again.",
              file=sys.stderr)
        sys.exit(0)
    return settings


def run_model(n: int, unanswerable: int) -> dict:
    settings = model_settings()
    from newsdesk import Desk
    from newsdesk.generate import LLMAnswer

    dataset = squad()
    desk = open_squad_desk(llm=settings)
    plain = Desk(desk.settings, desk.encoder)  # the same index, answered without the model
    questions = sample(dataset.questions, n) + sample(dataset.questions, unanswerable, answerable=False)
    stats = {"extractive": _Tally(), "llm": _Tally()}
    kept = removed = fallbacks = generated_hits = generated_answerable = 0
    reasons: dict[str, int] = {}
    for i, q in enumerate(questions):
        started = time.perf_counter()
        generated = desk.ask(q.text)
        seconds = time.perf_counter() - started
        extractive = plain.ask(q.text)
        stats["extractive"].add(q, extractive, 0.0)
        stats["llm"].add(q, generated, seconds)
        if isinstance(generated, LLMAnswer):
            kept += len(generated.sentences)
            removed += len(generated.removed)
            fallbacks += generated.fallback
            if q.answers and not generated.fallback:
                generated_answerable += 1
                generated_hits += contains_answer(generated.text, q.answers)
            for r in generated.removed:
                reasons[r.reason.split(",")[0]] = reasons.get(r.reason.split(",")[0], 0) + 1
        if i % 10 == 0:
            print(f"  {i}/{len(questions)}", file=sys.stderr)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"), "model": settings.model, "provider": settings.provider,
        "settings": {k: v for k, v in asdict(settings).items() if k != "api_key"},
        "questions": {"answerable": n, "unanswerable": unanswerable},
        "extractive": stats["extractive"].summary(), "llm": stats["llm"].summary(),
        "supported_sentence_rate": round(kept / max(kept + removed, 1), 3),
        "sentences": {"kept": kept, "removed": removed, "removed_by_reason": reasons},
        "fallbacks": fallbacks,
        # Among the answerable questions the model's own (checked) answer was used for.
        "generated_contains_gold": round(generated_hits / max(generated_answerable, 1), 3),
    }


class _Tally:
    def __init__(self) -> None:
        self.answerable = self.correct = self.answered = self.unanswerable = self.abstained = 0
        self.seconds: list[float] = []

    def add(self, q: Question, answer, seconds: float) -> None:
        self.seconds.append(seconds)
        if q.answers:
            self.answerable += 1
            self.answered += not answer.abstained
            self.correct += (not answer.abstained) and contains_answer(answer.text, q.answers)
        else:
            self.unanswerable += 1
            self.abstained += answer.abstained

    def summary(self) -> dict[str, float]:
        s = sorted(self.seconds)
        return {
            "answer_contains_gold": round(self.correct / max(self.answerable, 1), 3),
            "answered": round(self.answered / max(self.answerable, 1), 3),
            "abstained_on_unanswerable": round(self.abstained / max(self.unanswerable, 1), 3),
            "median_seconds": round(s[len(s) // 2], 3) if s else 0.0,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate", action="store_true", help="measure the support check's thresholds (no model)")
    parser.add_argument("-n", type=int, default=None, help="answerable questions (default 100; calibration 300)")
    parser.add_argument("--unanswerable", type=int, default=20, help="unanswerable questions for the model run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.calibrate:
        result = calibrate(args.n or 300)
        out = args.out or RESULTS / "support.json"
    else:
        result = run_model(args.n or 100, args.unanswerable)
        out = args.out or RESULTS / "llm.json"
    print(json.dumps(result, indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
