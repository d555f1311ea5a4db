"""Near-duplicate articles: which articles are copies of one another, and which tell one story.

Two levels, because issue 13 asks two different things of them:

* **copies**: the same text run again, lightly edited (a wire story in several outlets, a
  headline tweak, a reworded sentence, an added boilerplate line). Retrieval collapses them into
  one citation that says "also reported by". Estimated Jaccard of the articles' word 5-shingles
  at least `COPY_THRESHOLD`.
* **story**: copies, plus versions of one text that were rewritten or updated (a new lede, a
  revised death toll, a paragraph added, background paragraphs reused in a follow-up). They are
  not collapsed (the newer one may carry the newer figure) but they are what "as of", "a newer
  article on this story exists" and timelines look at. Jaccard at least `STORY_THRESHOLD`, and
  published at most `STORY_DAYS` apart when both are dated.

Both are measured by `bench/dedup.py`; the figures and why these values are in
docs/benchmarks.md ("Near-duplicates (issue 13)"). What this does *not* find:

* two write-ups of one event that share no paragraphs (independent reporting, or one outlet's
  separate articles): they share almost no 5-word runs, so they are neither copies nor one
  story here. On RealTime QA that is most same-story pairs; finding them needs meaning (the
  index's embeddings, with dates), not shingles.
* a long article whose only change is a revised figure stays above the copy threshold: a
  Jaccard cannot tell "12 dead" from "19 dead" in 800 otherwise equal words. `newsdesk.story`
  therefore treats a copy from the *same* source as a newer version, not as another outlet.

Groups are the connected components of the pairs at each level. A group's id is its smallest
doc_id: a function of its members alone, so the groups after any sequence of adds and removes
are the groups `from_fingerprints` builds from the same articles, whatever the order (the
earliest-published member would be the nicer "original", but it needs dates the finder may not
have, and it moves when an older copy is indexed later; which member to *show* is
`newsdesk.story`'s choice).

Per article the index stores `fingerprint(text, title)`: 527 bytes. The finder, rebuilt from
them when the index opens (0.5 s for 3,500 articles, 4.5 s for 33,500), holds about 6.8 KB per
article; adding or removing one takes a tenth of a millisecond.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from newsdesk.errors import IndexMismatch
from newsdesk.load import published_day

# Word 5-shingles: one edited word removes at most 5 of them, so a lightly edited copy keeps a
# high Jaccard, while unrelated articles share almost none. bench/dedup.py measured 3, 5 and 7:
# 3 keeps light copies a little higher (5th percentile 0.79 against 0.72) but doubles what
# unrelated articles share (at most 0.016 against 0.008), which matters at the low story
# threshold; 7 loses copies. The thresholds below are tuned for 5.
SHINGLE_WORDS = 5
# 128 permutations: the standard error of the estimated Jaccard is at most 0.044 (at J = 0.5),
# which is small against the gap between copies and story versions; 256 would double the
# stored bytes and the hashing for a precision the thresholds do not need.
NUM_PERM = 128
# Fixed, so that fingerprints made at different times (and rebuilt) compare.
SEED = 13
# Chosen on the tune parts of bench/dedup.py (`choose` there says how and why); the figures are
# in docs/benchmarks.md, "Near-duplicates (issue 13)".
COPY_THRESHOLD = 0.55
STORY_THRESHOLD = 0.1
STORY_DAYS = 60
# LSH bands of one row each: two articles become candidates when any of 20 of their 128
# min-hashes agree, with probability 1 - (1 - J)^20 (0.88 at J = 0.1, 0.99 at 0.2, 1.0 for
# copies). datasketch's optimiser would pick 44 bands of 2 rows for J = 0.2: that finds fewer
# low-J pairs (132 of 145 labelled pairs above 0.1, against 144) and holds twice the memory (a
# Python set per band per article). Unrelated news articles share almost no 5-shingles, so
# one-row bands still propose about one candidate per query.
LSH_BANDS = (20, 1)

_FORMAT = 1
_HEADER = struct.Struct("<BB")  # format version, shingle length
_BYTEORDER = "<"  # fixed, so stored fingerprints read the same on any machine
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The words of `text`, case-folded, NFKC-normalized: punctuation, quote styles, line breaks
    and Markdown marks do not count, so re-typeset copies compare equal."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def shingles(text: str, k: int = SHINGLE_WORDS) -> set[bytes]:
    """The distinct runs of `k` consecutive words; a text of fewer words is one shingle."""
    w = words(text)
    if not w:
        return set()
    if len(w) <= k:
        return {" ".join(w).encode()}
    return {" ".join(w[i:i + k]).encode() for i in range(len(w) - k + 1)}


@lru_cache(maxsize=1)
def _permutations() -> np.ndarray:
    # Made once: generating 128 permutations costs more than hashing a short article.
    return MinHash(num_perm=NUM_PERM, seed=SEED).permutations


def body(text: str, title: str | None = None) -> str:
    """The text without its headline: when the first non-empty line is the title (a Markdown
    heading, or a feed that repeats it), it is left out. Every outlet rewrites the headline of
    a wire story it runs, and in a short story the headline alone is a tenth of the shingles."""
    if not title:
        return text
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or words(lines[first]) != words(title):
        return text
    return "\n".join(lines[first + 1:])


def sketch(text: str, k: int = SHINGLE_WORDS) -> LeanMinHash:
    """The MinHash of the text's word shingles (datasketch, affine32 scheme)."""
    m = MinHash(num_perm=NUM_PERM, seed=SEED, permutations=_permutations(), scheme="affine32")
    m.update_batch(shingles(text, k))
    return LeanMinHash(m)


