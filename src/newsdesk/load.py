"""Read a corpus folder into `Document`s, reporting (never raising on) files that cannot be read.

Supported: .txt, .md, .html/.htm (main text via trafilatura), .json (one record or a list),
.jsonl (one record per line), .pdf (pypdf). A document's `text` is the cleaned article text
that chunks and quotes refer to; it is stored in the index. Cleaning only drops whole lines,
so every line of `text` is a line of the source, and `line_map` maps an offset in `text` back
to the source a user can open: the file itself (.txt, .md), the record's "text" field (JSON),
or, for HTML and PDF, the extracted text, which is what `text` is made of.

What one file may cost is bounded (size, line length), and any failure while reading one file
skips that file with its path and reason: the rest of the corpus is always indexed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from newsdesk.clean import kept_lines
from newsdesk.errors import CorpusError

log = logging.getLogger("newsdesk.load")

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSON_SUFFIXES = {".json", ".jsonl"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES | PDF_SUFFIXES

# Bounds on what one article may cost to read, clean and chunk. A JSONL file may be a whole
# feed export, so it has no size limit; each of its records has the article limit.
MAX_FILE_BYTES = 20_000_000  # .txt, .md, .html
MAX_JSON_BYTES = 500_000_000  # one .json document (a list of records is parsed whole)
MAX_PDF_BYTES = 100_000_000
MAX_ARTICLE_CHARS = 2_000_000
MAX_LINE_CHARS = 200_000


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    title: str
    source_path: str
    url: str | None = None
    published: str | None = None
    source: str | None = None
    authors: tuple[str, ...] = ()
    # What `line_map` maps into: "file", "record" (a JSON record's text) or "extracted".
    offsets_in: str = "file"
    # One (offset in `text`, offset in the source) pair per line of `text`.
    line_map: tuple[tuple[int, int], ...] = ()

    def content_hash(self) -> str:
        """Changes whenever anything an answer could show changes (text, metadata or offsets)."""
        payload = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def source_offset(self, offset: int) -> int:
        return source_offset(self.line_map, offset)


def source_offset(line_map: tuple[tuple[int, int], ...] | list[list[int]], offset: int) -> int:
    """The offset in the source of `offset` in the cleaned text (quotes never cross a line)."""
    if not line_map:
        return offset
    i = max(bisect_right([a for a, _ in line_map], offset) - 1, 0)
    text_start, source_start = line_map[i]
    return source_start + offset - text_start


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Indexed, but something was left out (an unreadable date, malformed front matter).
    warnings: list[Skipped] = field(default_factory=list)
    # Files with a suffix newsdesk does not read (images, .DS_Store, ...): listed, not errors.
    ignored: list[str] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        self.documents += other.documents
        self.skipped += other.skipped
        self.warnings += other.warnings
        self.ignored += other.ignored


class UnreadableFile(Exception):
    """A file or record that cannot become a document; the message is shown to the user."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason)
        self.line = line


# -- walking the corpus ------------------------------------------------------------------------
@dataclass
class CorpusFiles:
    files: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def require_corpus(root: Path) -> None:
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist: create it and put articles in it")


