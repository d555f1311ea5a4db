"""A first build killed halfway with `kill -9`, then run again: how much embedding it costs in all,
against the same build uninterrupted (issue 10: target <= 1.1x).

    python bench/resume.py            # about 3 minutes; writes bench/results/resume.json

The corpus is SQuAD's 646 paragraphs (832 chunks), committed in batches of 96 chunks so that
"halfway" falls between batches the way it does on a large corpus with the usual 2,048. The
killed build runs in a child process, which says how many chunks it hands to the encoder and
how many each commit completes; once half the chunks are committed it is killed a second into
embedding the next batch, so that batch is lost work, and is counted two ways: whole, as handed to
the encoder (`embedding_work_ratio`, the bound for a kill just before a commit), and as far as
the encoder got in pieces of 32 (`started_work_ratio`, a piece begun counts whole). The real
model embeds (ONNX int8, both cores).
Afterwards the resumed index must hold the same documents and chunks, with the same corpus
fingerprint, as the uninterrupted one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import squad  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 96

CHILD = """
import sys
from pathlib import Path
import newsdesk.index as index
from newsdesk.config import Settings
from newsdesk.desk import encoder_for_build
index.BATCH_CHUNKS = {batch}
settings = Settings(corpus_dir=Path({corpus!r}), index={folder!r})
encoder = encoder_for_build(settings, rebuild=True)
real = encoder.encode_passages
def encode(texts, spans, **kw):
    # Handed over as one batch; encoded here 32 at a time, as the encoder does, so that the work
    # begun before a kill can be counted (a started piece counts whole).
    print("ENCODE", len(texts), flush=True)
    vectors, pooled = [], []
    for at in range(0, len(texts), 32):
        print("STARTED", len(texts[at:at + 32]), flush=True)
        v, p = real(texts[at:at + 32], spans[at:at + 32], **kw)
        vectors.append(v)
        pooled.extend(p)
    import numpy as np
    return np.concatenate(vectors), pooled
encoder.encode_passages = encode
index.update_index(settings, encoder, on_batch=lambda n: print("COMMITTED", n, flush=True))
print("DONE", flush=True)
"""


def build(corpus: Path, folder: Path) -> dict:
    import newsdesk.index as index
    from newsdesk import Desk

    index.BATCH_CHUNKS = BATCH
    started = time.perf_counter()
    desk = Desk.build(corpus, folder)
    report = desk.last_update
    manifest = desk.backend.manifest()
    return {"seconds": time.perf_counter() - started, "embed_seconds": report.embed_seconds,
            "chunks_embedded": report.chunks_embedded, "resumed": report.resumed,
            "documents": manifest["documents"], "chunks": manifest["chunks"], "fingerprint": manifest["fingerprint"]}


def killed_halfway(corpus: Path, folder: Path, total: int) -> dict:
    code = CHILD.format(batch=BATCH, corpus=str(corpus), folder=str(folder))
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env=os.environ | {"HF_HUB_OFFLINE": "1"})
    encoded = committed = started_encoding = 0
    for line in child.stdout:
        word, _, n = line.partition(" ")
        if word == "STARTED":
            started_encoding += int(n)
        elif word == "ENCODE":
            encoded += int(n)
            if committed >= total / 2:  # half is committed and the next batch is being embedded
                deadline = time.monotonic() + 1.0
                os.set_blocking(child.stdout.fileno(), False)
                while time.monotonic() < deadline:  # keep counting what it starts meanwhile
                    time.sleep(0.05)
                    for later in child.stdout.readlines():
                        if later.startswith("STARTED"):
                            started_encoding += int(later.split()[1])
                child.send_signal(signal.SIGKILL)
                break
        elif word == "COMMITTED":
            committed = int(n)
        elif word == "DONE":
            break
    child.wait()
    return {"seconds": time.perf_counter() - started, "encoded_before_kill": encoded, "committed": committed,
            "started_encoding_before_kill": started_encoding, "killed": child.returncode == -signal.SIGKILL}


def main() -> None:
    data = squad()
    work = Path(tempfile.mkdtemp(prefix="newsdesk-resume-"))
    try:
        whole = build(data.corpus, work / "whole")
        killed = killed_halfway(data.corpus, work / "killed", whole["chunks"])
        if not killed["killed"]:
            raise SystemExit(f"the build to kill ended by itself: {killed}")
        resumed = build(data.corpus, work / "killed")
        work_done = killed["encoded_before_kill"] + resumed["chunks_embedded"]
        result = {"date": time.strftime("%Y-%m-%d %H:%M"), "batch_chunks": BATCH, "uninterrupted": whole,
                  "killed": killed, "resumed": resumed,
                  "embedding_work_ratio": work_done / whole["chunks_embedded"],
                  # the work begun, counting the batch in flight only as far as the encoder got
                  "started_work_ratio": (killed["started_encoding_before_kill"] + resumed["chunks_embedded"])
                  / whole["chunks_embedded"],
                  "same_index": all(resumed[k] == whole[k] for k in ("documents", "chunks", "fingerprint"))}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "resume.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