def fingerprint(text: str, title: str | None = None) -> bytes:
    """What the index stores per article to find its near-duplicates later (527 bytes): the
    MinHash of its body (`body(text, title)`)."""
    lean = sketch(body(text, title))
    buf = bytearray(_HEADER.size + lean.bytesize(_BYTEORDER))
    _HEADER.pack_into(buf, 0, _FORMAT, SHINGLE_WORDS)
    lean.serialize(memoryview(buf)[_HEADER.size:], _BYTEORDER)
    return bytes(buf)


def read_fingerprint(data: bytes) -> LeanMinHash:
    """The MinHash of a stored fingerprint. Raises IndexMismatch for one made another way (by
    another version of newsdesk): it would compare as unrelated to every new one."""
    try:
        version, k = _HEADER.unpack_from(data, 0)
        lean = LeanMinHash.deserialize(memoryview(data)[_HEADER.size:], _BYTEORDER)
    except (struct.error, ValueError, TypeError):
        raise IndexMismatch("a stored near-duplicate fingerprint cannot be read; rebuild the index "
                            "(newsdesk index --rebuild)") from None
    if (version, k, lean.seed, len(lean), lean.scheme) != (_FORMAT, SHINGLE_WORDS, SEED, NUM_PERM, "affine32"):
        raise IndexMismatch("the near-duplicate fingerprints were made by another version of newsdesk; "
                            "rebuild the index (newsdesk index --rebuild)")
    return lean


def band_keys(data: bytes) -> list[tuple[int, int]]:
    """(band, value) of a stored fingerprint's LSH bands. Two articles are candidates exactly when
    they share one, as in the finder's LSH, so an index that stores them finds an article's
    candidates with a lookup instead of a finder of every article (`newsdesk.groups`)."""
    bands, rows = LSH_BANDS
    if rows != 1:
        raise ValueError("band_keys needs bands of one row each")  # a key would be a tuple of values
    return [(band, int(value)) for band, value in enumerate(read_fingerprint(data).hashvalues[:bands])]


def jaccard(a: bytes, b: bytes) -> float:
    """The estimated Jaccard similarity of two fingerprinted articles' shingles."""
    return read_fingerprint(a).jaccard(read_fingerprint(b))


