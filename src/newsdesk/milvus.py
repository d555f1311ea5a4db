"""The index on Milvus (issue 11): a cluster, a standalone server or Milvus Lite, one client API.

    milvus-lite:///path/to/index.db            Milvus Lite, embedded in this process (one process)
    milvus://host:19530/news                   a server or cluster; `news` prefixes the collections
    milvuss://host:443/news                    the same over TLS
    ...?ingest=host-a                          this host's ingest part (see "Ingest parts" below)
    ...?consistency=Bounded                    what readers ask Milvus for (default Strong)
    ...?db=name                                a Milvus database other than "default"

What is stored. An index is a *build*: four collections named `<prefix>_<build>_<what>`, plus one
`<prefix>_meta` collection that says which build is current.

    <prefix>_meta            key -> JSON: `current` (the build readers use), `building` (a rebuild
                             in progress), `lock:<part>` (writer leases), `<build>:manifest`,
                             `<build>:part:<part>` (each ingest part's counters and generation)
    <build>_chunks           one row per chunk: the vector (FLOAT_VECTOR, metric IP), the stems
                             (newsdesk's own, `newsdesk.keywords.terms`, of the text and the title)
                             feeding Milvus's BM25 function into a SPARSE_FLOAT_VECTOR, the text,
                             offsets, sentences and int8 sentence vectors, and the document's
                             metadata (day, source, title...) so one search returns all a passage is
    <build>_docs             one row per document: its *version* and metadata; the switch (below)
    <build>_kv               everything else, keyed by string: the text of each document version
                             (in pieces: a VARCHAR holds at most 65,535 bytes), each part's corpus
                             files and problems, per-part document frequencies of stems, source
                             counts, overlong sentence vectors, markers of text due for deletion,
                             and each document's near-duplicate fingerprint and copy/story group
                             (`newsdesk.groups`; derived data, rewritten by each update)

Searching. Dense and keyword (BM25) are two Milvus searches with the same filter expression
(`day`, `source_lc`, `doc_id` scalar fields); newsdesk fuses them itself (`newsdesk.retrieve.fuse`)
so rankings, weights and the answerer's features are the embedded index's. Milvus's own hybrid
search with RRF would fuse with its k=60 and return no per-ranking scores, which the answerer uses.

Never half an article. Milvus has no multi-row transactions, so the document row is the switch: a
changed article's new text and chunks are written under a new version first, then its `docs` row
is upserted to that version, then the old chunks are deleted. Readers keep only chunks whose
version is their document's current one (one primary-key lookup for the few documents of a
result), and read the text of that version, which is kept `TEXT_GRACE` seconds after it is
replaced. So a question sees the old article or the new one, whole, or (for one question, with
relaxed consistency, see docs/scale.md) neither. Removals delete the `docs` row first.

Crashes. Each batch first records itself as pending in its part's row (and reserves its chunk
ids); the part row written at its end is its commit. A writer that finds a batch still pending
reconciles the part: it drops chunks and texts no document row refers to and recounts the part's
documents, chunks, fingerprint, stems and sources from what is stored. The corpus files the batch
had read are not recorded, so the next scan reads them again and finds them unchanged.

Ingest parts. Several hosts can write one index, each a disjoint part of the corpus, named by
`?ingest=` (default `main`): each part has its own writer lease, file table, problems, counters
and chunk-id range; document ids are one namespace, so a document another part holds is refused
as a duplicate. Readers see all parts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from newsdesk.backend import Batch, Signature
from newsdesk.errors import (IndexBusy, IndexMismatch, IndexMissing, IndexProblem, IndexUnreachable, IndexWriteFailed,
                             NewsdeskError, UsageError)
from newsdesk.groups import GroupKeeper
from newsdesk.keyword_index import UNDATED, day_number
from newsdesk.keywords import question_terms, terms
from newsdesk.load import Skipped
from newsdesk.results import Report
from newsdesk.store import FORMAT_VERSION, ChunkRow, DocText, Filters

log = logging.getLogger("newsdesk.milvus")

# This module's own storage format; the manifest's "format" (the embedded index's number, checked
# by check_compatible) is reported as current while this one matches.
MILVUS_FORMAT = 1
INSTALL = "pip install 'newsdesk[milvus]'"

# Milvus limits: a VARCHAR holds at most 65,535 bytes.
VARCHAR_BYTES = 65535
PIECE_CHARS = 16000  # text pieces: at most 4 bytes a character, so always under VARCHAR_BYTES
ID_BYTES = 2048  # document ids (paths relative to the corpus, plus "#n" for records)
PATH_BYTES = 4096
KEY_BYTES = 8192
SVEC_INLINE = VARCHAR_BYTES  # base64 sentence vectors longer than this are kept in kv, in pieces
IN_SLICE = 500  # values per `field in [...]` expression
WRITE_ROWS = 512  # rows per insert or upsert request

CONNECT_SECONDS = 5.0
READ_SECONDS = 60.0
WRITE_SECONDS = 300.0
LEASE_SECONDS = 60.0  # a writer lease lasts this long unless renewed (every third of it)
LEASE_SETTLE = 0.5  # after writing a lease, wait this long and read it back (servers only)
TEXT_GRACE = 60.0  # a replaced document text stays readable this long (a question in flight reads it)
# Milvus Lite 3.2 swaps in an empty memtable before the segment it flushes is visible, so a read in
# one thread during a flush in another misses rows that exist. Reads of rows that must exist look
# for the missing ones again after these pauses (seconds); a flush of a small index takes a few ms.
REREAD_PAUSES = (0.02, 0.1, 0.5)
RETIRE_GRACE = 30.0  # a build replaced by a rebuild is dropped by the first writer this long after
PART_BITS = 40  # chunk id = part number << PART_BITS | sequence number within the part
CONSISTENCY = ("Strong", "Bounded", "Session", "Eventually")

SEP = "\x1f"  # joins the parts of string keys (never in a path or a stem)

# One lock per process and index: Milvus Lite's engine takes one writer per collection at a time,
# and the lease thread writes beside the update.
_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(uri: str) -> threading.RLock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(uri, threading.RLock())


# -- locations --------------------------------------------------------------------------------------
class Target:
    """A parsed index location: what to connect to, the collections' prefix, this host's part."""

    def __init__(self, location: str):
        self.location = location
        scheme, _, rest = location.partition("://")
        rest, _, query = rest.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        unknown = sorted(set(params) - {"ingest", "consistency", "db", "collection"})
        if unknown:
            raise UsageError(f"{location}: unknown option(s) {', '.join(unknown)}; the options are ingest, "
                             "consistency, db and collection")
        self.lite = scheme == "milvus-lite"
        self.db = params.get("db", "")
        if self.lite:
            if not rest or not rest.endswith(".db"):
                raise UsageError(f"{location}: a Milvus Lite index is a file name ending in .db, e.g. "
                                 "milvus-lite:///srv/news/index.db")
            self.path = Path(rest).expanduser().resolve()
            self.uri = str(self.path)
            self.address = str(self.path)
            self.prefix = params.get("collection", "newsdesk")
        elif scheme in ("milvus", "milvuss"):
            parsed = urlsplit(f"//{rest}")
            try:
                port = parsed.port or (443 if scheme == "milvuss" else 19530)
            except ValueError:
                raise UsageError(f"{location}: the port must be a number, e.g. milvus://localhost:19530/news") from None
            host = parsed.hostname or "localhost"
            self.path = None
            self.uri = f"{'https' if scheme == 'milvuss' else 'http'}://{host}:{port}"
            self.address = f"{host}:{port}"
            self.prefix = parsed.path.strip("/") or params.get("collection", "newsdesk")
        else:
            raise UsageError(f"{location} is not a Milvus location: use milvus://host:19530/name, "
                             "milvuss://host:443/name or milvus-lite:///path/to/file.db")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,120}", self.prefix):
            raise UsageError(f"{location}: {self.prefix!r} cannot name Milvus collections: use letters, digits and "
                             "underscores, starting with a letter")
        self.ingest = params.get("ingest", "main")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.ingest):
            raise UsageError(f"{location}: the ingest part {self.ingest!r} must be 1 to 64 letters, digits, '.', '_' "
                             "or '-'")
        self.consistency = params.get("consistency", "Strong").capitalize()
        if self.consistency not in CONSISTENCY:
            raise UsageError(f"{location}: consistency must be one of {', '.join(CONSISTENCY)}, not "
                             f"{params['consistency']!r}")
        # Where stats and messages say the index is: the location without this host's own options.
        shared = "&".join(f"{k}={params[k]}" for k in ("collection", "db") if k in params)
        self.index_name = f"{scheme}://{rest}" + (f"?{shared}" if shared else "")


# -- errors -----------------------------------------------------------------------------------------
_AUTH = re.compile(r"auth|credential|password|permission|privilege|unauthenticated|api.?key|token", re.I)


def _grpc_code(err: BaseException) -> str:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        code = getattr(err, "code", None)
        if callable(code):
            try:
                return str(getattr(code(), "name", code()))
            except Exception:  # noqa: BLE001 - not a gRPC error after all
                pass
        err = err.__cause__ or err.__context__
    return ""


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())[:200]


def translate(err: Exception, target: Target, doing: str) -> NewsdeskError:
    """A Milvus or gRPC error as the one line a user sees (doing: "read" or "write")."""
    from pymilvus.exceptions import MilvusException

    code = _grpc_code(err)
    message = getattr(err, "message", None) or str(err)
    status = getattr(err, "code", None) if isinstance(err, MilvusException) else None
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or status in (3, 1400, 1401, 1402, 1800) or (
            isinstance(err, MilvusException) and _AUTH.search(message) and "Fail connecting" not in message):
        return IndexUnreachable(
            f"Milvus at {target.address} refused the credentials ({_one_line(message)[:80]}): set "
            "NEWSDESK_MILVUS_TOKEN to user:password or an API key allowed to use the "
            f"{target.prefix}_* collections")
    if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED") or status == 2 or "Fail connecting" in message:
        return IndexUnreachable(
            f"cannot reach Milvus at {target.address}: is it running? Start it (or check the address in --index or "
            "NEWSDESK_INDEX) and try again")
    if doing == "write":
        return IndexWriteFailed(
            f"Milvus at {target.address} refused a write ({_one_line(message)}). Nothing committed is lost: run "
            "`newsdesk index` again, and `newsdesk check` if it keeps failing")
    return IndexProblem(f"Milvus at {target.address} could not answer ({_one_line(message)}); run `newsdesk check "
                        f"--index {target.index_name}`")


def _quiet_pymilvus() -> None:
    """pymilvus logs every failed call with its traceback; newsdesk says what went wrong in one line."""
    logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
    logging.getLogger("pymilvus.milvus_client.milvus_client").setLevel(logging.ERROR)
    logging.getLogger("pymilvus.orm.iterator").setLevel(logging.ERROR)
    logging.getLogger("pymilvus.client.search_iterator").setLevel(logging.ERROR)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("pymilvus") and "iterator" in name:
            logging.getLogger(name).setLevel(logging.ERROR)


# -- expressions ------------------------------------------------------------------------------------
def quote(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t"))
    return f'"{escaped}"'


def in_list(field: str, values: Iterable[Any]) -> str:
    items = ", ".join(quote(v) if isinstance(v, str) else str(int(v)) for v in values)
    return f"{field} in [{items}]"


def filter_expr(filters: Filters) -> str:
    """newsdesk's filters as a Milvus expression over the `day`, `source_lc` and `doc_id` fields
    (chunks and docs carry all three). An article without a date matches no date range."""
    clauses = []
    if filters.since or filters.until:
        low = day_number(filters.since) if filters.since else UNDATED + 1
        high = day_number(filters.until) if filters.until else 2**31 - 1
        clauses.append(f"day >= {low} and day <= {high}")
    if filters.source:
        clauses.append(f"source_lc == {quote(filters.source.lower())}")
    if filters.doc_ids:
        clauses.append(in_list("doc_id", filters.doc_ids))
    return " and ".join(f"({c})" for c in clauses)


def _slices(values: Sequence[Any], size: int = IN_SLICE) -> Iterator[Sequence[Any]]:
    for at in range(0, len(values), size):
        yield values[at:at + size]


def _fit(text: str | None, limit: int = VARCHAR_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (for titles and URLs; never for quoted text)."""
    text = text or ""
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def part_number(name: str) -> int:
    """The part's chunk-id range (22 bits, never 0), from its name: hosts need not coordinate."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % (2**22 - 1) + 1


def fit_stems(body: list[str], title: list[str]) -> tuple[list[str], list[str]]:
    """A chunk's stems and its title's, cut to what one VARCHAR holds (the body's first: a title
    can be a whole paragraph when an article has no headline line)."""
    room = VARCHAR_BYTES
    kept: list[list[str]] = []
    for words in (body, title):
        out = []
        for w in words:
            size = _bytes(w) + 1
            if size > room:
                break
            out.append(w)
            room -= size
        kept.append(out)
    return kept[0], kept[1]


def text_pieces(text: str, line_map: Sequence[Sequence[int]]) -> list[str]:
    blob = json.dumps({"text": text, "line_map": [list(p) for p in line_map]}, ensure_ascii=False)
    return [blob[at:at + PIECE_CHARS] for at in range(0, len(blob), PIECE_CHARS)] or [""]


def _load_released(client: Any, prefix: str) -> None:
    """Milvus Lite brings an index's collections back *released* in a new process (a server keeps
    them loaded): load this index's, or the first query says "call load() first"."""
    for name in client.list_collections():
        if name.startswith(f"{prefix}_"):
            state = client.get_load_state(name).get("state")
            if "NotLoad" in str(state):
                client.load_collection(name)


