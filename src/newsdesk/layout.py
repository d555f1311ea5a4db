"""Where an index lives on disk, and how a new one replaces the old atomically.

    index/
      CURRENT            name of the live store folder (switched by one atomic rename)
      BUILDING           name of a store being built from scratch, until it is published
      .writer.lock       held by whoever is writing
      store-<stamp>/     newsdesk.sqlite + segments/ + encoder/

Incremental updates happen inside the live store (SQLite transactions, new segments). A first
build or a rebuild writes a new store folder beside the live one and switches CURRENT only when
it is complete, so an interrupted rebuild leaves the last good index in place. The unfinished
store is kept (BUILDING names it) with every batch it committed, and the next run continues it
instead of starting over.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from pathlib import Path

from filelock import FileLock, Timeout

from newsdesk.errors import IndexBusy
from newsdesk.vectors import fsync_path

log = logging.getLogger("newsdesk")

CURRENT = "CURRENT"
BUILDING = "BUILDING"
LOCK = ".writer.lock"


def _named_store(index_dir: Path, pointer: str) -> Path | None:
    try:
        name = (index_dir / pointer).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    path = index_dir / name
    return path if name and path.is_dir() else None


def current_store(index_dir: Path) -> Path | None:
    return _named_store(index_dir, CURRENT)


def building_store(index_dir: Path) -> Path | None:
    """The store an interrupted build left, to be continued (None when there is none)."""
    return _named_store(index_dir, BUILDING)


def begin_build(index_dir: Path) -> Path:
    """A new, empty store folder, named in BUILDING so an interruption does not lose it."""
    store = new_store(index_dir)
    _point(index_dir, BUILDING, store.name)
    return store


def discard_build(index_dir: Path) -> None:
    store = building_store(index_dir)
    (index_dir / BUILDING).unlink(missing_ok=True)
    if store is not None:
        shutil.rmtree(store, ignore_errors=True)


def new_store(index_dir: Path) -> Path:
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / f"store-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
    (path / "segments").mkdir(parents=True)
    return path


def _point(index_dir: Path, pointer: str, name: str) -> None:
    tmp = index_dir / f".{pointer}.tmp"
    tmp.write_text(name + "\n")
    fsync_path(tmp)
    os.replace(tmp, index_dir / pointer)
    fsync_path(index_dir)


def publish(index_dir: Path, store: Path) -> None:
    """Make `store` the live index (one atomic rename), then forget that it was being built."""
    _point(index_dir, CURRENT, store.name)
    if building_store(index_dir) == store:
        (index_dir / BUILDING).unlink(missing_ok=True)
        fsync_path(index_dir)


def remove_other_stores(index_dir: Path) -> None:
    """Delete store folders that are neither live nor being built: finished rebuilds' predecessors.

    Call it holding the writer lock. An open `Desk` keeps reading a removed store until its
    next question (the files stay readable while open) and then moves to the live one.
    """
    keep = {current_store(index_dir), building_store(index_dir)}
    for path in index_dir.glob("store-*"):
        if path not in keep and path.is_dir():
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
