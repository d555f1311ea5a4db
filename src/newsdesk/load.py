"""Read a corpus folder into `Document`s, reporting (not raising on) files that cannot be read.

Supported: .txt, .md, .html/.htm (main text via trafilatura), .json (one record or a list),
.jsonl (one record per line), .pdf (pypdf). A document's `text` is the cleaned article text
that chunks, offsets and quotes refer to; it is stored in the index.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from newsdesk.clean import clean_lines

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSON_SUFFIXES = {".json", ".jsonl"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES | PDF_SUFFIXES


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    title: str
    source_path: str
    url: str | None = None
    published: str | None = None
    source: str | None = None
    author: str | None = None

    def content_hash(self) -> str:
        """Changes whenever anything an answer could show changes (text or metadata)."""
        payload = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


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
    # Files with a suffix newsdesk does not read (images, .DS_Store, ...): listed, not errors.
    ignored: list[str] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        self.documents += other.documents
        self.skipped += other.skipped
        self.ignored += other.ignored


class UnreadableFile(Exception):
    """A file or record that cannot become a document; the message is shown to the user."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason)
        self.line = line


def corpus_files(root: Path) -> Iterator[Path]:
    """Every file under root in a stable order, hidden files and folders excepted."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        yield path


def require_corpus(root: Path) -> None:
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {root} does not exist: create it and put articles in it")


def load_corpus(root: Path) -> LoadResult:
    require_corpus(root)
    result = LoadResult()
    for path in corpus_files(root):
        result.extend(load_file(path, root))
    return result


def load_file(path: Path, root: Path) -> LoadResult:
    rel = path.relative_to(root).as_posix()
    suffix = path.suffix.lower()
    result = LoadResult()
    if suffix not in SUPPORTED:
        result.ignored.append(rel)
        return result
    try:
        if suffix in JSON_SUFFIXES:
            for item in _json_documents(path, rel, suffix):
                if isinstance(item, Skipped):
                    result.skipped.append(item)
                else:
                    result.documents.append(item)
            if not result.documents and not result.skipped:
                raise UnreadableFile("no records")
        elif suffix in HTML_SUFFIXES:
            result.documents.append(_html_document(path, rel))
        elif suffix in PDF_SUFFIXES:
            result.documents.append(_pdf_document(path, rel))
        else:
            result.documents.append(_text_document(path, rel))
    except UnreadableFile as err:
        result.skipped.append(Skipped(rel, str(err), err.line))
    except OSError as err:
        result.skipped.append(Skipped(rel, f"cannot read file ({err.strerror or err})"))
    return result


def _source_from_path(rel: str) -> str | None:
    """Articles filed under corpus/<source>/... take the folder name as their source."""
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else None


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise UnreadableFile("empty file")
    if b"\x00" in data:
        raise UnreadableFile("binary data, not text (NUL bytes found)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UnreadableFile(
            f"not UTF-8 text (bad byte at offset {err.start}); re-save the file as UTF-8"
        ) from None
    return text


def _article(lines: list[str], rel: str, *, doc_id: str, title: str | None = None, **meta) -> Document:
    kept = clean_lines(lines)
    if not kept:
        raise UnreadableFile("no article text left after removing page furniture")
    return Document(
        doc_id=doc_id,
        text="\n".join(kept),
        title=(title or kept[0]).strip(),
        source_path=rel,
        url=meta.get("url") or None,
        published=normalize_date(meta.get("published")),
        source=meta.get("source") or _source_from_path(rel),
        author=meta.get("author") or None,
    )


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def _text_document(path: Path, rel: str) -> Document:
    text = _read_text(path)
    meta: dict[str, str] = {}
    title = None
    if path.suffix.lower() != ".txt":
        if m := _FRONT_MATTER.match(text):
            for line in m.group(1).splitlines():
                key, sep, value = line.partition(":")
                if sep:
                    meta[key.strip().lower()] = value.strip().strip("\"'")
            text = text[m.end():]
        if m := re.search(r"^#\s+(.+)$", text, re.MULTILINE):
            title = m.group(1).strip()
        title = meta.get("title", title)
    return _article(
        text.splitlines(), rel, doc_id=meta.get("id", rel), title=title,
        url=meta.get("url"), published=meta.get("published") or meta.get("date"),
        source=meta.get("source"), author=meta.get("author"),
    )


def _html_document(path: Path, rel: str) -> Document:
    import trafilatura

    html = _read_text(path)
    extracted = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False)
    if extracted is None or not (extracted.text or "").strip():
        raise UnreadableFile("no article text found in the HTML")
    return _article(
        extracted.text.splitlines(), rel, doc_id=rel, title=extracted.title,
        url=extracted.url, published=extracted.date, author=extracted.author,
        source=_source_from_path(rel) or extracted.sitename,
    )


def _pdf_document(path: Path, rel: str) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata or {}
    except (PdfReadError, ValueError, KeyError) as err:
        raise UnreadableFile(f"not a readable PDF ({err})") from None
    lines = [ln for page in pages for ln in page.splitlines()]
    if not any(ln.strip() for ln in lines):
        raise UnreadableFile("the PDF has no extractable text (scanned images need OCR first)")
    return _article(lines, rel, doc_id=rel, title=info.get("/Title"), author=info.get("/Author"))


def _json_documents(path: Path, rel: str, suffix: str) -> Iterator[Document | Skipped]:
    text = _read_text(path)
    if suffix == ".jsonl":
        records = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((n, json.loads(line)))
            except json.JSONDecodeError as err:
                yield Skipped(rel, f"malformed JSON ({err.msg} at column {err.colno})", n)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UnreadableFile(f"malformed JSON ({err.msg})", err.lineno) from None
        items = data if isinstance(data, list) else [data]
        records = [(n if len(items) > 1 else None, item) for n, item in enumerate(items, start=1)]
    for n, record in records:
        try:
            yield _record_document(record, rel, n)
        except UnreadableFile as err:
            yield Skipped(rel, str(err), n if suffix == ".jsonl" else None)


def _record_document(record: object, rel: str, n: int | None) -> Document:
    where = f"record {n}" if n else "record"
    if not isinstance(record, dict):
        raise UnreadableFile(f"{where} is not a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise UnreadableFile(f"{where} has no \"text\"")
    doc_id = record.get("id")
    doc_id = str(doc_id) if doc_id not in (None, "") else (f"{rel}#{n}" if n else rel)
    return _article(
        text.splitlines(), rel, doc_id=doc_id, title=_str(record.get("title")),
        url=_str(record.get("url")), published=_str(record.get("published") or record.get("date")),
        source=_str(record.get("source")), author=_str(record.get("author") or record.get("authors")),
    )


def _str(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or None
    return str(value)


def normalize_date(value: str | None) -> str | None:
    """ISO 8601 (a date, or a date and time) from the common formats; None when unrecognised.

    Stored as text so that SQL string comparison orders it, and `since`/`until` filter on it.
    """
    if not value:
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            for fmt in ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%Y/%m/%d"):
                try:
                    parsed = datetime.strptime(value, fmt)
                    break
                except ValueError:
                    continue
            else:
                return None
    if len(value) <= 10 or (parsed.hour, parsed.minute, parsed.second) == (0, 0, 0) and parsed.tzinfo is None:
        return parsed.date().isoformat()
    return parsed.isoformat(timespec="seconds")
