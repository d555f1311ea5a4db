"""Verify that the live generation of an index is whole: manifest, vectors, keywords and chunks agree."""

from __future__ import annotations

import sqlite3

import numpy as np

from newsdesk.index import document_print
from newsdesk.reader import IndexReader
from newsdesk.vectors import read_segment


def check_index(reader: IndexReader) -> list[str]:
    """Everything wrong with the live generation, as sentences; an empty list means consistent.

    Damage that keeps the index from opening at all (an unreadable database or segment) is
    reported as a problem too; anything else that goes wrong here is a bug and is raised.
    """
    try:
        with reader.generation() as gen:
            return _check(gen)
    except sqlite3.DatabaseError as err:
        return [f"the database cannot be read ({err})"]
    except RuntimeError as err:  # FAISS: a segment file that is missing or damaged
        return [f"a vector segment cannot be read ({' '.join(str(err).split())[:200]})"]


def _check(gen) -> list[str]:
    problems: list[str] = []
    conn, manifest = gen.conn, gen.manifest
    if (result := conn.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
        problems.append(f"SQLite integrity check failed: {result}")
    docs = dict(conn.execute("SELECT doc_id, content_hash FROM docs"))
    chunk_ids = np.array([r[0] for r in conn.execute("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
    sizes = dict(conn.execute("SELECT name, vectors FROM segments"))
    for key, actual in (("documents", len(docs)), ("chunks", len(chunk_ids)), ("vectors", sum(sizes.values()))):
        if manifest[key] != actual:
            problems.append(f"manifest says {manifest[key]} {key}, the index holds {actual}")
    if len(chunk_ids) and chunk_ids[-1] >= manifest["next_chunk_id"]:
        problems.append("a chunk id is at or above next_chunk_id: ids could be reused")
    fingerprint = 0
    for doc_id, content_hash in docs.items():
        fingerprint ^= document_print(doc_id, content_hash)
    if f"{fingerprint:032x}" != manifest["fingerprint"]:
        problems.append("corpus fingerprint does not match the documents")
    for name, count in sizes.items():
        try:
            segment = read_segment(name, gen.folder / "segments")
        except (OSError, RuntimeError, ValueError) as err:
            problems.append(f"segment {name} cannot be read ({type(err).__name__}: {' '.join(str(err).split())[:120]})")
            continue
        if segment.size != count or len(segment.ids) != count:
            problems.append(f"segment {name} should hold {count} vectors, it holds {segment.size}")
            continue
        live = np.array([r[0] for r in conn.execute("SELECT id FROM chunks WHERE segment = ?", (name,))],
                        dtype=np.int64)
        missing = np.setdiff1d(live, segment.ids)
        if len(missing):
            problems.append(f"{len(missing)} chunks of segment {name} have no vector")
    in_keywords = np.array([i for i in gen.keywords.all_ids() if i < manifest["next_chunk_id"]], dtype=np.int64)
    pending = np.array([r[0] for r in conn.execute("SELECT id FROM dead WHERE keywords = 1")], dtype=np.int64)
    expected = np.union1d(chunk_ids, pending)
    if not np.array_equal(np.unique(in_keywords), expected):
        lacking = len(np.setdiff1d(chunk_ids, in_keywords))
        extra = len(np.setdiff1d(in_keywords, expected))
        problems.append(f"the keyword index and the chunk store disagree: {lacking} chunks have no keyword entry, "
                        f"{extra} keyword entries belong to no chunk")
    orphans = conn.execute(
        "SELECT count(*) FROM chunks c LEFT JOIN docs d ON d.doc_id = c.doc_id WHERE d.doc_id IS NULL").fetchone()[0]
    if orphans:
        problems.append(f"{orphans} chunks belong to no document")
    bad_spans = conn.execute(
        'SELECT count(*) FROM chunks c JOIN docs d ON d.doc_id = c.doc_id '
        'WHERE substr(d.text, c.start + 1, c."end" - c.start) != c.text').fetchone()[0]
    if bad_spans:
        problems.append(f"{bad_spans} chunks do not match their document text at their offsets")
    return problems
