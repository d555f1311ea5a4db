"""Where an index lives on disk, and how a new one replaces the old atomically.

    index/
      CURRENT            name of the live store folder (switched by one atomic rename)
      .writer.lock       held by whoever is writing
      store-<stamp>/     newsdesk.sqlite + segments/*.faiss

Incremental updates happen inside the live store (SQLite transactions, new FAISS segments).
A full rebuild writes a new store folder beside the live one and switches CURRENT only when it
is complete, so an interrupted rebuild leaves the last good index in place.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from pathlib import Path

from filelock import FileLock, Timeout

from newsdesk.vectors import fsync_path

log = logging.getLogger("newsdesk")

CURRENT = "CURRENT"
LOCK = ".writer.lock"


class IndexBusy(Exception):
    pass


def current_store(index_dir: Path) -> Path | None:
    try:
        name = (index_dir / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    path = index_dir / name
    return path if path.is_dir() else None


def new_store(index_dir: Path) -> Path:
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / f"store-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
    (path / "segments").mkdir(parents=True)
    return path


def publish(index_dir: Path, store: Path) -> None:
    tmp = index_dir / f".{CURRENT}.tmp"
    tmp.write_text(store.name + "\n")
    fsync_path(tmp)
    os.replace(tmp, index_dir / CURRENT)
    fsync_path(index_dir)


def remove_other_stores(index_dir: Path) -> None:
    """Delete store folders that are not live: finished rebuilds' predecessors, crashed builds.

    Call it holding the writer lock. An open `Desk` keeps reading a removed store until its
    next question (the files stay readable while open) and then moves to the live one.
    """
    live = current_store(index_dir)
    for path in index_dir.glob("store-*"):
        if path != live and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def writer_lock(index_dir: Path, timeout: float = -1) -> FileLock:
    """One writer at a time; a second one waits (timeout=-1) or gives up with IndexBusy."""
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / LOCK))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if timeout == 0:
                raise
            log.warning("another newsdesk process is updating %s; waiting for it to finish", index_dir)
            lock.acquire(timeout=timeout)
    except Timeout:
        raise IndexBusy(
            f"another newsdesk process is updating {index_dir}; wait for it to finish and try again"
        ) from None
    return lock