@dataclass(frozen=True)
class Link:
    """A near-duplicate: another article, the estimated Jaccard, and whether it is a copy."""

    doc_id: str
    jaccard: float
    copy: bool


class DuplicateFinder:
    """Copy groups and story groups of the indexed articles, kept up to date one article at a time.

    `add` costs one LSH query (`bands` bucket look-ups) and a Jaccard check of each candidate;
    `remove` re-splits only the removed article's groups. Neither reads the other articles, so
    neither grows with the corpus. Only what links articles is kept per article beyond its
    MinHash and LSH entries: an article without near-duplicates costs no group or link entries.
    Not thread-safe: the index's writer owns it.
    """

    def __init__(self, *, copy_threshold: float = COPY_THRESHOLD, story_threshold: float = STORY_THRESHOLD,
                 story_days: int | None = STORY_DAYS, bands: tuple[int, int] = LSH_BANDS) -> None:
        if not 0.0 < story_threshold <= copy_threshold <= 1.0:
            raise ValueError("need 0 < story_threshold <= copy_threshold <= 1")
        self.copy_threshold = copy_threshold
        self.story_threshold = story_threshold
        self.story_days = story_days
        self._lsh = MinHashLSH(num_perm=NUM_PERM, params=bands)
        self._sketches: dict[str, LeanMinHash] = {}
        self._days: dict[str, date] = {}  # dated articles only
        self._links: dict[str, dict[str, Link]] = {}  # articles with near-duplicates only
        self._copies = _Components()
        self._stories = _Components()

    @classmethod
    def from_fingerprints(cls, items: Iterable[tuple[str, bytes, str | None]], **settings: Any) -> DuplicateFinder:
        """The finder of stored (doc_id, fingerprint, published) rows: the same groups as adding
        them one by one, in any order (a pair is linked or not by its two articles alone)."""
        finder = cls(**settings)
        for doc_id, data, published in items:
            finder.add(doc_id, data, published)
        return finder

    def __len__(self) -> int:
        return len(self._sketches)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._sketches

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._sketches))

    # -- changes ---------------------------------------------------------------------------
    def add(self, doc_id: str, data: bytes, published: str | None = None) -> tuple[Link, ...]:
        """Index an article (replacing an earlier version of the same doc_id); its links."""
        lean = read_fingerprint(data)  # first: a bad fingerprint changes nothing
        if doc_id in self._sketches:
            self.remove(doc_id)
        day = published_day(published)
        links = self._query(lean, day, exclude=doc_id)
        self._sketches[doc_id] = lean
        if day is not None:
            self._days[doc_id] = day
        if not lean.is_empty():  # no words: like nothing, and so not like everything empty
            self._lsh.insert(doc_id, lean, check_duplication=False)
        for link in links:
            self._links.setdefault(doc_id, {})[link.doc_id] = link
            self._links.setdefault(link.doc_id, {})[doc_id] = Link(doc_id, link.jaccard, link.copy)
            self._stories.union(doc_id, link.doc_id)
            if link.copy:
                self._copies.union(doc_id, link.doc_id)
        return links

    def remove(self, doc_id: str) -> None:
        """Forget an article; its groups split where it was the only bridge. KeyError if unknown."""
        del self._sketches[doc_id]
        self._days.pop(doc_id, None)
        if doc_id in self._lsh:
            self._lsh.remove(doc_id)
        for other in self._links.pop(doc_id, {}):
            del self._links[other][doc_id]
            if not self._links[other]:
                del self._links[other]
        self._stories.remove(doc_id, lambda a: self._links.get(a, {}).keys())
        self._copies.remove(doc_id, lambda a: (b for b, link in self._links.get(a, {}).items() if link.copy))

    # -- questions -------------------------------------------------------------------------
    def similar(self, data: bytes, published: str | None = None) -> tuple[Link, ...]:
        """The indexed articles a (new) fingerprinted text is a copy or a story version of, most
        similar first."""
        return self._query(read_fingerprint(data), published_day(published), exclude=None)

    def links(self, doc_id: str) -> tuple[Link, ...]:
        """The direct near-duplicates of an indexed article, most similar first."""
        self._known(doc_id)
        return tuple(sorted(self._links.get(doc_id, {}).values(), key=lambda link: (-link.jaccard, link.doc_id)))

    def copies(self, doc_id: str) -> tuple[str, ...]:
        """The article's copy group (itself included), sorted by doc_id."""
        return self._copies.members(self._known(doc_id))

    def story(self, doc_id: str) -> tuple[str, ...]:
        """The article's story group (its copies and other versions, itself included), sorted."""
        return self._stories.members(self._known(doc_id))

    def copy_group_id(self, doc_id: str) -> str:
        """What retrieval collapses on: equal for two articles exactly when they are in one copy group."""
        return self.copies(doc_id)[0]

    def story_id(self, doc_id: str) -> str:
        return self.story(doc_id)[0]

    def groups(self, level: str = "copies") -> list[tuple[str, ...]]:
        """Every group of two or more articles at `level` ("copies" or "story"), sorted."""
        components = {"copies": self._copies, "story": self._stories}[level]
        return sorted(components.groups())

    # -- inside ----------------------------------------------------------------------------
    def _known(self, doc_id: str) -> str:
        if doc_id not in self._sketches:
            raise KeyError(doc_id)
        return doc_id

    def _query(self, lean: LeanMinHash, day: date | None, exclude: str | None) -> tuple[Link, ...]:
        if lean.is_empty() or not self._sketches:
            return ()
        found = []
        for other in self._lsh.query(lean):
            if other == exclude:
                continue
            j = lean.jaccard(self._sketches[other])
            if j >= self.copy_threshold:
                found.append(Link(other, j, True))
            elif j >= self.story_threshold and self._close(day, self._days.get(other)):
                found.append(Link(other, j, False))
        return tuple(sorted(found, key=lambda link: (-link.jaccard, link.doc_id)))

    def _close(self, a: date | None, b: date | None) -> bool:
        """Versions of a story appear within days or weeks; an annual explainer re-run shares
        its paragraphs with last year's but is not the same story. Undated: no limit."""
        if self.story_days is None or a is None or b is None:
            return True
        return abs((a - b).days) <= self.story_days


