"""How long the `newsdesk` command takes, start to finish, as a user runs it (issue 10: `ask` on a
warm disk < 2 s, `stats`/`check`/`--help` < 1 s).

    python bench/cli.py               # about a minute; writes bench/results/cli.json

Each command runs 5 times as a fresh process (after one warm-up run, so the disk cache is warm)
against the sample corpus's index, built once in a temporary folder; the median and the slowest
are reported, with whether the process imported torch (it should not: the default encoder runs
on onnxruntime).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RUNS = 5
PROBE = "import runpy, sys; sys.argv = ['newsdesk', *sys.argv[1:]]; " \
        "from newsdesk.cli import main\ntry:\n    main()\nfinally:\n    print('TORCH' if 'torch' in sys.modules else '', file=sys.stderr)"


def run(args: list[str], cwd: Path) -> tuple[float, bool, int]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - started, "TORCH" in done.stderr, done.returncode


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="newsdesk-cli-"))
    try:
        shutil.copytree(ROOT / "corpus", work / "corpus")
        commands = {
            "--help": ["--help"],
            "ask (builds the index: first run)": ["ask", "When did the raid take place?"],
            "ask": ["ask", "When did the raid take place?"],
            'ask ""': ["ask", ""],
            "search": ["search", "Venezuela raid"],
            "stats": ["stats"],
            "check": ["check"],
            "index (nothing to do)": ["index"],
        }
        result = {"date": time.strftime("%Y-%m-%d %H:%M"), "runs": RUNS, "commands": {}}
        for name, args in commands.items():
            if name.startswith("ask (builds"):
                seconds, torch, code = run(args, work)
                result["commands"][name] = {"seconds": seconds, "imports_torch": torch, "exit": code}
                continue
            run(args, work)  # warm-up
            times, torch_seen, codes = [], False, set()
            for _ in range(RUNS):
                seconds, torch, code = run(args, work)
                times.append(seconds)
                torch_seen |= torch
                codes.add(code)
            result["commands"][name] = {"median_s": statistics.median(times), "max_s": max(times),
                                        "imports_torch": torch_seen, "exit": sorted(codes)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli.json").write_text(json.dumps(result, indent=2))
    for name, row in result["commands"].items():
        print(f"{name:>34}: {json.dumps(row)}")


if __name__ == "__main__":
    main()
