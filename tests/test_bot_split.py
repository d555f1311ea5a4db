"""Splitting output to Discord's limits: at every limit, and never inside a marker, a link or a markdown span."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsdesk_bot.split import (CONTENT_LIMIT, EMBED_DESCRIPTION_LIMIT, EMBED_TITLE_LIMIT, EMBED_TOTAL_LIMIT,
                       EMBEDS_PER_MESSAGE, FIELD_VALUE_LIMIT, FIELDS_PER_EMBED, embed_size, fit_embed, paginate,
                       split_text, truncate)
from discord_server import markdown_spans, validate_message


def assert_sendable(pages) -> None:
    """Each page passes the local Discord server's checks of Discord's limits."""
    for page in pages:
        assert validate_message({"content": page.content, "embeds": page.embeds}) is None, page


# -- split_text at the limits ------------------------------------------------------------------
def test_text_at_the_limit_is_one_piece_and_one_more_character_makes_two() -> None:
    at_limit = ("word " * 400)[:CONTENT_LIMIT - 1] + "x"
    assert len(at_limit) == CONTENT_LIMIT
    assert split_text(at_limit, CONTENT_LIMIT) == [at_limit]
    pieces = split_text(at_limit + "y", CONTENT_LIMIT)
    assert len(pieces) == 2 and all(len(p) <= CONTENT_LIMIT for p in pieces)
    assert " ".join(pieces).replace(" ", "") == (at_limit + "y").replace(" ", "")


def test_empty_and_blank_text_give_no_pieces() -> None:
    assert split_text("", 10) == [] and split_text("  \n ", 10) == []


def test_cuts_at_a_blank_line_before_a_line_before_a_sentence_before_a_space() -> None:
    assert split_text("aaaa aaaa.\n\nbbbb bbbb. cccc", 20) == ["aaaa aaaa.", "bbbb bbbb. cccc"]
    assert split_text("aaaa. aaaa\nbbbb bbbb cccc", 20) == ["aaaa. aaaa", "bbbb bbbb cccc"]
    assert split_text("aaaa aaaa aa. bbbb bbbb bbbb", 20) == ["aaaa aaaa aa.", "bbbb bbbb bbbb"]
    assert split_text("aaaa aaaa aaaa bbbb bbbb", 20) == ["aaaa aaaa aaaa bbbb", "bbbb"]


def test_a_sentence_keeps_its_citation_markers() -> None:
    text = "The council approved it. [1] [2] Work starts in April and lasts a year."
    pieces = split_text(text, 32)
    assert pieces[0] == "The council approved it. [1] [2]"
    assert all(len(p) <= 32 for p in pieces)
    # between words, a marker is not pushed away from the sentence before it either
    assert split_text("one two three [12] four five", 18) == ["one two three [12]", "four five"]


def test_a_link_that_would_cross_the_limit_moves_whole_to_the_next_piece() -> None:
    url = "https://example.org/a/very/long/path?with=query&and_more=1"
    text = f"See {url} for more."
    pieces = split_text(text, len(url) + 5)
    assert pieces == [f"See {url}", "for more."]
    for wrapped in (f"<{url}>", f"[the article](<{url}>)", f"[the article]({url})"):
        pieces = split_text(f"Read {wrapped} now please", len(wrapped) + 2)
        assert wrapped in pieces


def test_markdown_spans_mentions_and_escapes_are_not_cut() -> None:
    for span in ("**bold words here**", "`inline code span`", "||a spoiler here||", "~~struck out~~",
                 "_some italics_", "<@123456789012345678>", "<t:1700000000:R>"):
        pieces = split_text(f"aa {span} bb", len(span) + 1)
        assert span in pieces, (span, pieces)
    assert split_text("abcdefghij\\*klm", 11) == ["abcdefghij", "\\*klm"]  # not "...j\" + "*klm"


def test_a_cut_inside_a_line_never_makes_what_follows_a_heading_quote_or_list() -> None:
    line_start = {"heading", "subtext", "quote", "list"}
    for tail in ("# Heading", "### Heading", "-# small", "> quoted", ">>> quoted", "- item", "+ item", "1. item"):
        text = "word " * 5 + tail + " and more words"
        for limit in range(len("word " * 5), len(text)):
            pieces = split_text(text, limit)
            assert " ".join(pieces) == text and all(len(p) <= limit for p in pieces)
            assert not [s for p in pieces for s in markdown_spans(p) if s[0] in line_start], (tail, limit, pieces)
    # a line of its own keeps its start: the bot's own "-# note" line after a line break
    assert split_text("The answer is here.\n-# As of 3 May 2026.", 25) == ["The answer is here.", "-# As of 3 May 2026."]


def test_without_any_boundary_the_cut_is_hard_and_exact() -> None:
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_a_span_longer_than_the_limit_is_cut_as_a_last_resort() -> None:
    url = "https://example.org/" + "p" * 50
    pieces = split_text(url, 30)
    assert "".join(pieces) == url and all(len(p) <= 30 for p in pieces)


def test_truncate_adds_an_ellipsis_between_words_and_never_inside_a_link() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("one two three four", 12) == "one two…"
    url = "https://example.org/xyz"
    assert truncate(f"look at {url} it is", 20) == "look at…"
    assert len(truncate("x" * 100, 10)) == 10


# -- embeds and pages at the limits ------------------------------------------------------------
def test_description_at_the_limit_is_one_embed_and_longer_continues_in_another() -> None:
    text = ("A sentence of words. " * 300)[:EMBED_DESCRIPTION_LIMIT].rstrip()
    text = text + "x" * (EMBED_DESCRIPTION_LIMIT - len(text))
    assert len(fit_embed({"description": text})) == 1
    parts = fit_embed({"title": "T", "url": "https://e.org", "description": text + " more words", "color": 5,
                       "footer": {"text": "F"}})
    assert len(parts) == 2
    assert parts[0]["title"] == "T" and parts[0]["url"] == "https://e.org" and "footer" not in parts[0]
    assert parts[1] == {"color": 5, "description": parts[1]["description"], "footer": {"text": "F"}}
    assert all(len(p["description"]) <= EMBED_DESCRIPTION_LIMIT for p in parts)


def test_titles_field_values_and_footers_are_truncated_to_their_limits() -> None:
    (embed,) = fit_embed({"title": "t " * 200, "fields": [{"name": "n", "value": "v " * 600}],
                          "footer": {"text": "f" * 3000}})
    assert len(embed["title"]) <= EMBED_TITLE_LIMIT and embed["title"].endswith("t…")
    assert len(embed["fields"][0]["value"]) <= FIELD_VALUE_LIMIT
    assert len(embed["footer"]["text"]) == 2048


def test_twenty_five_fields_fit_one_embed_and_the_twenty_sixth_starts_another() -> None:
    fields = [{"name": f"n{i}", "value": "v"} for i in range(26)]
    assert len(fit_embed({"fields": fields[:FIELDS_PER_EMBED]})) == 1
    parts = fit_embed({"title": "T", "fields": fields, "color": 1})
    assert [len(p["fields"]) for p in parts] == [25, 1]
    assert [f["name"] for p in parts for f in p["fields"]] == [f["name"] for f in fields]


def test_big_fields_are_spread_so_no_embed_passes_6000_characters() -> None:
    fields = [{"name": "n" * 256, "value": "v" * 1024} for _ in range(25)]
    parts = fit_embed({"title": "T", "fields": fields})
    assert all(embed_size(p) <= EMBED_TOTAL_LIMIT for p in parts)
    assert sum(len(p["fields"]) for p in parts) == 25
    assert_sendable(paginate("", [{"title": "T", "fields": fields}]))


def test_content_at_2000_is_one_message_and_2001_two() -> None:
    assert len(paginate("x" * CONTENT_LIMIT)) == 1
    pages = paginate("x" * (CONTENT_LIMIT + 1))
    assert [len(p.content) for p in pages] == [2000, 1]


def test_ten_embeds_fit_a_message_and_the_eleventh_goes_to_the_next() -> None:
    embeds = [{"title": f"e{i}", "description": "d"} for i in range(11)]
    assert len(paginate("text", embeds[:EMBEDS_PER_MESSAGE])) == 1
    pages = paginate("text", embeds)
    assert [len(p.embeds) for p in pages] == [10, 1]
    assert pages[0].content == "text" and pages[1].content == ""


def test_embeds_past_6000_characters_in_total_go_to_the_next_message() -> None:
    embeds = [{"title": "t", "description": "d" * 2000} for _ in range(4)]
    pages = paginate("answer", embeds)
    assert [len(p.embeds) for p in pages] == [2, 2]
    assert_sendable(pages)


def test_embeds_go_under_the_last_piece_of_long_content() -> None:
    pages = paginate("word " * 600, [{"title": "source"}])
    assert len(pages) == 2 and pages[0].embeds == [] and pages[1].embeds == [{"title": "source"}]


# -- properties --------------------------------------------------------------------------------
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789,'-éß", min_size=1, max_size=14)
PHRASE = st.lists(WORD, min_size=1, max_size=3).map(" ".join)
SLUG = st.text(alphabet="abcxyz0123456789_-/.?=&%", min_size=0, max_size=40)
URL = st.builds(lambda scheme, host, path: f"{scheme}://{host}.org/{path}",
                st.sampled_from(["http", "https"]), st.text(alphabet="abcdefghijk", min_size=1, max_size=10), SLUG)
ATOM = st.one_of(
    st.integers(1, 150).map(lambda n: f"[{n}]"),  # citation marker
    URL,
    URL.map(lambda u: f"<{u}>"),
    st.builds(lambda label, u: f"[{label}](<{u}>)", PHRASE, URL),
    st.builds(lambda label, u: f"[{label}]({u})", PHRASE, URL),
    PHRASE.map(lambda p: f"**{p}**"),
    PHRASE.map(lambda p: f"||{p}||"),
    PHRASE.map(lambda p: f"~~{p}~~"),
    PHRASE.map(lambda p: f"`{p}`"),
    st.integers(10**17, 10**19).map(lambda n: f"<@{n}>"),
    st.sampled_from(["\\*", "\\_", "\\[", "\\`", "\\|", "\\~"]),
)
SEPARATOR = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "! ", "? ", ", "])


@dataclass
class Marked:
    text: str
    atoms: list[tuple[int, int]]  # where each atom (which must never be cut) is in the text


@st.composite
def marked_text(draw: st.DrawFn) -> Marked:
    token = st.one_of(WORD.map(lambda w: (w, False)), ATOM.map(lambda a: (a, True)))
    parts = draw(st.lists(st.tuples(token, SEPARATOR), min_size=1, max_size=120))
    text, atoms = "", []
    for (token, atom), sep in parts:
        if atom:
            atoms.append((len(text), len(text) + len(token)))
        text += token + sep
    return Marked(text, atoms)


def pieces_in(text: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Where each piece is in the text; only whitespace may lie between pieces."""
    spans, pos = [], 0
    for piece in pieces:
        start = text.index(piece, pos)
        assert text[pos:start].strip() == "", "text was lost between pieces"
        spans.append((start, start + len(piece)))
        pos = start + len(piece)
    assert text[pos:].strip() == "", "text was lost at the end"
    return spans