class _Components:
    """Connected components under edge additions (merge the smaller into the larger) and node
    removals (re-split only the removed node's component). A node in no edge is in no set."""

    def __init__(self) -> None:
        self._of: dict[str, set[str]] = {}  # node -> its component, one set object per component

    def union(self, a: str, b: str) -> None:
        ga, gb = self._of.get(a) or {a}, self._of.get(b) or {b}
        if ga is gb:
            return
        if len(ga) < len(gb):
            ga, gb = gb, ga
        ga |= gb
        for node in gb:
            self._of[node] = ga
        self._of[a] = self._of[b] = ga  # either may have been alone, in no set yet

    def remove(self, node: str, neighbours: Callable[[str], Iterable[str]]) -> None:
        group = self._of.pop(node, None)
        if group is None:
            return
        group.discard(node)
        left = set(group)
        while left:
            start = left.pop()
            part, todo = {start}, [start]
            while todo:
                for nxt in neighbours(todo.pop()):
                    if nxt in left:
                        left.discard(nxt)
                        part.add(nxt)
                        todo.append(nxt)
            if len(part) == 1:
                self._of.pop(start, None)
            else:
                for member in part:
                    self._of[member] = part

    def members(self, node: str) -> tuple[str, ...]:
        group = self._of.get(node)
        return tuple(sorted(group)) if group else (node,)

    def groups(self) -> list[tuple[str, ...]]:
        seen: dict[int, set[str]] = {}
        for group in self._of.values():
            seen.setdefault(id(group), group)
        return [tuple(sorted(g)) for g in seen.values()]