# -- the connection ---------------------------------------------------------------------------------
class Connection:
    """One MilvusClient and the collection names of an index; every call goes through `call`."""

    def __init__(self, target: Target, token: str):
        self.target = target
        self.token = token
        self._client: Any = None
        self._guard = threading.Lock()
        self.write_lock = _write_lock(target.uri + "|" + target.db)

    @property
    def client(self) -> Any:
        with self._guard:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise IndexUnreachable(f"Milvus support is not installed: run {INSTALL}") from None
        _quiet_pymilvus()
        target = self.target
        if target.lite:
            try:
                import milvus_lite  # noqa: F401
            except ImportError:
                raise IndexUnreachable(f"Milvus Lite is not installed: run {INSTALL}") from None
            target.path.parent.mkdir(parents=True, exist_ok=True)
            if _lite_in_use(target.path):
                raise IndexBusy(
                    f"{target.path} is open in another process, and Milvus Lite serves one process: stop that "
                    "process, or serve the index with a Milvus server and use milvus://host:19530/name from both "
                    "(docs/scale.md)")
        kwargs: dict[str, Any] = {"uri": target.uri, "timeout": CONNECT_SECONDS}
        if self.token:
            kwargs["token"] = self.token
        if target.db:
            kwargs["db_name"] = target.db
        try:
            client = MilvusClient(**kwargs)
            if target.lite:
                _load_released(client, target.prefix)
            return client
        except Exception as err:  # noqa: BLE001 - every way a connection fails is one line
            raise translate(err, target, "read") from None

    def call(self, method: str, *args: Any, doing: str = "read", **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", WRITE_SECONDS if doing == "write" else READ_SECONDS)
        client = self.client
        try:
            if doing == "write":
                with self.write_lock:
                    return getattr(client, method)(*args, **kwargs)
            return getattr(client, method)(*args, **kwargs)
        except NewsdeskError:
            raise
        except Exception as err:  # noqa: BLE001
            if _is_milvus_error(err):
                raise translate(err, self.target, doing) from None
            raise

    def close(self) -> None:
        with self._guard:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass
                self._client = None

    # -- names ---------------------------------------------------------------------------------
    @property
    def meta(self) -> str:
        return f"{self.target.prefix}_meta"

    def name(self, build: str, what: str) -> str:
        return f"{self.target.prefix}_{build}_{what}"

    # -- helpers -------------------------------------------------------------------------------
    def query_all(self, collection: str, filter: str, fields: list[str], level: str = "Strong",
                  batch: int = 2000) -> Iterator[dict]:
        """Every row matching `filter`, in batches (a plain query is capped at 16,384 rows)."""
        iterator = self.call("query_iterator", collection, batch_size=batch, filter=filter, output_fields=fields,
                             consistency_level=level)
        try:
            while True:
                try:
                    rows = iterator.next()
                except Exception as err:  # noqa: BLE001
                    if _is_milvus_error(err):
                        raise translate(err, self.target, "read") from None
                    raise
                if not rows:
                    return
                yield from rows
        finally:
            iterator.close()

    def query_in(self, collection: str, field: str, values: Sequence[Any], fields: list[str], *, level: str,
                 extra: str = "", slice_size: int = IN_SLICE) -> list[dict]:
        out: list[dict] = []
        values = list(dict.fromkeys(values))
        for part in _slices(values, slice_size):
            expr = in_list(field, part) + (f" and ({extra})" if extra else "")
            out += self.call("query", collection, filter=expr, output_fields=fields, consistency_level=level)
        return out

    def get(self, collection: str, ids: Sequence[Any], fields: list[str], *, level: str,
            expect: str = "", pauses: Sequence[float] = REREAD_PAUSES) -> list[dict]:
        """The rows with these primary keys. With `expect` (the key field, which must be in
        `fields`), keys not found are read again after each of `pauses` (see REREAD_PAUSES)."""
        out: list[dict] = []
        ids = list(dict.fromkeys(ids))
        for part in _slices(ids, 1000):
            out += self.call("get", collection, ids=list(part), output_fields=fields, consistency_level=level)
        for pause in pauses if expect else ():
            found = {r[expect] for r in out}
            missing = [i for i in ids if i not in found]
            if not missing:
                break
            time.sleep(pause)
            out += self.get(collection, missing, fields, level=level)
        return out

    def insert(self, collection: str, rows: list[dict], *, upsert: bool = False) -> None:
        method = "upsert" if upsert else "insert"
        for part in _slices(rows, WRITE_ROWS):
            self.call(method, collection, list(part), doing="write")

    def delete(self, collection: str, ids: Sequence[Any]) -> None:
        for part in _slices(list(dict.fromkeys(ids)), 1000):
            self.call("delete", collection, ids=list(part), doing="write")

    def count(self, collection: str, filter: str, level: str) -> int:
        rows = self.call("query", collection, filter=filter, output_fields=["count(*)"], consistency_level=level)
        return int(rows[0]["count(*)"]) if rows else 0


def _is_milvus_error(err: BaseException) -> bool:
    try:
        from pymilvus.exceptions import MilvusException
    except ImportError:
        return False
    if isinstance(err, MilvusException):
        return True
    return type(err).__module__.startswith("grpc") or _grpc_code(err) != ""


def _lite_in_use(path: Path) -> bool:
    """Whether another process holds the Milvus Lite data folder (it takes an flock on LOCK)."""
    try:
        from milvus_lite.server_manager import server_manager_instance

        if str(path) in getattr(server_manager_instance, "_servers", {}):
            return False  # this process serves it already
    except ImportError:
        return False
    lock = path / "LOCK"
    if not lock.exists():
        return False
    import fcntl

    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


# -- schemas ----------------------------------------------------------------------------------------
def _vector_index(conn: Connection) -> tuple[str, dict]:
    # Milvus Lite: exact search, like the embedded index below its HNSW threshold. A server:
    # AUTOINDEX, Milvus's own choice of graph index and parameters.
    return ("FLAT", {}) if conn.target.lite else ("AUTOINDEX", {})


def _placeholder(schema: Any, index: Any) -> None:
    """Milvus wants a vector field in every collection: a 2-dimensional one nothing searches."""
    from pymilvus import DataType

    schema.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
    index.add_index(field_name="_v", index_type="FLAT", metric_type="L2")


def _create(conn: Connection, name: str, schema: Any, index: Any) -> None:
    """A collection with its indexes, loaded. Its indexes are created without pymilvus's wait
    (it polls every 0.5 s, per index): on an empty collection there is nothing to build."""
    conn.call("create_collection", name, schema=schema, consistency_level="Strong", doing="write")
    conn.call("create_index", name, index, sync=False, doing="write")
    conn.call("load_collection", name, doing="write")


def create_meta(conn: Connection) -> None:
    from pymilvus import DataType

    client = conn.client
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=512)
    schema.add_field("value", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    index = client.prepare_index_params()
    _placeholder(schema, index)
    _create(conn, conn.meta, schema, index)


def create_build(conn: Connection, build: str, dim: int) -> None:
    from pymilvus import DataType, Function, FunctionType

    client = conn.client
    V = DataType.VARCHAR
    # chunks
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", V, max_length=ID_BYTES)
    schema.add_field("version", V, max_length=128)
    schema.add_field("part", V, max_length=64)
    schema.add_field("seq", DataType.INT64)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    schema.add_field("text", V, max_length=VARCHAR_BYTES)
    schema.add_field("long_text", DataType.BOOL)  # text over 65,535 bytes: read from the document
    schema.add_field("stems", V, max_length=VARCHAR_BYTES, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})
    schema.add_field("title_terms", DataType.INT64)  # how many of `stems` (at the end) are the title's
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dim))
    schema.add_field("sentences", DataType.JSON)
    schema.add_field("sentence_vectors", V, max_length=VARCHAR_BYTES)  # base64 of the int8 blob
    schema.add_field("svec_parts", DataType.INT64)  # >0: the blob is in kv, in this many pieces
    schema.add_field("day", DataType.INT64)
    schema.add_field("source_lc", V, max_length=1024)
    schema.add_field("source", V, max_length=1024)
    schema.add_field("title", V, max_length=VARCHAR_BYTES)
    schema.add_field("url", V, max_length=VARCHAR_BYTES)
    schema.add_field("published", V, max_length=64)
    schema.add_function(Function(name="stems_bm25", function_type=FunctionType.BM25, input_field_names=["stems"],
                                 output_field_names=["sparse"]))
    index = client.prepare_index_params()
    kind, params = _vector_index(conn)
    index.add_index(field_name="vector", index_type=kind, metric_type="IP", params=params)
    # tantivy's BM25 constants, which the embedded index uses (Milvus defaults to k1 1.5... 1.2 here).
    index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": 1.2, "bm25_b": 0.75})
    for name in ("doc_id", "part", "day", "source_lc"):
        index.add_index(field_name=name, index_type="INVERTED")
    _create(conn, conn.name(build, "chunks"), schema, index)
    # docs
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("doc_id", V, is_primary=True, max_length=ID_BYTES)
    schema.add_field("version", V, max_length=128)
    schema.add_field("content_hash", V, max_length=128)
    schema.add_field("part", V, max_length=64)
    schema.add_field("source_path", V, max_length=PATH_BYTES)
    schema.add_field("title", V, max_length=VARCHAR_BYTES)
    schema.add_field("url", V, max_length=VARCHAR_BYTES)
    schema.add_field("published", V, max_length=64)
    schema.add_field("source", V, max_length=1024)
    schema.add_field("source_lc", V, max_length=1024)
    schema.add_field("day", DataType.INT64)
    schema.add_field("authors", DataType.JSON)
    schema.add_field("offsets_in", V, max_length=32)
    schema.add_field("pieces", DataType.INT64)
    schema.add_field("chunks", DataType.INT64)
    index = client.prepare_index_params()
    _placeholder(schema, index)
    for name in ("part", "source_path", "day", "source_lc"):
        index.add_index(field_name=name, index_type="INVERTED")
    _create(conn, conn.name(build, "docs"), schema, index)
    # kv
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", V, is_primary=True, max_length=KEY_BYTES)
    schema.add_field("kind", V, max_length=16)
    schema.add_field("part", V, max_length=64)
    schema.add_field("owner", V, max_length=KEY_BYTES)
    schema.add_field("num", DataType.INT64)
    schema.add_field("value", V, max_length=VARCHAR_BYTES)
    index = client.prepare_index_params()
    _placeholder(schema, index)
    for name in ("kind", "part", "owner"):
        index.add_index(field_name=name, index_type="INVERTED")
    _create(conn, conn.name(build, "kv"), schema, index)


