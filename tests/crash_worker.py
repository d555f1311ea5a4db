"""Runs index updates in forked children and kills them at chosen points (used by test_updates.py).

The model loads once here, before any encoding, so each forked child starts at once and its
one-thread encoder never inherits a started thread pool. Commands arrive as JSON lines on stdin:
{"kill": "after_batches" | "after_segment_write" | "mid_transaction" | "at_seconds", "n": ...}.
"""

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import newsdesk.embedded as embedded_module
import newsdesk.index as index_module
from newsdesk.keyword_index import KeywordIndex
from newsdesk.config import Settings
from newsdesk.desk import encoder_for_build
from newsdesk.store import Store


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def countdown(n, then):
    left = [n]

    def tick(*_):
        left[0] -= 1
        if left[0] <= 0:
            then()
    return tick


def child(settings, embedder, kill, n):
    index_module.BATCH_CHUNKS = 2
    on_batch = None
    if kill == "after_batches":
        on_batch = countdown(n, die)
    elif kill == "after_segment_write":
        write, tick = embedded_module.write_segment, countdown(n, die)
        embedded_module.write_segment = lambda *a: (write(*a), tick())[0]
    elif kill == "after_keyword_commit":  # tantivy has the batch, SQLite does not yet
        commit, tick = KeywordIndex.commit, countdown(n, die)
        KeywordIndex.commit = lambda self: (commit(self), tick())[0]
    elif kill == "mid_transaction":
        add, tick = Store.add_document, countdown(n, die)
        Store.add_document = staticmethod(lambda *a: (add(*a), tick())[0])
    index_module.update_index(settings, embedder, on_batch=on_batch)


def main():
    corpus, index = Path(sys.argv[1]), Path(sys.argv[2])
    settings = Settings(corpus_dir=corpus, index=str(index))
    embedder = encoder_for_build(settings, rebuild=True)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                child(settings, embedder, command["kill"], command.get("n", 0))
                os._exit(0)
            except BaseException:
                traceback.print_exc()
                os._exit(1)
        if command["kill"] == "at_seconds":
            time.sleep(command["n"])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"killed": os.WIFSIGNALED(status),
                          "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}), flush=True)


if __name__ == "__main__":
    main()
