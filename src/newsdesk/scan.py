"""Which corpus files changed since the index last saw them, judged by size and modification time.

Like make and git, an unchanged (size, mtime) means an unchanged file, so an update reads only
new and modified files: adding one article to a corpus of thousands reads one file. Content
hashes per document then decide what is re-embedded.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from newsdesk.load import SUPPORTED, Skipped, corpus_files, require_corpus

Signature = tuple[int, int]  # (size, mtime_ns)


@dataclass
class Scan:
    changed: dict[str, Signature] = field(default_factory=dict)  # new or modified, relative paths
    gone: list[str] = field(default_factory=list)  # indexed before, no longer in the corpus
    deferred: list[str] = field(default_factory=list)  # modified moments ago: maybe still being written
    unchanged: int = 0
    ignored: list[str] = field(default_factory=list)  # suffixes newsdesk does not read
    problems: list[Skipped] = field(default_factory=list)  # links and names that cannot be read


def scan_corpus(root: Path, known: dict[str, Signature], settle: float = 0.0, *,
                retry: Collection[str] = (), follow_symlinks: bool = False) -> Scan:
    """Compare the files under `root` with `known` signatures; files in `retry` count as changed.

    A file modified less than `settle` seconds ago is deferred, not read: a copy in progress is
    indexed once, when complete, rather than half now and whole later.
    """
    require_corpus(root)
    scan = Scan()
    now = time.time_ns()
    seen: set[str] = set()
    found = corpus_files(root, follow_symlinks=follow_symlinks)
    scan.problems = found.skipped
    for path in found.files:
        rel = path.relative_to(root).as_posix()
        if path.suffix.lower() not in SUPPORTED:
            scan.ignored.append(rel)
            continue
        try:
            st = path.stat()
        except FileNotFoundError:  # deleted while we looked
            continue
        seen.add(rel)
        signature = (st.st_size, st.st_mtime_ns)
        if known.get(rel) == signature and rel not in retry:
            scan.unchanged += 1
        elif settle > 0 and now - st.st_mtime_ns < settle * 1e9:
            scan.deferred.append(rel)
        else:
            scan.changed[rel] = signature
    # A link that now points outside the corpus is no longer part of it.
    scan.gone = sorted(set(known) - seen)
    return scan