BUILD_COLLECTIONS = ("chunks", "docs", "kv")
ZERO2 = [0.0, 0.0]


def kv_row(kind: str, key: str, *, part: str = "", owner: str = "", num: int = 0, value: str = "") -> dict:
    return {"key": f"{kind}{SEP}{key}", "kind": kind, "part": part, "owner": owner, "num": int(num),
            "value": value, "_v": ZERO2}


def text_key(doc_id: str, version: str, n: int) -> str:
    """The kv key of piece `n` of a document version's text (kv_row("text", text_id(...)) makes it)."""
    return f"text{SEP}{text_id(doc_id, version, n)}"


def text_id(doc_id: str, version: str, n: int) -> str:
    return f"{doc_id}{SEP}{version}{SEP}{n}"


def text_owner(doc_id: str, version: str) -> str:
    return f"{doc_id}{SEP}{version}"


# -- the meta collection ----------------------------------------------------------------------------
class Meta:
    """`<prefix>_meta`: small JSON values by key. Writers read it Strong; readers at their level."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._exists = False

    def exists(self) -> bool:
        if not self._exists:
            self._exists = bool(self.conn.call("has_collection", self.conn.meta))
        return self._exists

    def ensure(self) -> None:
        if not self.exists():
            create_meta(self.conn)
            self._exists = True

    def all(self, level: str = "Strong") -> dict[str, Any]:
        if not self.exists():
            return {}
        rows = self.conn.call("query", self.conn.meta, filter='key != ""', output_fields=["key", "value"],
                              limit=16384, consistency_level=level)
        return {r["key"]: json.loads(r["value"]) for r in rows}

    def get(self, key: str, level: str = "Strong") -> Any:
        rows = self.conn.call("get", self.conn.meta, ids=[key], output_fields=["value"], consistency_level=level)
        return json.loads(rows[0]["value"]) if rows else None

    def put(self, key: str, value: Any) -> None:
        text = json.dumps(value, ensure_ascii=False)
        if _bytes(text) > VARCHAR_BYTES:
            raise IndexWriteFailed(f"the index record {key!r} grew past 65,535 bytes; nothing was lost, but it "
                                   "cannot be saved (please report this)")
        self.conn.call("upsert", self.conn.meta, [{"key": key, "value": text, "_v": ZERO2}], doing="write")

    def delete(self, key: str) -> None:
        self.conn.call("delete", self.conn.meta, ids=[key], doing="write")


def aggregate(meta: dict[str, Any], build: str) -> dict[str, Any]:
    """The manifest readers see: the build's, with every ingest part's counters summed."""
    manifest = dict(meta.get(f"{build}:manifest") or {})
    if not manifest:
        return manifest
    parts = {key.rsplit(":", 1)[1]: value for key, value in meta.items() if key.startswith(f"{build}:part:")}
    fingerprint = 0
    for part in parts.values():
        fingerprint ^= int(part["fingerprint"], 16)
    manifest.update(
        documents=sum(p["documents"] for p in parts.values()), chunks=sum(p["chunks"] for p in parts.values()),
        generation=manifest.get("base_generation", 0) + sum(p["generation"] for p in parts.values()),
        fingerprint=f"{fingerprint:032x}",
        updated=max([p["updated"] for p in parts.values()] + [manifest.get("created", "")]),
        parts=sorted(parts), build=build,
    )
    manifest["vectors"] = manifest["chunks"]
    manifest["next_chunk_id"] = 0  # ids are per part (part number << 40 | sequence)
    if manifest.get("milvus_format") == MILVUS_FORMAT:
        manifest["format"] = FORMAT_VERSION
    return manifest


# -- the backend ------------------------------------------------------------------------------------
class MilvusBackend:
    """`newsdesk.backend.IndexBackend` on Milvus."""

    def __init__(self, location: str, token: str = ""):
        self.target = Target(location)
        self.location = self.target.index_name
        self.conn = Connection(self.target, token)
        self.meta = Meta(self.conn)

    @property
    def level(self) -> str:
        return self.target.consistency

    def _current(self) -> tuple[str, dict[str, Any]]:
        meta = self.meta.all(self.level)
        build = (meta.get("current") or {}).get("build")
        if not build:
            raise IndexMissing(f"no index in {self.location}: run `newsdesk index --index {self.location}` to build "
                               "one from your corpus")
        return build, aggregate(meta, build)

    def exists(self) -> bool:
        meta = self.meta.all(self.level)
        return bool((meta.get("current") or {}).get("build"))

    def manifest(self) -> dict[str, Any]:
        return self._current()[1]

    @contextmanager
    def generation(self) -> Iterator[MilvusView]:
        build, manifest = self._current()
        yield MilvusView(self, build, manifest)

    @contextmanager
    def writer(self, *, new_manifest: dict[str, Any], compatible: Callable[[dict], None], rebuild: bool,
               lock_timeout: float) -> Iterator[MilvusWriter]:
        self.meta.ensure()
        lease = Lease(self.conn, self.meta, self.target.ingest, self.location)
        lease.acquire(lock_timeout)
        try:
            drop_unused_builds(self.conn, self.meta)
            writer = MilvusWriter.open(self, new_manifest, compatible, rebuild=rebuild, lease=lease)
            yield writer
        finally:
            lease.release()

    def check(self) -> list[str]:
        build, manifest = self._current()
        return check_build(self.conn, build, manifest, self.meta.all())

    def close(self) -> None:
        self.conn.close()

    def drop(self) -> None:
        """Delete the whole index: every collection with this prefix (tests and benchmarks)."""
        prefix = f"{self.target.prefix}_"
        for name in self.conn.call("list_collections"):
            if name == self.conn.meta or re.fullmatch(re.escape(prefix) + r"b[0-9a-f]+_(chunks|docs|kv)", name):
                self.conn.call("drop_collection", name, doing="write")
        self.meta._exists = False


def drop_unused_builds(conn: Connection, meta: Meta) -> None:
    """Drop builds nothing refers to: a rebuild's predecessor after RETIRE_GRACE, or a build whose
    collections were made by a run that crashed before recording it."""
    values = meta.all()
    keep = {(values.get("current") or {}).get("build"), (values.get("building") or {}).get("build")}
    retired = values.get("retired") or []
    now = time.time()
    still = [r for r in retired if now - r["at"] < RETIRE_GRACE]
    keep |= {r["build"] for r in still}
    prefix = f"{conn.target.prefix}_"
    found = set()
    for name in conn.call("list_collections"):
        m = re.fullmatch(re.escape(prefix) + r"(b[0-9a-f]+)_(chunks|docs|kv)", name)
        if m and m.group(1) not in keep:
            found.add(m.group(1))
            conn.call("drop_collection", name, doing="write")
    for build in found:
        for key in [k for k in values if k.startswith(f"{build}:")]:
            meta.delete(key)
        log.info("dropped build %s of %s (replaced by a rebuild, or left by an interrupted one)", build,
                 conn.target.index_name)
    if len(still) != len(retired):
        meta.put("retired", still)


# -- the writer lease -------------------------------------------------------------------------------
class Lease:
    """The writer lock of one ingest part: a row `lock:<part>` in the meta collection holding an
    owner id and an expiry, renewed by a thread while the update runs and gone when it ends. A
    writer that dies leaves it to expire after LEASE_SECONDS.

    Milvus has no compare-and-set, so taking it is read, check, write, then (on a server) wait
    LEASE_SETTLE seconds and read again: of two writers racing, the one whose write landed last
    keeps it and the other backs off. Two can still both hold it if one stalls for longer than
    LEASE_SETTLE between its read and its write; every commit re-reads the lease and stops if it
    is no longer its own. Within one process (and so always for Milvus Lite) a lock makes the
    read-check-write atomic.
    """

    def __init__(self, conn: Connection, meta: Meta, part: str, location: str):
        self.conn, self.meta, self.part, self.location = conn, meta, part, location
        self.key = f"lock:{part}"
        self.owner = uuid.uuid4().hex
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _mine(self) -> dict[str, Any]:
        return {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                "expires": time.time() + LEASE_SECONDS, "since": _now()}

    def _try(self) -> dict[str, Any] | None:
        """None when taken; else the holder's record."""
        with self.conn.write_lock:
            held = self.meta.get(self.key)
            if held and held.get("owner") != self.owner and held.get("expires", 0) > time.time():
                return held
            self.meta.put(self.key, self._mine())
        if not self.conn.target.lite:
            time.sleep(LEASE_SETTLE)
            held = self.meta.get(self.key)
            if not held or held.get("owner") != self.owner:
                return held or {"host": "?", "pid": "?", "expires": time.time()}
        return None

    def acquire(self, timeout: float) -> None:
        started = time.monotonic()
        warned = False
        while True:
            held = self._try()
            if held is None:
                break
            waited = time.monotonic() - started
            if timeout == 0 or (timeout > 0 and waited >= timeout):
                until = datetime.fromtimestamp(held.get("expires", 0), timezone.utc).isoformat(timespec="seconds")
                raise IndexBusy(
                    f"another newsdesk process ({held.get('host')} pid {held.get('pid')}) is updating ingest part "
                    f"{self.part!r} of {self.location}; wait for it to finish and try again (if it died, its lease "
                    f"expires at {until})")
            if not warned:
                log.warning("another newsdesk process (%s pid %s) is updating ingest part %r of %s; waiting for it",
                            held.get("host"), held.get("pid"), self.part, self.location)
                warned = True
            time.sleep(min(1.0, max(timeout - waited, 0.05)) if timeout > 0 else 1.0)
        self._thread = threading.Thread(target=self._renew, name=f"newsdesk-lease-{self.part}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 3):
            try:
                with self.conn.write_lock:
                    held = self.meta.get(self.key)
                    if not held or held.get("owner") != self.owner:
                        self.lost = True
                        return
                    self.meta.put(self.key, self._mine())
            except Exception:  # noqa: BLE001 - a failed renewal is retried; check() sees expiry
                log.warning("could not renew the writer lease of %s", self.location, exc_info=True)

    def check(self) -> None:
        """Stop an update whose lease another writer took (it stalled past its expiry)."""
        held = self.meta.get(self.key)
        if self.lost or not held or held.get("owner") != self.owner:
            self.lost = True
            raise IndexBusy(f"this update of {self.location} lost its writer lease (it stalled for over "
                            f"{LEASE_SECONDS:.0f} s) and another writer took over; nothing half-done is visible. "
                            "Run `newsdesk index` again")
        if held.get("expires", 0) - time.time() < LEASE_SECONDS / 2:
            with self.conn.write_lock:
                self.meta.put(self.key, self._mine())

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self.conn.write_lock:
                held = self.meta.get(self.key)
                if held and held.get("owner") == self.owner:
                    self.meta.delete(self.key)
        except NewsdeskError:
            log.warning("could not release the writer lease of %s; it expires in %.0f s", self.location,
                        LEASE_SECONDS)


# -- reading ----------------------------------------------------------------------------------------
PASSAGE_FIELDS = ["doc_id", "version", "seq", "start", "end", "text", "long_text", "sentences", "title", "url",
                  "published", "source"]
HEADER_FIELDS = ["doc_id", "version", "content_hash", "source_path", "offsets_in", "authors", "pieces"]


class MilvusView:
    """What one question reads: the current build, its manifest, and the chunks its searches found.

    Searches return everything a passage needs, kept here, so `chunks` never misses a chunk that
    an update deleted meanwhile; each chunk is kept only if its version is its document's current one.
    """

    def __init__(self, backend: MilvusBackend, build: str, manifest: dict[str, Any]):
        self.backend = backend
        self.conn = backend.conn
        self.level = backend.level
        self.build = build
        self.manifest = manifest
        self._rows: dict[int, dict] = {}
        self._headers: dict[str, dict | None] = {}
        self._vectors: dict[int, np.ndarray] = {}
        self.chunks_name = self.conn.name(build, "chunks")
        self.docs_name = self.conn.name(build, "docs")
        self.kv_name = self.conn.name(build, "kv")

    # -- searches ------------------------------------------------------------------------------
    def dense(self, vector: np.ndarray, depth: int, filters: Filters) -> list[tuple[int, float]]:
        hits = self._search([np.asarray(vector, dtype=np.float32).reshape(-1).tolist()], "vector", "IP", depth,
                            filters, PASSAGE_FIELDS)
        return [(i, float(d)) for i, d in hits]

    def keyword(self, query: str, depth: int, filters: Filters) -> list[tuple[int, float]]:
        stems = list(dict.fromkeys(question_terms(query)))
        if not stems:
            return []
        hits = self._search([" ".join(stems)], "sparse", "BM25", depth, filters, [*PASSAGE_FIELDS, "vector"])
        # Milvus reports BM25 as a score; Milvus Lite as its negative (a distance). Both: abs().
        return [(i, abs(float(d))) for i, d in hits if d]

    def _search(self, data: list, field: str, metric: str, depth: int, filters: Filters,
                fields: list[str]) -> list[tuple[int, float]]:
        limit = min(depth + max(5, depth // 5), 16384)  # a few spare for chunks of replaced versions
        result = self.conn.call("search", self.chunks_name, data=data, anns_field=field, limit=limit,
                                filter=filter_expr(filters), output_fields=fields,
                                search_params={"metric_type": metric}, consistency_level=self.level)
        hits = [(int(h["id"]), float(h["distance"]), h["entity"]) for h in result[0]]
        for chunk_id, _, entity in hits:
            self._rows[chunk_id] = entity
            if "vector" in entity:
                self._vectors[chunk_id] = np.asarray(entity["vector"], dtype=np.float32)
        self._load_headers({e["doc_id"] for _, _, e in hits})
        live = [(i, d) for i, d, e in hits if (self._headers.get(e["doc_id"]) or {}).get("version") == e["version"]]
        return live[:depth]

    def _load_headers(self, doc_ids: Iterable[str]) -> None:
        wanted = [d for d in doc_ids if d not in self._headers]
        if not wanted:
            return
        rows = self.conn.get(self.docs_name, wanted, HEADER_FIELDS, level=self.level, expect="doc_id",
                             pauses=REREAD_PAUSES[:1])  # a removed document's chunks are found for a moment too
        found = {r["doc_id"]: r for r in rows}
        for doc_id in wanted:
            self._headers[doc_id] = found.get(doc_id)

    # -- rows ----------------------------------------------------------------------------------
    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        missing = [i for i in ids if i not in self._rows]
        if missing:  # not found by this view's searches (embedded-style callers): read them now
            for row in self.conn.get(self.chunks_name, missing, ["id", *PASSAGE_FIELDS], level=self.level):
                self._rows[int(row["id"])] = row
            self._load_headers({self._rows[i]["doc_id"] for i in missing if i in self._rows})
        out = {}
        long_docs = {self._rows[i]["doc_id"] for i in ids if i in self._rows and self._rows[i].get("long_text")}
        texts = self.documents(sorted(long_docs)) if long_docs else {}
        for i in ids:
            row = self._rows.get(i)
            if row is None or (self._headers.get(row["doc_id"]) or {}).get("version") != row["version"]:
                continue
            text = row["text"]
            if row.get("long_text"):
                text = texts[row["doc_id"]].text[row["start"]:row["end"]]
            out[i] = ChunkRow(i, row["doc_id"], int(row["seq"]), int(row["start"]), int(row["end"]), text,
                              tuple(tuple(s) for s in row["sentences"]), row["title"], row["url"] or None,
                              row["published"] or None, row["source"] or None, self.build)
        return out

    def vector(self, row: ChunkRow) -> np.ndarray:
        if row.id not in self._vectors:
            got = self.conn.get(self.chunks_name, [row.id], ["vector"], level=self.level)
            self._vectors[row.id] = np.asarray(got[0]["vector"], dtype=np.float32) if got else np.zeros(
                self.manifest["dimension"], np.float32)
        return self._vectors[row.id]

    def documents(self, doc_ids: Sequence[str]) -> dict[str, DocText]:
        """The text of the version this view's chunks belong to (kept TEXT_GRACE s after replacement)."""
        if not doc_ids:
            return {}
        self._load_headers(doc_ids)
        headers = {d: self._headers[d] for d in doc_ids if self._headers.get(d)}
        keys = [text_key(d, h["version"], n) for d, h in headers.items() for n in range(int(h["pieces"]))]
        pieces = {r["key"]: r["value"] for r in self.conn.get(self.kv_name, keys, ["key", "value"], level=self.level,
                                                              expect="key")}
        out = {}
        for doc_id, h in headers.items():
            parts = [pieces.get(text_key(doc_id, h["version"], n)) for n in range(int(h["pieces"]))]
            if any(p is None for p in parts):  # collected after TEXT_GRACE, or by a repair: ask again
                raise IndexProblem(f"{self.backend.location} changed while this question was being answered; ask "
                                   "again")
            blob = json.loads("".join(parts))
            out[doc_id] = DocText(blob["text"], h["source_path"], h["offsets_in"],
                                  tuple(tuple(p) for p in blob["line_map"]), tuple(h["authors"] or ()))
        return out

    def document_frequencies(self, stems: Sequence[str]) -> dict[str, int]:
        """Chunks whose text holds each stem, summed over the ingest parts (counted at write time:
        Milvus keeps BM25 statistics to itself)."""
        parts = self.manifest.get("parts") or []
        keys = [f"term{SEP}{part}{SEP}{stem}" for part in parts for stem in stems]
        out = dict.fromkeys(stems, 0)
        for row in self.conn.get(self.kv_name, keys, ["owner", "num"], level=self.level):
            out[row["owner"]] = out.get(row["owner"], 0) + int(row["num"])
        return out

    def sentence_vectors(self, ids: Sequence[int]) -> dict[int, bytes]:
        rows = self.conn.get(self.chunks_name, list(ids), ["id", "sentence_vectors", "svec_parts"], level=self.level)
        out = {int(r["id"]): base64.b64decode(r["sentence_vectors"]) for r in rows if not r["svec_parts"]}
        long = {int(r["id"]): int(r["svec_parts"]) for r in rows if r["svec_parts"]}
        if long:
            keys = [f"svec{SEP}{i}{SEP}{n}" for i, parts in long.items() for n in range(parts)]
            pieces = {r["key"]: r["value"] for r in self.conn.get(self.kv_name, keys, ["key", "value"],
                                                                  level=self.level, expect="key")}
            for i, parts in long.items():
                chunk = [pieces.get(f"svec{SEP}{i}{SEP}{n}") for n in range(parts)]
                if all(p is not None for p in chunk):
                    out[i] = base64.b64decode("".join(chunk))
        return out

    # -- counts --------------------------------------------------------------------------------
    def count_documents(self, filters: Filters) -> tuple[int, int, int]:
        matching = self.conn.count(self.docs_name, filter_expr(filters), self.level)
        total = self.conn.count(self.docs_name, "", self.level)
        undated = self.conn.count(self.docs_name, f"day == {UNDATED}", self.level)
        return matching, total, undated

    def source_counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for row in self.conn.call("query", self.kv_name, filter='kind == "source"', output_fields=["owner", "num"],
                                  limit=16384, consistency_level=self.level):
            counts[row["owner"]] += int(row["num"])
        return dict(sorted(((k, v) for k, v in counts.items() if v > 0), key=lambda kv: (-kv[1], kv[0])))

    def segment_count(self) -> int:
        return 1  # Milvus segments its collections itself; newsdesk sees one build

    def fingerprints(self) -> list[tuple[str, bytes, str | None]]:
        out = []
        for row in self.conn.query_all(self.kv_name, 'kind == "print"', ["owner", "value"], level=self.level):
            published, data = json.loads(row["value"])
            out.append((row["owner"], base64.b64decode(data), published))
        return out

    def _group_rows(self, doc_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """doc_id -> (copy group, story group) of those in a group."""
        rows = self.conn.get(self.kv_name, [f"group{SEP}{d}" for d in doc_ids], ["key", "owner", "value"],
                             level=self.level)
        return {r["key"].split(SEP, 1)[1]: (r["value"], r["owner"]) for r in rows}

    def copy_groups(self, doc_ids: Sequence[str]) -> dict[str, str]:
        return {d: copy for d, (copy, _) in self._group_rows(doc_ids).items()} if doc_ids else {}

    def group_members(self, doc_ids: Sequence[str]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        mine = self._group_rows(doc_ids) if doc_ids else {}
        if not mine:
            return {}
        rows = self.conn.query_in(self.kv_name, "owner", sorted({story for _, story in mine.values()}),
                                  ["key", "owner", "value"], level=self.level, extra='kind == "group"')
        by_story: dict[str, list[tuple[str, str]]] = {}
        for r in rows:
            by_story.setdefault(r["owner"], []).append((r["key"].split(SEP, 1)[1], r["value"]))
        out = {}
        for d, (copy, story) in mine.items():
            members = sorted(by_story.get(story, []))
            out[d] = (tuple(m for m, _ in members), tuple(m for m, c in members if c == copy))
        return out

    def headers(self, doc_ids: Sequence[str]) -> dict[str, Report]:
        rows = self.conn.query_in(self.chunks_name, "doc_id", list(doc_ids),
                                  ["doc_id", "version", "title", "source", "published", "url"], level=self.level,
                                  extra="seq == 0")
        self._load_headers(doc_ids)
        return {r["doc_id"]: Report(r["doc_id"], r["title"], r["source"] or None, r["published"] or None,
                                    r["url"] or None)
                for r in rows if (self._headers.get(r["doc_id"]) or {}).get("version") == r["version"]}


# -- writing ----------------------------------------------------------------------------------------
def _new_build_id() -> str:
    return "b" + f"{int(time.time()):x}" + uuid.uuid4().hex[:6]


class MilvusWriter:
    """One update of one ingest part of a build (the current one, or a rebuild beside it)."""

    def __init__(self, backend: MilvusBackend, build: str, *, fresh: bool, resumed: bool, lease: Lease):
        self.backend = backend
        self.conn = backend.conn
        self.meta = backend.meta
        self.part = backend.target.ingest
        self.build = build
        self.fresh = fresh
        self.resumed = resumed
        self.lease = lease
        self.chunks_name = self.conn.name(build, "chunks")
        self.docs_name = self.conn.name(build, "docs")
        self.kv_name = self.conn.name(build, "kv")
        self._manifest = self.meta.get(f"{build}:manifest")
        self._state = self.meta.get(self._part_key)
        self._headers: dict[str, dict | None] = {}
        self._groups = GroupKeeper(self._all_prints)  # its finder is built at the first change
        self._files: dict[str, dict] | None = None

    @property
    def _part_key(self) -> str:
        return f"{self.build}:part:{self.part}"

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, backend: MilvusBackend, new_manifest: dict[str, Any], compatible: Callable[[dict], None], *,
             rebuild: bool, lease: Lease) -> MilvusWriter:
        conn, meta = backend.conn, backend.meta
        values = meta.all()
        current = (values.get("current") or {}).get("build")
        building = values.get("building")
        if building:
            manifest = aggregate(values, building["build"])
            try:
                compatible(manifest)
                _check_dimension(manifest, new_manifest, backend.location)
                ours = f"{building['build']}:part:{backend.target.ingest}" in values
                log.info("continuing the rebuild of %s in build %s", backend.location, building["build"])
                return cls._ready(backend, building["build"], new_manifest, fresh=True, resumed=ours, lease=lease)
            except IndexMismatch:
                log.info("discarding an unfinished rebuild of %s made with other settings", backend.location)
                meta.delete("building")
                drop_unused_builds(conn, meta)
        if rebuild or not current:
            build = _new_build_id()
            base = aggregate(values, current).get("generation", 0) + 1 if current else 0
            # Recorded before its collections exist: a crash in between leaves nothing unrecorded.
            meta.put("building", {"build": build, "by": backend.target.ingest, "started": _now(), "done": []})
            meta.put(f"{build}:manifest", {**new_manifest, "milvus_format": MILVUS_FORMAT, "created": _now(),
                                           "base_generation": base})
            create_build(conn, build, new_manifest["dimension"])
            return cls._ready(backend, build, new_manifest, fresh=True, resumed=False, lease=lease)
        manifest = aggregate(values, current)
        compatible(manifest)
        _check_dimension(manifest, new_manifest, backend.location)
        return cls._ready(backend, current, new_manifest, fresh=False, resumed=False, lease=lease)

    @classmethod
    def _ready(cls, backend: MilvusBackend, build: str, new_manifest: dict[str, Any], *, fresh: bool, resumed: bool,
               lease: Lease) -> MilvusWriter:
        writer = cls(backend, build, fresh=fresh, resumed=resumed, lease=lease)
        if writer._state is None:
            writer._register()
        elif writer._state.get("pending") is not None:
            log.warning("an earlier update of ingest part %r of %s stopped halfway; reconciling the part",
                        writer.part, backend.location)
            writer.reconcile()
        return writer

    def _register(self) -> None:
        number = part_number(self.part)
        values = self.meta.all()
        for key, state in values.items():
            if key.startswith(f"{self.build}:part:") and state.get("number") == number:
                other = key.rsplit(":", 1)[1]
                raise UsageError(f"the ingest parts {other!r} and {self.part!r} of {self.backend.location} would share "
                                 "chunk ids: rename one (?ingest=...)")
        self._state = {"number": number, "documents": 0, "chunks": 0, "fingerprint": f"{0:032x}", "generation": 0,
                       "next_seq": 1, "updated": _now(), "pending": None}
        self.meta.put(self._part_key, self._state)

    # -- what is indexed -----------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """The build's manifest with this part's counters (what the update algorithm compares)."""
        out = dict(self._manifest)
        if out.get("milvus_format") == MILVUS_FORMAT:
            out["format"] = FORMAT_VERSION
        out.update({k: self._state[k] for k in ("documents", "chunks", "fingerprint", "generation")})
        out["vectors"] = out["chunks"]
        out["next_chunk_id"] = (self._state["number"] << PART_BITS) | self._state["next_seq"]
        return out

    def _file_rows(self) -> dict[str, dict]:
        if self._files is None:
            self._files = {}
            expr = f'kind == "file" and part == {quote(self.part)}'
            for row in self.conn.query_all(self.kv_name, expr, ["owner", "value"]):
                self._files[row["owner"]] = json.loads(row["value"])
        return self._files

    def files(self) -> dict[str, Signature]:
        return {path: tuple(v["signature"]) for path, v in self._file_rows().items() if v.get("signature")}

    def problems(self) -> list[Skipped]:
        out = [Skipped(path, reason, line) for v in self._file_rows().values()
               for path, line, reason in v.get("problems", [])]
        return sorted(out, key=lambda p: (p.path, p.line or 0))

    def documents_by_path(self, paths: Sequence[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        if not paths or not self._state["documents"]:
            return out
        rows = self.conn.query_in(self.docs_name, "source_path", list(paths),
                                  ["doc_id", "source_path", "content_hash", "version", "part", "source"],
                                  level="Strong", extra=f"part == {quote(self.part)}", slice_size=200)
        for row in rows:
            out.setdefault(row["source_path"], {})[row["doc_id"]] = row["content_hash"]
            self._headers[row["doc_id"]] = row
        return out

    def _header(self, doc_id: str) -> dict | None:
        if doc_id not in self._headers:
            rows = self.conn.get(self.docs_name, [doc_id], ["doc_id", "source_path", "content_hash", "version", "part",
                                                           "source"], level="Strong")
            self._headers[doc_id] = rows[0] if rows else None
        return self._headers[doc_id]

    def document_hash(self, doc_id: str) -> str | None:
        header = self._header(doc_id)
        return header["content_hash"] if header else None

    def document_owner(self, doc_id: str, rereading: Sequence[str]) -> str | None:
        header = self._header(doc_id)
        if header is None:
            return None
        if header["part"] != self.part:
            return f"{header['source_path']} of ingest part {header['part']!r}"
        return header["source_path"] if header["source_path"] not in rereading else None

    def keep_encoder(self, onnx_file: Path) -> None:
        """Milvus keeps no files: record the encoder file's hash, and warn if it is not the one the
        vectors were made with (a different export would make slightly different vectors)."""
        digest = hashlib.sha256(Path(onnx_file).read_bytes()).hexdigest()
        known = self._manifest.get("encoder_sha256")
        if known is None:
            self._manifest["encoder_sha256"] = digest
            self.meta.put(f"{self.build}:manifest", self._manifest)
        elif known != digest:
            log.warning("the ONNX encoder file %s is not the one %s was built with (sha256 %s...); its vectors may "
                        "differ slightly: `newsdesk index --rebuild` makes them all alike", onnx_file,
                        self.backend.location, known[:12])

    # -- groups ----------------------------------------------------------------------------------
    def _all_prints(self) -> Iterator[tuple[str, bytes, str | None]]:
        for row in self.conn.query_all(self.kv_name, 'kind == "print"', ["owner", "value"]):
            published, data = json.loads(row["value"])
            yield row["owner"], base64.b64decode(data), published

    def _regroup(self, batch: Batch, gone: Sequence[str]) -> None:
        """Fingerprints of the batch's articles, and the group rows its changes rewrite. Group rows
        are derived data: an update interrupted here leaves some stale until the next update of
        those articles (they only change what "also reported by" lists, never what is cited)."""
        self._groups.prepare()  # the finder of the stored fingerprints, before this batch's are written
        added = [(doc.doc_id, data, doc.published) for (doc, _), data in zip(batch.docs, batch.prints)]
        self.conn.insert(self.kv_name, [kv_row("print", d, part=self.part, owner=d, value=json.dumps(
            [published, base64.b64encode(data).decode("ascii")])) for d, data, published in added], upsert=True)
        self.conn.delete(self.kv_name, [f"print{SEP}{d}" for d in gone])
        rows, alone = self._groups.change(gone, added)
        self.conn.insert(self.kv_name, [kv_row("group", d, part=self.part, owner=story, value=copy)
                                        for d, copy, story in rows], upsert=True)
        self.conn.delete(self.kv_name, [f"group{SEP}{d}" for d in alone])

    # -- one batch -----------------------------------------------------------------------------
    def commit(self, batch: Batch) -> None:
        from newsdesk.index import document_print

        self.lease.check()
        state = self._state
        generation = state["generation"] + 1
        vectors = batch.vectors if batch.vectors is not None else np.zeros((0, self._manifest["dimension"]), np.float32)
        first_seq = state["next_seq"]
        number = state["number"]
        # 1. Recorded as pending, with its chunk ids reserved: the part row written in step 7 is the commit.
        state["pending"] = generation
        state["next_seq"] = first_seq + len(vectors)
        self.meta.put(self._part_key, state)

        replaced = list(dict.fromkeys([*batch.removals, *(doc.doc_id for doc, _ in batch.docs)]))
        old = {d: h for d in replaced if (h := self._header(d)) is not None and h["part"] == self.part}
        new_headers: list[dict] = []
        texts: list[dict] = []
        chunk_rows: list[dict] = []
        svec_rows: list[dict] = []
        df: Counter[str] = Counter()
        pos = 0
        for doc, doc_chunks in batch.docs:
            content_hash = doc.content_hash()
            version = f"{content_hash[:24]}.{generation}"
            for what, value, limit in (("document id", doc.doc_id, ID_BYTES), ("path", doc.source_path, PATH_BYTES)):
                if _bytes(value) > limit:
                    raise IndexWriteFailed(f"the {what} {value[:80]!r}... is longer than the {limit} bytes a Milvus "
                                           "index can key: shorten it (nothing was lost)")
            pieces = text_pieces(doc.text, doc.line_map)
            texts += [kv_row("text", text_id(doc.doc_id, version, n), part=self.part,
                             owner=text_owner(doc.doc_id, version), num=n, value=piece)
                      for n, piece in enumerate(pieces)]
            day = day_number(doc.published)
            title_stems = terms(doc.title)
            meta = {"day": day, "source_lc": _fit((doc.source or "").lower(), 1024), "source": _fit(doc.source, 1024),
                    "title": _fit(doc.title), "url": _fit(doc.url), "published": _fit(doc.published, 64)}
            for c in doc_chunks:
                chunk_id = (number << PART_BITS) | (first_seq + pos)
                body, title_part = fit_stems(terms(c.text), title_stems)
                df.update(set(body))
                stems = " ".join([*body, *title_part])
                blob = base64.b64encode(batch.sentence_vectors[pos]).decode("ascii")
                parts = 0
                if len(blob) > SVEC_INLINE:  # a 200-token chunk of very short sentences, or a large model
                    pieces_sv = [blob[at:at + SVEC_INLINE] for at in range(0, len(blob), SVEC_INLINE)]
                    svec_rows += [kv_row("svec", f"{chunk_id}{SEP}{n}", part=self.part, owner=f"svec{SEP}{chunk_id}",
                                         num=n, value=p) for n, p in enumerate(pieces_sv)]
                    blob, parts = "", len(pieces_sv)
                long_text = _bytes(c.text) > VARCHAR_BYTES
                chunk_rows.append({
                    "id": chunk_id, "doc_id": doc.doc_id, "version": version, "part": self.part, "seq": c.seq,
                    "start": c.start, "end": c.end, "text": "" if long_text else c.text, "long_text": long_text,
                    "stems": stems, "title_terms": len(title_part), "vector": vectors[pos].astype(np.float32).tolist(),
                    "sentences": [list(s) for s in c.sentences], "sentence_vectors": blob, "svec_parts": parts,
                    **meta,
                })
                pos += 1
            new_headers.append({
                "doc_id": doc.doc_id, "version": version, "content_hash": content_hash, "part": self.part,
                "source_path": doc.source_path, "authors": list(doc.authors), "offsets_in": doc.offsets_in,
                "pieces": len(pieces), "chunks": len(doc_chunks), "_v": ZERO2, **{k: meta[k] for k in (
                    "title", "url", "published", "source", "source_lc", "day")},
            })
        # 2. The new versions' texts and chunks: no document row points at them yet.
        self.conn.insert(self.kv_name, texts + svec_rows, upsert=True)
        self.conn.insert(self.chunks_name, chunk_rows)
        # The chunks being replaced (what they held comes off the stem counts).
        old_chunks = self.conn.query_in(self.chunks_name, "doc_id", list(old),
                                        ["id", "doc_id", "version", "stems", "title_terms", "svec_parts"],
                                        level="Strong", slice_size=100) if old else []
        new_versions = {h["version"] for h in new_headers}
        old_chunks = [c for c in old_chunks if c["version"] not in new_versions]
        for c in old_chunks:
            if c["version"] == old[c["doc_id"]]["version"]:
                words = c["stems"].split()
                df.subtract(set(words[:len(words) - int(c["title_terms"])] if c["title_terms"] else words))
        # 3. The switch: document rows move to the new versions; removed documents lose theirs.
        self.conn.insert(self.docs_name, new_headers, upsert=True)
        gone = [d for d in batch.removals if d in old and d not in {h["doc_id"] for h in new_headers}]
        self.conn.delete(self.docs_name, gone)
        # 4. What no document row refers to any more: old chunks now, old texts after TEXT_GRACE.
        self.conn.delete(self.chunks_name, [int(c["id"]) for c in old_chunks])
        dead_svec = [f"svec{SEP}{int(c['id'])}{SEP}{n}" for c in old_chunks for n in range(int(c["svec_parts"] or 0))]
        self.conn.delete(self.kv_name, dead_svec)
        now = int(time.time())
        self.conn.insert(self.kv_name, [kv_row("dead", text_owner(d, h["version"]), part=self.part,
                                               owner=text_owner(d, h["version"]), num=now, value=str(h["version"]))
                                        for d, h in old.items()], upsert=True)
        # 5. Stem counts and source counts of this part.
        sources: Counter[str] = Counter()
        for h in old.values():
            sources[h.get("source") or ""] -= 1
        for h in new_headers:
            sources[h["source"]] += 1
        self._add_counts("term", {s: n for s, n in df.items() if n and _bytes(s) <= 512})
        self._add_counts("source", {s: n for s, n in sources.items() if n})
        # 5b. Near-duplicate fingerprints and the copy and story groups they make (newsdesk.groups).
        if batch.docs or batch.removals:
            self._regroup(batch, gone)
        # 6. The corpus files this batch completes.
        self._record_files(batch.files, batch.gone, batch.problems)
        # 7. The commit: this part's counters and generation.
        fingerprint = int(state["fingerprint"], 16)
        for d, h in old.items():
            fingerprint ^= document_print(d, h["content_hash"])
        for h in new_headers:
            fingerprint ^= document_print(h["doc_id"], h["content_hash"])
        state.update(documents=state["documents"] - len(old) + len(new_headers),
                     chunks=state["chunks"] - sum(1 for c in old_chunks if c["version"] == old[c["doc_id"]]["version"])
                     + len(chunk_rows), fingerprint=f"{fingerprint:032x}", generation=generation, updated=_now(),
                     pending=None)
        self.meta.put(self._part_key, state)
        for d in old:
            self._headers.pop(d, None)
        for h in new_headers:
            self._headers[h["doc_id"]] = h
        self._collect_texts()

    def _add_counts(self, kind: str, delta: dict[str, int]) -> None:
        """Add `delta` to this part's `kind` counts (stems' document frequencies, sources' articles)."""
        if not delta:
            return
        keys = {name: f"{kind}{SEP}{self.part}{SEP}{name}" for name in delta}
        current = {r["key"]: int(r["num"]) for r in self.conn.get(self.kv_name, list(keys.values()), ["num"],
                                                                   level="Strong")}
        upserts, deletes = [], []
        for name, n in delta.items():
            value = current.get(keys[name], 0) + n
            if value > 0:
                upserts.append(kv_row(kind, f"{self.part}{SEP}{name}", part=self.part, owner=name, num=value))
            elif keys[name] in current:
                deletes.append(keys[name])
        self.conn.insert(self.kv_name, upserts, upsert=True)
        self.conn.delete(self.kv_name, deletes)

    def _record_files(self, changed: dict[str, Signature], gone: Sequence[str], problems: Sequence[Skipped]) -> None:
        rows = self._file_rows()
        touched = set(changed) | set(gone)
        for path in touched:
            if path in rows:
                rows[path]["problems"] = []
        for path, signature in changed.items():
            rows.setdefault(path, {"problems": []})["signature"] = list(signature)
        for path in gone:
            if path in rows:
                rows[path].pop("signature", None)
        for p in problems:
            rows.setdefault(p.path, {"problems": []}).setdefault("problems", []).append([p.path, p.line, p.reason])
            touched.add(p.path)
        upserts, deletes = [], []
        for path in touched:
            value = rows.get(path)
            key = f"{self.part}{SEP}{path}"
            if not value or (not value.get("signature") and not value.get("problems")):
                rows.pop(path, None)
                deletes.append(f"file{SEP}{key}")
            else:
                text = json.dumps(value, ensure_ascii=False)
                if _bytes(text) > VARCHAR_BYTES:  # thousands of bad records in one file: keep the first ones
                    value = {**value, "problems": value["problems"][:200]}
                    text = json.dumps(value, ensure_ascii=False)
                upserts.append(kv_row("file", key, part=self.part, owner=path, value=text))
        self.conn.insert(self.kv_name, upserts, upsert=True)
        self.conn.delete(self.kv_name, deletes)

    def _collect_texts(self, everything: bool = False) -> None:
        """Delete replaced texts once no question in flight can still be reading them."""
        cutoff = int(time.time() - (0 if everything else TEXT_GRACE))
        expr = f'kind == "dead" and part == {quote(self.part)} and num <= {cutoff}'
        dead = list(self.conn.query_all(self.kv_name, expr, ["key", "owner"]))
        if not dead:
            return
        owners = [r["owner"] for r in dead]
        pieces = self.conn.query_in(self.kv_name, "owner", owners, ["key"], level="Strong", extra='kind == "text"')
        self.conn.delete(self.kv_name, [r["key"] for r in pieces] + [r["key"] for r in dead])

    # -- the end -------------------------------------------------------------------------------
    def finish(self) -> None:
        """Seal what was written (Milvus Lite searches sealed segments far faster than fresh rows),
        and publish a rebuild once every ingest part of the index it replaces has rebuilt."""
        for what in BUILD_COLLECTIONS:
            self.conn.call("flush", self.conn.name(self.build, what), doing="write")
        self._collect_texts()
        if not self.fresh:
            return
        values = self.meta.all()
        building = values.get("building") or {}
        if building.get("build") != self.build:
            return
        done = sorted({*building.get("done", []), self.part})
        current = (values.get("current") or {}).get("build")
        waiting = sorted(key.rsplit(":", 1)[1] for key, state in values.items()
                         if current and key.startswith(f"{current}:part:") and state.get("documents")
                         and key.rsplit(":", 1)[1] not in done)
        if waiting:
            self.meta.put("building", {**building, "done": done})
            log.warning("ingest part %r of %s is rebuilt; the index switches to the rebuild once part(s) %s have "
                        "rebuilt too (their next `newsdesk index` does it)", self.part, self.backend.location,
                        ", ".join(waiting))
            return
        retired = values.get("retired") or []
        if current:
            retired = [*retired, {"build": current, "at": time.time()}]
        self.meta.put("current", {"build": self.build, "since": _now()})
        self.meta.put("retired", retired)
        self.meta.delete("building")
        log.info("%s now answers from build %s", self.backend.location, self.build)

    # -- repair --------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Make this part whole again after an update stopped halfway: the document rows are the
        truth; chunks and texts of other versions go, and every count is made again."""
        from newsdesk.index import document_print

        part = quote(self.part)
        headers = {r["doc_id"]: r for r in self.conn.query_all(
            self.docs_name, f"part == {part}", ["doc_id", "version", "content_hash", "source"])}
        df: Counter[str] = Counter()
        stale, chunks, svec = [], 0, []
        for c in self.conn.query_all(self.chunks_name, f"part == {part}",
                                     ["id", "doc_id", "version", "stems", "title_terms", "svec_parts"]):
            if (headers.get(c["doc_id"]) or {}).get("version") != c["version"]:
                stale.append(int(c["id"]))
                svec += [f"svec{SEP}{int(c['id'])}{SEP}{n}" for n in range(int(c["svec_parts"] or 0))]
                continue
            chunks += 1
            words = c["stems"].split()
            df.update(set(words[:len(words) - int(c["title_terms"])] if c["title_terms"] else words))
        self.conn.delete(self.chunks_name, stale)
        live = {text_owner(d, h["version"]) for d, h in headers.items()}
        garbage = [r["key"] for r in self.conn.query_all(self.kv_name, f'part == {part} and kind in ["text", "dead"]',
                                                          ["key", "owner"]) if r["owner"] not in live]
        counts = [r["key"] for r in self.conn.query_all(self.kv_name, f'part == {part} and kind in ["term", "source"]',
                                                         ["key"])]
        self.conn.delete(self.kv_name, garbage + counts + svec)
        sources = Counter(h.get("source") or "" for h in headers.values())
        self._add_counts("term", {s: n for s, n in df.items() if _bytes(s) <= 512})
        self._add_counts("source", dict(sources))
        fingerprint = 0
        for d, h in headers.items():
            fingerprint ^= document_print(d, h["content_hash"])
        self._state.update(documents=len(headers), chunks=chunks, fingerprint=f"{fingerprint:032x}",
                           generation=self._state["generation"] + 1, updated=_now(), pending=None)
        self.meta.put(self._part_key, self._state)
        log.info("reconciled ingest part %r of %s: %d documents, %d chunks; dropped %d stale chunks", self.part,
                 self.backend.location, len(headers), chunks, len(stale))


def _check_dimension(manifest: dict, new_manifest: dict, location: str) -> None:
    if manifest.get("dimension") != new_manifest.get("dimension"):
        raise IndexMismatch(
            f"the index in {location} holds {manifest.get('dimension')}-dimensional vectors, but this model makes "
            f"{new_manifest.get('dimension')}-dimensional ones; run `newsdesk index --rebuild` to rebuild it "
            "(or use the model it was built with)")


# -- checking ---------------------------------------------------------------------------------------
def check_build(conn: Connection, build: str, manifest: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    """Everything wrong with the current build, as sentences (empty: consistent)."""
    from newsdesk.index import document_print

    problems: list[str] = []
    docs_name, chunks_name, kv_name = (conn.name(build, w) for w in ("docs", "chunks", "kv"))
    for what in BUILD_COLLECTIONS:
        if not conn.call("has_collection", conn.name(build, what)):
            return [f"the collection {conn.name(build, what)} is missing"]
    headers = {r["doc_id"]: r for r in conn.query_all(
        docs_name, 'doc_id != ""', ["doc_id", "version", "content_hash", "part", "pieces"])}
    per_part: dict[str, dict[str, int]] = {}
    for key, state in meta.items():
        if key.startswith(f"{build}:part:"):
            per_part[key.rsplit(":", 1)[1]] = {"documents": 0, "chunks": 0, "fingerprint": 0}
            if state.get("pending") is not None:
                problems.append(f"ingest part {key.rsplit(':', 1)[1]!r} has an unfinished batch (its next update "
                                "reconciles it)")
    for d, h in headers.items():
        counts = per_part.setdefault(h["part"], {"documents": 0, "chunks": 0, "fingerprint": 0})
        counts["documents"] += 1
        counts["fingerprint"] ^= document_print(d, h["content_hash"])
    df: Counter[tuple[str, str]] = Counter()
    stale = 0
    by_doc: dict[str, list[dict]] = {}
    for c in conn.query_all(chunks_name, "id >= 0", ["id", "doc_id", "version", "part", "start", "end", "text",
                                                     "long_text", "stems", "title_terms"]):
        h = headers.get(c["doc_id"])
        if h is None or h["version"] != c["version"]:
            stale += 1
            continue
        per_part[h["part"]]["chunks"] += 1
        words = c["stems"].split()
        for w in set(words[:len(words) - int(c["title_terms"])] if c["title_terms"] else words):
            df[(h["part"], w)] += 1
        by_doc.setdefault(c["doc_id"], []).append(c)
    if stale:
        problems.append(f"{stale} chunks belong to no current document version (an update in progress or "
                        "interrupted; the next update removes them)")
    for part, counts in per_part.items():
        state = meta.get(f"{build}:part:{part}") or {}
        for key in ("documents", "chunks"):
            if state.get(key) != counts[key]:
                problems.append(f"ingest part {part!r} says {state.get(key)} {key}, the index holds {counts[key]}")
        if state and state.get("fingerprint") != f"{counts['fingerprint']:032x}":
            problems.append(f"the corpus fingerprint of ingest part {part!r} does not match its documents")
    stored = {(r["part"], r["owner"]): int(r["num"]) for r in conn.query_all(
        kv_name, 'kind == "term"', ["part", "owner", "num"])}
    wrong = sum(1 for key in set(stored) | set(df) if stored.get(key, 0) != df.get(key, 0) and len(key[1]) <= 512)
    if wrong:
        problems.append(f"the document frequencies of {wrong} stems disagree with the chunks")
    bad_spans = missing_text = 0
    doc_ids = sorted(by_doc)
    for at in range(0, len(doc_ids), 100):
        keys = [text_key(d, headers[d]["version"], n) for d in doc_ids[at:at + 100]
                for n in range(int(headers[d]["pieces"]))]
        pieces = {r["key"]: r["value"] for r in conn.get(kv_name, keys, ["value"], level="Strong")}
        for d in doc_ids[at:at + 100]:
            parts = [pieces.get(text_key(d, headers[d]["version"], n)) for n in range(int(headers[d]["pieces"]))]
            if any(p is None for p in parts):
                missing_text += 1
                continue
            text = json.loads("".join(parts))["text"]
            bad_spans += sum(1 for c in by_doc[d] if not c["long_text"] and text[c["start"]:c["end"]] != c["text"])
    if missing_text:
        problems.append(f"{missing_text} documents have no stored text")
    if bad_spans:
        problems.append(f"{bad_spans} chunks do not match their document text at their offsets")
    return problems