def corpus_files(root: Path, *, follow_symlinks: bool = False) -> CorpusFiles:
    """Every file under root in a stable order, hidden files and folders excepted.

    A symbolic link is followed only when it stays inside the corpus (or `follow_symlinks`
    allows leaving it): a corpus folder must not publish files from elsewhere by accident.
    Broken links, link loops and file names that are not UTF-8 are reported, not dropped.
    """
    out = CorpusFiles()
    real_root = root.resolve()
    seen_dirs: set[Path] = set()

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    def walk(folder: Path) -> None:
        real = folder.resolve()
        if real in seen_dirs:
            out.skipped.append(Skipped(rel(folder), "a symbolic link loop: the folder contains itself"))
            return
        seen_dirs.add(real)
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as err:
            out.skipped.append(Skipped(rel(folder) or ".", f"cannot list the folder ({err.strerror or err})"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            name = rel(path)
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                out.skipped.append(Skipped(shown, "the file name is not valid UTF-8: rename the file"))
                continue
            if entry.is_symlink():
                problem = _link_problem(path, real_root, follow_symlinks)
                if problem:
                    out.skipped.append(Skipped(name, problem))
                    continue
            try:
                if entry.is_dir():
                    walk(path)
                elif entry.is_file():
                    out.files.append(path)
            except OSError as err:
                out.skipped.append(Skipped(name, f"cannot read ({err.strerror or err})"))

    walk(root)
    return out


def _link_problem(path: Path, real_root: Path, follow_symlinks: bool) -> str | None:
    try:
        target = path.resolve(strict=True)
    except RuntimeError:
        return "a symbolic link loop"
    except OSError:
        return f"a broken symbolic link (to {os.readlink(path)})"
    inside = target == real_root or real_root in target.parents
    if not inside and not follow_symlinks:
        return (f"a symbolic link to {target}, outside the corpus: copy the file in, or set "
                "follow_symlinks to index linked files")
    if inside and target.is_dir():
        return "a symbolic link to a folder already in the corpus (its files are indexed there)"
    return None


# -- loading -----------------------------------------------------------------------------------
def load_corpus(root: Path, *, follow_symlinks: bool = False) -> LoadResult:
    require_corpus(root)
    found = corpus_files(root, follow_symlinks=follow_symlinks)
    result = LoadResult(skipped=list(found.skipped))
    for path in found.files:
        result.extend(load_file(path, root))
    return result


def load_file(path: Path, root: Path) -> LoadResult:
    """The documents of one file; whatever goes wrong, the file is skipped with a reason."""
    rel = path.relative_to(root).as_posix()
    suffix = path.suffix.lower()
    result = LoadResult()
    if suffix not in SUPPORTED:
        result.ignored.append(rel)
        return result
    try:
        if suffix in JSON_SUFFIXES:
            for item in _json_documents(path, rel, suffix, result):
                if isinstance(item, Skipped):
                    result.skipped.append(item)
                else:
                    result.documents.append(item)
            if not result.documents and not result.skipped:
                raise UnreadableFile("no records")
        elif suffix in HTML_SUFFIXES:
            result.documents.append(_html_document(path, rel, result))
        elif suffix in PDF_SUFFIXES:
            result.documents.append(_pdf_document(path, rel, result))
        else:
            result.documents.append(_text_document(path, rel, result))
    except UnreadableFile as err:
        result.documents = []
        result.skipped.append(Skipped(rel, str(err), err.line))
    except OSError as err:
        result.documents = []
        result.skipped.append(Skipped(rel, f"cannot read the file ({err.strerror or err})"))
    except RecursionError:
        result.documents = []
        result.skipped.append(Skipped(rel, "nested too deeply to read"))
    except Exception as err:  # noqa: BLE001 - one file must never stop the index; the trace is logged
        log.warning("reading %s failed", rel, exc_info=True)
        result.documents = []
        result.skipped.append(Skipped(rel, f"could not be read ({type(err).__name__}: {err}); this is a bug in "
                                           "newsdesk, please report it with the file"))
    return result


def _source_from_path(rel: str) -> str | None:
    """Articles filed under corpus/<source>/... take the folder name as their source."""
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else None


def _read_text(path: Path, limit: int) -> str:
    size = path.stat().st_size
    if size > limit:
        raise UnreadableFile(f"too large to be one article ({size / 1e6:.0f} MB; the limit is {limit / 1e6:.0f} MB)")
    return _decode(path.read_bytes())


def _decode(data: bytes) -> str:
    """Text from bytes: UTF-8 (with or without a BOM), or UTF-16 with its BOM; never newline-translated."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableFile("not valid UTF-16 text although it starts with a UTF-16 byte-order mark") from None
    else:
        if b"\x00" in data:
            raise UnreadableFile("binary data, not text (NUL bytes found)")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise UnreadableFile(
                f"not UTF-8 text (bad byte at offset {err.start}); re-save the file as UTF-8") from None
    if not text.strip():
        raise UnreadableFile("empty file")
    return text


def _lines(text: str) -> tuple[list[str], list[int]]:
    """The lines of `text` without their line breaks, and the offset where each starts."""
    lines, starts = [], []
    offset = 0
    for raw in text.splitlines(keepends=True):
        content = raw.rstrip("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        if len(content) > MAX_LINE_CHARS:
            raise UnreadableFile(f"has a line of {len(content):,} characters (the limit is {MAX_LINE_CHARS:,}): "
                                 "break the text into paragraphs")
        lines.append(content)
        starts.append(offset)
        offset += len(raw)
    return lines, starts


def _article(text: str, rel: str, *, doc_id: str, offsets_in: str, base: int = 0, title: str | None = None,
             url: str | None = None, published: Any = None, source: str | None = None, authors: Any = None,
             result: LoadResult, line: int | None = None) -> Document:
    """A document from the article text found at offset `base` of its source."""
    if len(text) > MAX_ARTICLE_CHARS:
        raise UnreadableFile(f"too long to be one article ({len(text):,} characters; the limit is "
                             f"{MAX_ARTICLE_CHARS:,})", line)
    lines, starts = _lines(text)
    kept = kept_lines(lines)
    if not kept:
        raise UnreadableFile("no article text left after removing page furniture", line)
    parts: list[str] = []
    line_map: list[tuple[int, int]] = []
    offset = 0
    for i in kept:
        content = lines[i]
        lead = len(content) - len(content.lstrip())
        stripped = content.strip()
        line_map.append((offset, base + starts[i] + lead))
        parts.append(stripped)
        offset += len(stripped) + 1
    day = normalize_date(published)
    if published not in (None, "") and day is None:
        result.warnings.append(Skipped(rel, f"the date {str(published)!r} is not a date newsdesk understands; "
                                            "the article is indexed without one", line))
    return Document(
        doc_id=doc_id, text="\n".join(parts), title=" ".join((title or parts[0]).split()), source_path=rel,
        url=_str(url), published=day, source=_str(source) or _source_from_path(rel), authors=_authors(authors),
        offsets_in=offsets_in, line_map=tuple(line_map),
    )


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _front_matter(text: str, rel: str, result: LoadResult) -> tuple[dict[str, Any], int]:
    """The YAML front matter of a Markdown file, and where the body starts."""
    import yaml

    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, 0
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError as err:
        result.warnings.append(Skipped(rel, f"the front matter is not valid YAML ({' '.join(str(err).split())}); "
                                            "the article is read without it"))
        return {}, m.end()
    if not isinstance(data, dict):
        return {}, m.end()
    return {str(k).strip().lower(): v for k, v in data.items()}, m.end()


def _text_document(path: Path, rel: str, result: LoadResult) -> Document:
    text = _read_text(path, MAX_FILE_BYTES)
    meta: dict[str, Any] = {}
    title = None
    base = 0
    if path.suffix.lower() != ".txt":
        meta, base = _front_matter(text, rel, result)
        if m := _HEADING.search(text, base):
            title = m.group(1)
        title = _str(meta.get("title")) or title
    return _article(
        text[base:], rel, doc_id=_str(meta.get("id")) or rel, offsets_in="file", base=base, title=title,
        url=meta.get("url"), published=meta.get("published") or meta.get("date"),
        source=meta.get("source"), authors=meta.get("authors") or meta.get("author"), result=result,
    )


def _html_document(path: Path, rel: str, result: LoadResult) -> Document:
    import trafilatura

    html = _read_text(path, MAX_FILE_BYTES)
    extracted = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False)
    if extracted is None or not (extracted.text or "").strip():
        raise UnreadableFile("no article text found in the HTML")
    return _article(
        extracted.text, rel, doc_id=rel, offsets_in="extracted", title=extracted.title,
        url=extracted.url, published=extracted.date, authors=_split_byline(extracted.author),
        source=_source_from_path(rel) or extracted.sitename, result=result,
    )


def _pdf_document(path: Path, rel: str, result: LoadResult) -> Document:
    from pypdf import PdfReader

    size = path.stat().st_size
    if size > MAX_PDF_BYTES:
        raise UnreadableFile(f"too large ({size / 1e6:.0f} MB; the limit for a PDF is {MAX_PDF_BYTES / 1e6:.0f} MB)")
    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata or {}
        title, author = info.get("/Title"), info.get("/Author")
    except Exception as err:  # noqa: BLE001 - pypdf raises many types for broken files
        raise UnreadableFile(f"not a readable PDF ({type(err).__name__}: {err})") from None
    text = "\n".join(pages)
    if not text.strip():
        raise UnreadableFile("the PDF has no extractable text (scanned images need OCR first)")
    return _article(text, rel, doc_id=rel, offsets_in="extracted", title=_str(title), authors=_str(author),
                    result=result)


def _json_documents(path: Path, rel: str, suffix: str, result: LoadResult) -> Iterator[Document | Skipped]:
    if suffix == ".jsonl":
        records = _jsonl_records(path, rel)
    else:
        text = _read_text(path, MAX_JSON_BYTES)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UnreadableFile(f"malformed JSON ({err.msg})", err.lineno) from None
        items = data if isinstance(data, list) else [data]
        records = iter([(n if len(items) > 1 else None, item) for n, item in enumerate(items, start=1)])
    for n, record in records:
        if isinstance(record, Skipped):
            yield record
            continue
        try:
            yield _record_document(record, rel, n, result, line=n if suffix == ".jsonl" else None)
        except UnreadableFile as err:
            yield Skipped(rel, str(err), n if suffix == ".jsonl" else None)
        except RecursionError:
            yield Skipped(rel, "record nested too deeply to read", n if suffix == ".jsonl" else None)


def _jsonl_records(path: Path, rel: str) -> Iterator[tuple[int, Any]]:
    """Records of a JSONL file one line at a time, so a large feed export is never read whole."""
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise UnreadableFile("JSONL must be UTF-8, not UTF-16: re-save the file as UTF-8")
        for n, raw in enumerate(f, start=1):
            if n == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            if len(raw) > MAX_ARTICLE_CHARS * 4:
                yield n, Skipped(rel, f"the record is too large ({len(raw) / 1e6:.0f} MB)", n)
                continue
            try:
                yield n, json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                yield n, Skipped(rel, f"not UTF-8 text (bad byte at column {err.start + 1})", n)
            except json.JSONDecodeError as err:
                yield n, Skipped(rel, f"malformed JSON ({err.msg} at column {err.colno})", n)
            except RecursionError:
                yield n, Skipped(rel, "record nested too deeply to read", n)


def _record_document(record: object, rel: str, n: int | None, result: LoadResult, line: int | None) -> Document:
    where = f"record {n}" if n else "record"
    if not isinstance(record, dict):
        raise UnreadableFile(f"{where} is not a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise UnreadableFile(f"{where} has no \"text\"")
    doc_id = record.get("id")
    doc_id = str(doc_id) if doc_id not in (None, "") else (f"{rel}#{n}" if n else rel)
    return _article(
        text, rel, doc_id=doc_id, offsets_in="record", title=_str(record.get("title")),
        url=record.get("url"), published=record.get("published") or record.get("date"),
        source=record.get("source"), authors=record.get("authors") or record.get("author"), result=result, line=line,
    )


def _str(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or None
    return " ".join(str(value).split()) or None


def _authors(value: object) -> tuple[str, ...]:
    """A list of authors stays a list; one name (or byline) is one author."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(name for v in items if v is not None and (name := " ".join(str(v).split())))


def _split_byline(value: str | None) -> list[str] | None:
    """trafilatura joins several authors with "; "."""
    return [a for a in value.split(";")] if value else None


def published_day(published: str | None) -> date | None:
    """The day of a `published` value as the loader stores it (an ISO date, or date and time)."""
    if not published:
        return None
    try:
        return date.fromisoformat(published[:10])
    except ValueError:
        return None


def normalize_date(value: Any) -> str | None:
    """ISO 8601 (a date, or a date and time) from the usual ways of writing one; None when unrecognised.

    dateutil reads ISO 8601, RFC 2822 ("Thu, 05 Mar 2026 10:00:00 +0000") and the ways news
    writes dates ("Jan. 3, 2026", "Sept. 5, 2025", "3 January 2026", "January 3rd, 2026"). A
    value without a year, month or day ("2026", "March") is refused rather than completed with
    today's. Stored as text so SQL string comparison orders it.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _iso(value, has_time=True)
    if isinstance(value, date):
        return value.isoformat()
    from dateutil import parser

    text = " ".join(str(value).split())
    if not text or len(text) > 100:
        return None
    try:
        # Parsed twice with different defaults: a part the text lacks comes out different.
        first = parser.parse(text, default=datetime(2000, 1, 1, 0, 0, 0))
        second = parser.parse(text, default=datetime(2001, 2, 2, 1, 1, 1))
    except (ValueError, OverflowError, TypeError):
        return None
    if (first.year, first.month, first.day) != (second.year, second.month, second.day):
        return None
    has_time = (first.hour, first.minute, first.second) == (second.hour, second.minute, second.second)
    return _iso(first, has_time=has_time)


def _iso(value: datetime, *, has_time: bool) -> str:
    if not has_time or ((value.hour, value.minute, value.second) == (0, 0, 0) and value.tzinfo is None):
        return value.date().isoformat()
    return value.isoformat(timespec="seconds")