@settings(max_examples=150, deadline=None)
@given(marked_text(), st.integers(0, 300))
def test_no_cut_breaks_a_marker_a_link_or_a_markdown_span(marked: Marked, extra: int) -> None:
    longest = max((e - s for s, e in marked.atoms), default=1)
    limit = longest + extra
    pieces = split_text(marked.text, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    spans = pieces_in(marked.text, pieces)
    for s, e in marked.atoms:
        assert any(ps <= s and e <= pe for ps, pe in spans), (marked.text[s:e], pieces)


@settings(max_examples=100, deadline=None)
@given(marked_text(), st.integers(12, 400))
def test_truncation_keeps_whole_atoms_and_marks_the_cut(marked: Marked, limit: int) -> None:
    text = marked.text.strip()
    cut = truncate(text, limit)
    assert len(cut) <= limit
    if cut == text:
        return
    assert cut.endswith("…")
    kept = cut[:-1]
    assert text.startswith(kept)
    for s, e in marked.atoms:  # an atom is kept whole or not at all
        if s < len(kept):
            assert e <= len(kept) or e - s >= limit, (marked.text[s:e], cut)


@settings(max_examples=40, deadline=None)
@given(marked_text(), st.lists(st.tuples(PHRASE, marked_text(), st.lists(st.tuples(PHRASE, PHRASE), max_size=30)),
                               max_size=12))
def test_any_content_and_embeds_become_sendable_messages_in_order(content: Marked, raw_embeds) -> None:
    embeds = [{"title": title * 20, "description": desc.text * 5,
               "fields": [{"name": n, "value": v * 40} for n, v in fields]}
              for title, desc, fields in raw_embeds]
    pages = paginate(content.text, embeds)
    assert_sendable(pages)
    assert [p.content for p in pages if p.content] == split_text(content.text, CONTENT_LIMIT)
    descriptions = "".join(e.get("description", "") for p in pages for e in p.embeds)
    assert descriptions.replace(" ", "").replace("\n", "") == \
        "".join(e["description"].strip() for e in embeds).replace(" ", "").replace("\n", "")


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_tiny_limits_still_terminate(limit: int) -> None:
    pieces = split_text("ab [1] https://x.org cd", limit)
    assert all(len(p) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "") == "ab[1]https://x.orgcd"
