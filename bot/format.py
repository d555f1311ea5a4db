"""Turning an `Answer` (and the other replies) into Discord messages.

Everything that came from an article or a user is escaped: markdown cannot format or fake the
bot's output, mentions are broken with a zero-width space (and `allowed_mentions` is none on
every send besides), and links in message text are wrapped in <...> so they do not unfurl.
The `[n]` markers and the bot's own markdown are the only markup left unescaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

import discord

from newsdesk_bot.split import CONTENT_LIMIT, Page, paginate, truncate
from newsdesk import Answer, Citation, human_date, story_notes

QUOTE_CHARS = 350
TITLE_CHARS = 200
URL_CHARS = 2000
ANSWER_COLOUR = 0x2F80ED
RELATED_COLOUR = 0x95A5A6
ABSTAIN_COLOUR = 0xE67E22
STATS_COLOUR = 0x27AE60

USAGE = ("Ask me a question about the news articles, like `/ask question: What did the council approve?` "
         "or by mentioning me with the question.")
ABSTAINED = "I couldn't find an answer to that in the articles I have."
ABSTAINED_RELATED = ABSTAINED + " These are the closest passages:"
FOLLOW_UP_HINT = "Ask follow-up questions in this thread: I'll answer with the conversation so far in mind."
MENTION_HINT = ("I can't read messages in this thread unless they mention me: the bot's host has not "
                "enabled the Message Content intent. Mention me ({mention}) with your follow-up question.")

# A link in text, without the punctuation that usually follows one in a sentence.
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                   r"[A-Za-z0-9])?)+(?::\d{1,5})?$")
# Characters a URL may keep as they are: none of them can end a masked link's target or open markup.
_URL_SAFE = "/:?#&=%+~@!$,;'*._-"


def escape(text: str) -> str:
    """Text from an article or a user, made inert and put on one line.

    A web address in it stays readable but is no link ("https\\://..."): only the source cards,
    whose addresses are checked, link anywhere, so a scraped page cannot put a login link of its
    own choosing into an answer.
    """
    return _escape_plain(" ".join(text.split())).replace("://", "\\://")


def _escape_plain(text: str) -> str:
    """Every character that could open markup gets a backslash; mentions get a zero-width space.

    Not discord.utils.escape_markdown: it takes a whole "[x](y)" as one span and leaves what is
    inside it unescaped. "[" and "]" are escaped because only the bot writes [n] markers and
    masked links, "<" because it opens mentions, channel links, timestamps and command mentions.
    """
    text = _MARKUP.sub(r"\\\1", text)
    # At the start (a line may go on after it): a heading, subtext, list, quote or numbered list.
    text = re.sub(r"^(\s*)([#>+-])", r"\1\\\2", text)
    text = re.sub(r"^(\s*\d+)\.(?=\s|$)", r"\1\\.", text)
    return discord.utils.escape_mentions(text)


_MARKUP = re.compile(r"([\\*_~|`\[\]<])")


def escape_quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """Escaped first, then trimmed: a cut can then never leave half a mention unescaped."""
    return truncate(escape(text), limit)


def link(url: str | None) -> str | None:
    """The URL as a link that can only ever be itself, or None if Discord would not take it.

    An invalid embed URL makes Discord reject the whole message, so the host must be a plain
    domain name. Anything that could end a masked link's target early or open markup (`)`,
    `[`, `<`, quotes, spaces ...) is percent-encoded: a scraped page whose own URL reads
    `https://a.example/)[Login](https://phish.example` stays one link to a.example.
    """
    if not url or len(url) > URL_CHARS or any(ord(ch) < 33 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not _HOST.match(parts.netloc):
        return None
    safe = quote(url, safe=_URL_SAFE)
    return safe if len(safe) <= URL_CHARS else None


def date(published: str | None) -> str:
    return published[:10] if published else "date unknown"


# -- answers -----------------------------------------------------------------------------------
def answer_text(answer: Answer) -> str:
    """The answer's sentences, escaped, each followed by its unescaped [n] marker.

    A marker counts only where the text before it ends with the quote it cites, taken in the
    citations' order, so a quote that itself contains something like "[7]" stays text.
    """
    sentences = answer.generated.sentences if answer.generated else ()
    if answer.timeline and not sentences:  # one dated line per step, oldest first
        by_n = {c.n: c for c in answer.citations}
        return "\n".join(f"**{human_date(step.date)}:** {escape(by_n[step.n].quote)} [{step.n}]"
                         for step in answer.timeline if step.n in by_n)
    if sentences:  # a generated answer: its checked sentences, each with its markers
        return " ".join(f"{escape(s.text)} {''.join(f'[{n}]' for n in s.cites)}" for s in sentences)
    text = answer.text
    pieces: list[str] = []
    pos = 0
    for c in answer.citations:
        marker = f"[{c.n}]"
        at = text.find(marker, pos)
        while at != -1 and not _words(text[pos:at]).endswith(_words(c.quote)):
            at = text.find(marker, at + 1)
        if at == -1:
            continue
        pieces.append(f"{escape(text[pos:at])} {marker}".strip())
        pos = at + len(marker)
    if text[pos:].strip():
        pieces.append(escape(text[pos:]))
    return " ".join(pieces)


def _words(text: str) -> str:
    return " ".join(text.split())


def render_answer(answer: Answer, *, question: str | None = None, notes: Iterable[str] = (),
                  embed_links: bool = True, heading: str | None = None) -> list[Page]:
    """The reply to a question: text with [n] markers, then one embed per source.

    `question` is shown above the answer (a slash command's reply does not show what was asked);
    `heading` is a line of the bot's own markup above that (its caller escapes what goes in it);
    `notes` are small lines under it. Without the Embed Links permission the sources are listed
    in the text instead, since Discord drops embeds silently.
    """
    lines = [heading] if heading else []
    if question:
        lines.append(f"**Question:** {escape(question)}")
    if answer.abstained:
        lines.append(ABSTAINED_RELATED if answer.related else ABSTAINED)
    else:
        lines.append(answer_text(answer))
    if answer.query and answer.query != answer.question:
        lines.append(f"-# Searched for: {escape(answer.query)}")
    # The answer's notes and its story (as of when, newer articles, how many sources) come from
    # article metadata: escaped like any article text.
    told = dict.fromkeys([*answer.notes, *story_notes(answer)])
    lines += [f"-# {note}" for note in notes] + [f"-# {escape(note)}" for note in told]

    sources = answer.related if answer.abstained else answer.citations
    related = [] if answer.abstained else answer.related
    if not embed_links:
        text = "\n".join(lines + source_lines(sources, related))
        return paginate(text)
    colour = ABSTAIN_COLOUR if answer.abstained else ANSWER_COLOUR
    embeds = source_cards(sources, colour)
    if related:
        embeds.append(related_embed(related))
    return paginate("\n".join(lines), embeds)


def render_partial(answer: Answer, *, question: str | None = None) -> str:
    """A generated answer while it streams: the sentences checked so far, no sources yet."""
    lines = [f"**Question:** {escape(question)}"] if question else []
    lines.append(f"{answer_text(answer)} …".strip())
    return truncate("\n".join(lines), CONTENT_LIMIT)


def source_cards(sources: list[Citation], colour: int = ANSWER_COLOUR) -> list[dict[str, Any]]:
    """One card per article, with every quote from it, in citation order.

    The Discord client merges embeds that share a `url` into the first and hides the others'
    text (it builds image galleries that way), so an article is one card; two articles that
    share a URL get a distinct `#n` fragment each.
    """
    groups: dict[str, list[Citation]] = {}
    for c in sources:
        groups.setdefault(c.doc_id, []).append(c)
    cards: list[dict[str, Any]] = []
    urls: set[str] = set()
    for quotes in groups.values():
        first = quotes[0]
        markers = " ".join(f"[{c.n}]" for c in quotes)
        card: dict[str, Any] = {
            "type": "rich",
            "title": truncate(f"{markers} {escape_quote(first.title, TITLE_CHARS)}", 256),
            "description": (f"“{escape_quote(first.quote)}”" if len(quotes) == 1 else
                            "\n".join(f"[{c.n}] “{escape_quote(c.quote)}”" for c in quotes)),
            "color": colour,
            "footer": {"text": f"Published {date(first.published)}" if first.published else "Publication date unknown"},
        }
        if first.also_reported_by:  # the other outlets that ran this story: one card for the story
            card["fields"] = [{"name": "Also reported by", "inline": False, "value": truncate("\n".join(
                f"{escape_quote(r.source or r.title, TITLE_CHARS)} · {date(r.published)}"
                for r in first.also_reported_by), 1024)}]
        if url := link(first.url):
            if url in urls:
                url = f"{url}{'-' if '#' in url else '#'}{first.n}"
            urls.add(url)
            card["url"] = url
        cards.append(card)
    return cards


def source_embed(c: Citation, colour: int = ANSWER_COLOUR) -> dict[str, Any]:
    return source_cards([c], colour)[0]


def link_label(text: str) -> str:
    """Text for a masked link's label: escaped, and with no link of its own (a link inside a label
    would be a second link, to wherever the article's title pointed)."""
    plain = _escape_plain(" ".join(text.split()))
    return truncate(re.sub(r"(?i)(https?):", r"\1\\:", plain), TITLE_CHARS)


def related_embed(related: list[Citation]) -> dict[str, Any]:
    lines = []
    for c in related:
        title = link_label(c.title)
        url = link(c.url)
        lines.append(f"[{c.n}] " + (f"[{title}]({url})" if url else title) + f" · {date(c.published)}")
    return {"type": "rich", "title": "Related", "description": "\n".join(lines), "color": RELATED_COLOUR}


def source_lines(sources: list[Citation], related: list[Citation]) -> list[str]:
    """Sources as message text, for channels where the bot may not embed links."""
    out: list[str] = []
    for heading, items in (("Sources", sources), ("Related", related)):
        if not items:
            continue
        out += ["", f"**{heading}**"]
        for c in items:
            url = link(c.url)
            meta = " · ".join(x for x in (date(c.published), url and f"<{url}>") if x)
            out.append(f"[{c.n}] {escape_quote(c.title, TITLE_CHARS)} · {meta}")
            if heading == "Sources":
                out.append(f"> “{escape_quote(c.quote)}”")
    return out


# -- the other replies -------------------------------------------------------------------------
def render_stats(stats: dict[str, Any]) -> list[Page]:
    embeds: list[dict[str, Any]] = [{
        "type": "rich",
        "title": "Index",
        "color": STATS_COLOUR,
        "fields": [
            {"name": "Documents", "value": str(stats.get("documents", "?")), "inline": True},
            {"name": "Chunks", "value": str(stats.get("chunks", "?")), "inline": True},
            {"name": "Model", "value": escape(str(stats.get("model", "?"))), "inline": True},
            {"name": "Last update", "value": escape(str(stats.get("updated") or stats.get("created") or "never")),
             "inline": True},
        ],
    }]
    sources = stats.get("sources") or {}
    if sources:
        lines = [f"{escape(str(name))}: {count}" for name, count in sources.items()]
        embeds.append({"type": "rich", "title": "Sources", "description": "\n".join(lines), "color": STATS_COLOUR})
    return paginate("", embeds)


def render_update(report: Any) -> str:
    what = "Rebuilt" if getattr(report, "rebuilt", False) else "Updated"
    text = (f"{what} the index in {report.seconds:.1f} s: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.removed)} removed, {report.unchanged} unchanged; {report.chunks_embedded} chunks embedded. "
            f"Now {report.documents} documents, {report.chunks} chunks.")
    skipped = getattr(report, "skipped", None) or []
    if skipped:
        text += f"\n-# {len(skipped)} file(s) skipped, e.g. {escape(str(skipped[0]))}"
    return text


def queued_note(ahead: int) -> str:
    return (f"{ahead} question{' is' if ahead == 1 else 's are'} ahead of yours; "
            "I'll answer here when it's your turn.")


def trimmed_note(limit: int) -> str:
    return f"Your question was long, so I only read its first {limit} characters."


def rate_limited(wait: float) -> str:
    return f"You're asking faster than I can keep up with: please try again in {max(1, round(wait))} s."


def apology(error_id: str) -> str:
    return (f"Sorry, something went wrong while answering that (error id `{error_id}`). "
            "The bot's host can find the details in its log under that id.")


def cannot_search(err: Exception) -> str:
    """A question the desk refuses as asked (its filters match no article, ...): what it said, as a sentence."""
    said = escape(str(err)).rstrip(".")
    return f"I can't answer that as asked: {said[:1].lower()}{said[1:]}."


def thread_name(question: str) -> str:
    """A thread title from the question: one line, at most 100 characters, no mentions."""
    name = discord.utils.escape_mentions(" ".join(question.split()))
    return truncate(name, 100) or "Question"

