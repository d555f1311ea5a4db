"""Verify that the live generation of an index is whole: manifest, vectors, keywords and chunks agree."""

from __future__ import annotations

import numpy as np

from newsdesk.index import document_print
from newsdesk.reader import IndexReader


def check_index(reader: IndexReader) -> list[str]:
    """Everything wrong with the live generation, as sentences; an empty list means consistent."""
    problems: list[str] = []
    with reader.generation() as gen:
        conn, manifest = gen.conn, gen.manifest
        if (result := conn.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
            problems.append(f"SQLite integrity check failed: {result}")
        try:
            conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
        except Exception as err:  # raised as an SQLite error naming the corruption
            problems.append(f"keyword index is corrupt: {err}")
        docs = dict(conn.execute("SELECT doc_id, content_hash FROM docs"))
        chunk_ids = np.array([r[0] for r in conn.execute("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
        fts_ids = np.array([r[0] for r in conn.execute("SELECT rowid FROM chunks_fts ORDER BY rowid")], dtype=np.int64)
        sizes = dict(conn.execute("SELECT name, vectors FROM segments"))
        for key, actual in (("documents", len(docs)), ("chunks", len(chunk_ids)), ("vectors", sum(sizes.values()))):
            if manifest[key] != actual:
                problems.append(f"manifest says {manifest[key]} {key}, the index holds {actual}")
        if not np.array_equal(chunk_ids, fts_ids):
            problems.append("keyword index and chunk store hold different chunks")
        if len(chunk_ids) and chunk_ids[-1] >= manifest["next_chunk_id"]:
            problems.append("a chunk id is at or above next_chunk_id: ids could be reused")
        fingerprint = 0
        for doc_id, content_hash in docs.items():
            fingerprint ^= document_print(doc_id, content_hash)
        if f"{fingerprint:032x}" != manifest["fingerprint"]:
            problems.append("corpus fingerprint does not match the documents")
        for name, count in sizes.items():
            segment = gen.segments.get(name)
            if segment is None or segment.index.ntotal != count:
                problems.append(f"segment {name} should hold {count} vectors")
                continue
            live = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE segment = ?", (name,))]
            missing = np.setdiff1d(np.array(live, dtype=np.int64), segment.ids)
            if len(missing):
                problems.append(f"{len(missing)} chunks of segment {name} have no vector")
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
