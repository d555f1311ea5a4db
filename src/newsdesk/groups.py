"""The copy and story groups an index stores, kept in step with its articles by the writer.

Readers look groups up in the index (one SQL query per question); only a writer works them out,
with a `newsdesk.dedup.DuplicateFinder`. So a question needs neither the finder's memory (6.8 KB
per article) nor datasketch, whose import alone takes a second.

Two keepers, one result:

- `StoredGroups` (the embedded index) builds, for each change, a finder of only the articles the
  change can affect, found in the index: the stored story groups of the removed and replaced
  articles, and the articles that share an LSH band key with an added one (a lookup in the
  `bands` table), with their stored story groups. That set is closed under near-duplicate
  links, so its groups are exact, and the work follows the size of the groups touched, not of
  the index. (A finder of every article took two minutes per update at a million chunks,
  where each article had 40 copies.)
- `GroupKeeper` (Milvus, and an index whose groups were never written) builds a finder of every
  stored fingerprint once per writer (0.5 s for 3,500 articles, 4.5 s for 33,500:
  docs/benchmarks.md, "Near-duplicates") and keeps it for the rest of the update.

A change rewrites the rows of every article whose groups it can change: the removed or replaced
articles' old story groups and the added articles' new ones. A group's id is its smallest
doc_id, so the rows after any sequence of updates are the rows a rebuild would write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence

Row = tuple[str, str, str]  # doc_id, copy group id, story group id


class GroupKeeper:
    def __init__(self, fingerprints: Callable[[], Iterable[tuple[str, bytes, str | None]]]):
        self._fingerprints = fingerprints
        self._finder = None

    def prepare(self) -> None:
        """Build the finder from the fingerprints as committed, before a batch changes them."""
        self.finder

    @property
    def finder(self):
        if self._finder is None:
            from newsdesk.dedup import DuplicateFinder

            self._finder = DuplicateFinder.from_fingerprints(self._fingerprints())
        return self._finder

    def change(self, removed: Sequence[str], added: Sequence[tuple[str, bytes, str | None]]) -> tuple[list[Row],
                                                                                                        list[str]]:
        """Apply an update's removals and additions (an added id replaces its earlier version);
        the rows to write, and the doc_ids whose rows go (removed, or alone now)."""
        finder = self.finder
        touched: set[str] = set()
        for doc_id in removed:
            if doc_id in finder:
                touched.update(finder.story(doc_id))
                finder.remove(doc_id)
        for doc_id, data, published in added:
            if doc_id in finder:
                touched.update(finder.story(doc_id))
            finder.add(doc_id, data, published)
            touched.update(finder.story(doc_id))
        affected = set(touched)
        for doc_id in touched:
            if doc_id in finder:
                affected.update(finder.story(doc_id))
        return self._rows(affected)

    def all_rows(self) -> list[Row]:
        """Every article's row (for an index whose groups were never written)."""
        return self._rows(set(self.finder))[0]

    def _rows(self, doc_ids: set[str]) -> tuple[list[Row], list[str]]:
        return rows_of(self.finder, doc_ids)


def rows_of(finder, doc_ids: Iterable[str]) -> tuple[list[Row], list[str]]:
    """The group rows of these articles in `finder`, and those that get none (gone, or alone)."""
    rows, gone = [], []
    for doc_id in sorted(set(doc_ids)):
        story = finder.story(doc_id) if doc_id in finder else ()
        if len(story) < 2:
            gone.append(doc_id)
        else:
            rows.append((doc_id, finder.copy_group_id(doc_id), story[0]))
    return rows, gone


class StoredGroups:
    """Regroups from what the embedded index stores; see the module's docstring.

    `change` runs inside the batch's transaction, after its articles' prints and band keys were
    written or deleted and before its group rows are: it reads the new prints and the old groups.
    """

    def __init__(self, conn: Callable[[], sqlite3.Connection]):
        self._conn = conn

    def prepare(self) -> None:
        pass

    def change(self, removed: Sequence[str], added: Sequence[tuple[str, bytes, str | None]]) -> tuple[list[Row],
                                                                                                        list[str]]:
        from newsdesk.dedup import DuplicateFinder, band_keys
        from newsdesk.store import Store

        conn = self._conn()

        def with_their_stories(doc_ids: set[str]) -> set[str]:
            members = Store.group_members(conn, sorted(doc_ids))  # the stored (old) groups
            return doc_ids.union(*(story for story, _ in members.values()))

        affected = with_their_stories({*removed, *(doc_id for doc_id, _, _ in added)})
        candidates: set[str] = set()
        for _, data, _ in added:
            candidates |= Store.band_candidates(conn, band_keys(data))
        affected |= with_their_stories(candidates)
        finder = DuplicateFinder.from_fingerprints(Store.fingerprints(conn, affected))
        return rows_of(finder, affected)
