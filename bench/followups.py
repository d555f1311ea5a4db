"""Follow-up questions against the same questions asked directly.

    python bench/followups.py                # writes bench/results/followups.json

Chains are made from the shared sets: two questions about the same passage (SQuAD) or the same
articles (RealTime QA), where the second names something the first also names. The follow-up
replaces that shared name with a pronoun ("When were the Normans in Normandy?" after "In what
country is Normandy located?" becomes "When were the Normans in it?"), so it can only be
answered from the conversation. Reported: the share of follow-ups whose answer holds a gold
answer, next to the same questions asked directly (in full), on the held-out halves.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import Question, contains_answer, newsqa, open_or_build, split_news, split_squad, squad  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
_NAME = re.compile(r"\b(?:the\s+)?(?:[A-Z][\w’'\-]+)(?:\s+(?:of\s+)?[A-Z][\w’'\-]+)*")
_PLURAL_HINT = re.compile(r"s\b")


def follow_up(first: str, second: str) -> str | None:
    """`second` with the longest name it shares with `first` replaced by a pronoun; None if none."""
    shared = []
    for m in _NAME.finditer(second):
        name = m.group(0)
        core = re.sub(r"^the\s+", "", name, flags=re.IGNORECASE)
        if m.start() == 0 and " " not in core:
            continue  # a capitalised first word is not necessarily a name
        if len(core) < 4 or core.isupper():
            continue  # "P", "NP": symbols, not names
        after = second[m.end():]
        if not re.match(r"^(?:\s*$|[?,.;:]|'s\b|’s\b|\s+(?:is|was|were|are|did|do|does|has|have|had|in|on|at|of|to|"
                        r"for|and|or|after|before|during|when|that|which|who)\b)", after):
            continue  # a name inside a compound ("the Turing machine") is no noun phrase of its own
        if re.search(rf"\b{re.escape(core)}\b", first):
            shared.append((len(core), m.start(), m.end(), core))
    if not shared:
        return None
    _, start, end, core = max(shared)
    pronoun = "they" if core.endswith("s") and not core.endswith("ss") else "it"
    before = second[:start]
    if re.search(r"\b(?:of|in|on|at|for|to|from|by|with|about|into|than)\s+$", before):
        pronoun = "them" if pronoun == "they" else "it"
    text = f"{before}{pronoun}{second[end:]}"
    return text[0].upper() + text[1:]


def chains(questions: list[Question], limit: int) -> list[tuple[Question, Question, str]]:
    by_doc: dict[str, list[Question]] = defaultdict(list)
    for q in questions:
        if q.answers and q.doc_ids:
            by_doc[q.doc_ids[0]].append(q)
    out = []
    for group in by_doc.values():
        for first, second in zip(group, group[1:]):
            text = follow_up(first.text, second.text)
            if text and text != second.text:
                out.append((first, second, text))
                break
        if len(out) >= limit:
            break
    return out


def run(dataset, held_out: list[Question], limit: int) -> dict:
    desk = open_or_build(dataset)
    made = chains(held_out, limit)
    direct_hits = follow_hits = 0
    examples = []
    for first, second, text in made:
        chat = desk.chat()
        chat.ask(first.text)
        follow = chat.ask(text)
        direct = desk.ask(second.text)
        direct_hits += (not direct.abstained) and contains_answer(direct.text, second.answers)
        follow_hits += (not follow.abstained) and contains_answer(follow.text, second.answers)
        if len(examples) < 8:
            examples.append({"first": first.text, "follow_up": text, "searched": follow.query, "direct": second.text})
    n = max(len(made), 1)
    return {"chains": len(made), "direct": direct_hits / n, "follow_up": follow_hits / n, "examples": examples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=300, help="chains per set at most")
    parser.add_argument("--out", type=Path, default=RESULTS / "followups.json")
    args = parser.parse_args()
    s, n = squad(), newsqa()
    results = {"squad": run(s, split_squad(s.questions)[1], args.limit),
               "newsqa": run(n, split_news(n.questions)[1], args.limit)}
    print(json.dumps({k: {m: v for m, v in r.items() if m != "examples"} for k, r in results.items()}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "results": results}, indent=1))


if __name__ == "__main__":
    main()
