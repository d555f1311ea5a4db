"""The copy and story groups an index stores, kept in step with its articles by the writer.

Readers look groups up in the index (one SQL query per question); only a writer holds a
`newsdesk.dedup.DuplicateFinder`, built from the stored fingerprints at the first change of an
update (0.5 s for 3,500 articles, 4.5 s for 33,500: docs/benchmarks.md, "Near-duplicates") and
kept for the rest of it. So a question needs neither the finder's memory (6.8 KB per article)
nor datasketch, whose import alone takes a second.

A change rewrites the rows of every article whose groups it can change: the removed or replaced
articles' old story groups and the added articles' new ones. A group's id is its smallest
doc_id, so the rows after any sequence of updates are the rows a rebuild would write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

Row = tuple[str, str, str]  # doc_id, copy group id, story group id


class GroupKeeper:
    def __init__(self, fingerprints: Callable[[], Iterable[tuple[str, bytes, str | None]]]):
        self._fingerprints = fingerprints
        self._finder = None

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
        finder = self.finder
        rows, gone = [], []
        for doc_id in sorted(doc_ids):
            story = finder.story(doc_id) if doc_id in finder else ()
            if len(story) < 2:
                gone.append(doc_id)
            else:
                rows.append((doc_id, finder.copy_group_id(doc_id), story[0]))
        return rows, gone
