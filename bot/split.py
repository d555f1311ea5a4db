"""Fitting output into Discord's limits: long text is cut only where a reader would pause.

A cut is made at a blank line if one is near the limit, else at a line break, else after a
sentence (with the `[n]` markers that follow it), else between words, and only as a last resort
anywhere. It never falls inside a protected span: a `[n]` citation marker, a link (bare, in
`<...>`, or masked), a mention, an inline-code or emphasis span, or an escaped character. Only a
span longer than the limit itself can be cut. A cut inside a line avoids the places where the
next piece would start with markup Discord reads only at a line's start (`# `, `> `, `- `, `1. `).

Embeds are plain dicts in Discord's JSON shape, so these functions need no client.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

CONTENT_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
FIELDS_PER_EMBED = 25
EMBEDS_PER_MESSAGE = 10
# Titles, descriptions, field names and values, footers and author names of all embeds of a message.
EMBED_TOTAL_LIMIT = 6000

ELLIPSIS = "…"

# Code, links, mentions, markers and escapes are found first; emphasis is then looked for in the
# text with those masked out, so an underscore or a star inside a link opens nothing. Overlapping
# spans are merged: a cut never falls inside any of them.
_STRONG = [re.compile(p, re.DOTALL) for p in (
    r"(?<!\\)```.*?```",                            # code block (an escaped ` opens none)
    r"(?<!\\)`[^`\n]+`",                           # inline code
    r"\[[^\[\]\n]*\]\(<?https?://[^\s()<>]+>?\)",   # masked link
    r"<https?://[^\s<>]+>",                         # link that does not unfurl
    r"https?://[^\s<>]+",                           # bare link
    r"<(?:@[!&]?|#|a?:\w+:|t:)[^<>\s]*>",           # mention, channel, custom emoji, timestamp
    r"\[\d+\]",                                     # citation marker
    r"\\[^0-9A-Za-z\s]",                            # escaped character (\_ too: _ is no word here)
)]
_EMPHASIS = [re.compile(p) for p in (
    # bold, underline, strike-through, spoiler, then italics with a single * or _ on each side
    r"\*\*[^*\n]+?\*\*", r"__[^_\n]+?__", r"~~[^~\n]+?~~", r"\|\|[^|\n]+?\|\|",
    r"(?<!\*)\*(?![*\s])[^*\n]*?(?<![*\s])\*(?!\*)",
    r"(?<![\w_])_(?![_\s])[^_\n]*?(?<![_\s])_(?![\w_])",
)]

# Where a chunk may end, best first; each gives the position the chunk ends at.
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"[.!?…][\"'”’)\]]*(?:[ \t]*\[\d+\])*(?=\s)")
# Between words, but never between a sentence and the marker that cites it.
_SPACE = re.compile(r"\s+(?!\[\d+\])")
# A level is used only if it lets the chunk fill at least this share of the limit.
MIN_FILL = 0.5
# What Discord's markdown reads at the start of a line: a heading, subtext, block quote or list item.
# A cut inside a line makes what follows it a line start (a new message, a new embed), so a cut
# there would turn "... a # b" into a heading.
_LINE_MARKUP = re.compile(r"(?:#{1,3}|-#|>{1,3}|[-*+]|\d+\.)(?=\s)")


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (start, end) ranges a cut must not fall strictly inside."""
    strong = [m.span() for pattern in _STRONG for m in pattern.finditer(text)]
    masked = list(text)
    for s, e in strong:
        masked[s:e] = "\0" * (e - s)
    plain = "".join(masked)
    spans = sorted(strong + [m.span() for pattern in _EMPHASIS for m in pattern.finditer(plain)])
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def split_text(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters; whitespace at the cuts is dropped."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    starts, ends = _span_index(text)
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        cut = _best_cut(text, start, start + limit, starts, ends)
        pieces.append(text[start:cut].rstrip())
        start = cut
        while start < len(text) and text[start].isspace():
            start += 1
    if start < len(text):
        pieces.append(text[start:])
    return [p for p in pieces if p]


def _span_index(text: str) -> tuple[list[int], list[int]]:
    spans = protected_spans(text)
    return [s for s, _ in spans], [e for _, e in spans]


def _inside(p: int, starts: list[int], ends: list[int]) -> bool:
    """Whether a cut at p would fall strictly inside a protected span (spans do not overlap)."""
    i = bisect_left(starts, p) - 1
    return i >= 0 and starts[i] < p < ends[i]


def _opens_markup(text: str, p: int) -> bool:
    """Whether a cut at p, inside a line, would start the next piece with line-start markup."""
    if p > 0 and text[p - 1] == "\n":
        return False
    q = p
    while q < len(text) and text[q].isspace():
        if text[q] == "\n":  # the next piece starts a line of its own, as written
            return False
        q += 1
    return bool(_LINE_MARKUP.match(text, q))


def _best_cut(text: str, start: int, end: int, starts: list[int], ends: list[int]) -> int:
    window = text[start:end + 1]  # one more character, so a boundary right at the limit is seen
    best_any = start
    for pattern, use_end in ((_PARAGRAPH, False), (_LINE, False), (_SENTENCE, True), (_SPACE, False)):
        best = start
        for m in pattern.finditer(window):
            p = start + (m.end() if use_end else m.start())
            if start < p <= end and not _inside(p, starts, ends) and not _opens_markup(text, p):
                best = max(best, p)
        if best - start >= MIN_FILL * (end - start):
            return best
        best_any = max(best_any, best)
    if best_any > start:
        return best_any
    for plain in (True, False):  # no boundary at all: any place outside a span, best one opening nothing
        for p in range(end, start, -1):
            if not _inside(p, starts, ends) and not (plain and _opens_markup(text, p)):
                return p
    return end  # a single span longer than the limit


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, cut between words with an ellipsis, never inside a protected span."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit]
    starts, ends = _span_index(text)
    room = limit - len(ELLIPSIS)
    cut = room
    for m in re.finditer(r"\s+", text[: room + 1]):
        if m.start() > 0 and not _inside(m.start(), starts, ends):
            cut = m.start()
    if cut == room or cut < room // 2:  # no word break near the end: cut inside the word
        cut = room
        while cut > 0 and _inside(cut, starts, ends):
            cut -= 1
        cut = cut or room
    return text[:cut].rstrip() + ELLIPSIS


# -- embeds ------------------------------------------------------------------------------------
def embed_size(embed: dict[str, Any]) -> int:
    """The characters Discord counts towards the 6000 per message."""
    size = len(embed.get("title") or "") + len(embed.get("description") or "")
    size += sum(len(f.get("name") or "") + len(f.get("value") or "") for f in embed.get("fields") or [])
    size += len((embed.get("footer") or {}).get("text") or "")
    size += len((embed.get("author") or {}).get("name") or "")
    return size


def fit_embed(embed: dict[str, Any]) -> list[dict[str, Any]]:
    """One embed within every per-embed limit; a long description or many fields go on in more embeds.

    The first embed keeps the title, link and author; the last one gets the footer and timestamp;
    continuation embeds keep the colour so they read as one card.
    """
    head = {k: v for k, v in embed.items() if k not in {"description", "fields", "footer", "timestamp"}}
    if "title" in head:
        head["title"] = truncate(head["title"], EMBED_TITLE_LIMIT)
    if "author" in head:
        head["author"] = {**head["author"], "name": truncate(head["author"].get("name", ""), AUTHOR_LIMIT)}
    tail: dict[str, Any] = {}
    if embed.get("footer"):
        tail["footer"] = {**embed["footer"], "text": truncate(embed["footer"].get("text", ""), FOOTER_LIMIT)}
    if embed.get("timestamp"):
        tail["timestamp"] = embed["timestamp"]
    reserve = embed_size(head) + embed_size(tail)
    more = {"color": embed["color"]} if "color" in embed else {}

    out: list[dict[str, Any]] = []
    description = embed.get("description") or ""
    for piece in split_text(description, min(EMBED_DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT - reserve)):
        out.append({**(more if out else head), "description": piece})
    if not out:
        out.append(dict(head))
    for f in embed.get("fields") or []:
        f = {**f, "name": truncate(f.get("name") or "\u200b", FIELD_NAME_LIMIT) or "\u200b",
             "value": truncate(f.get("value") or "\u200b", FIELD_VALUE_LIMIT) or "\u200b"}
        last = out[-1]
        fields = last.setdefault("fields", [])
        if len(fields) >= FIELDS_PER_EMBED or embed_size(last) + embed_size({"fields": [f]}) + reserve > EMBED_TOTAL_LIMIT:
            if not fields:
                del last["fields"]
            out.append({**more, "fields": [f]})
        else:
            fields.append(f)
    out[-1].update(tail)
    return out


@dataclass
class Page:
    """One Discord message: content and embeds within every limit."""

    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)


def paginate(content: str, embeds: list[dict[str, Any]] = ()) -> list[Page]:
    """Content and embeds as messages: text first, cut where a reader would pause, then the embeds."""
    pieces = split_text(content, CONTENT_LIMIT)
    pages = [Page(p) for p in pieces] or [Page()]
    for embed in (e for original in embeds for e in fit_embed(original)):
        page = pages[-1]
        total = sum(embed_size(e) for e in page.embeds)
        if len(page.embeds) >= EMBEDS_PER_MESSAGE or total + embed_size(embed) > EMBED_TOTAL_LIMIT:
            page = Page()
            pages.append(page)
        page.embeds.append(embed)
    return [p for p in pages if p.content or p.embeds]
