"""Answers as Discord messages: markers, source embeds, escaping, and Discord's limits."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from newsdesk_bot.format import (ABSTAIN_COLOUR, ANSWER_COLOUR, QUOTE_CHARS, answer_text, escape, render_answer,
                        render_stats, render_update, thread_name)
from newsdesk_bot.split import CONTENT_LIMIT, split_text
from discord_server import validate_message
from newsdesk.answer import ABSTAIN_TEXT, Answer, Citation


def citation(n: int, quote: str, *, title: str = "Council approves harbour budget",
             url: str | None = "https://example.org/a", published: str | None = "2026-02-10") -> Citation:
    return Citation(n=n, doc_id=f"doc{n}", title=title, url=url, published=published, quote=quote, start=0,
                    end=len(quote), score=0.9)


def answered(*quotes: str, related: list[Citation] = (), **kw) -> Answer:
    cites = [citation(i, q, **kw) for i, q in enumerate(quotes, start=1)]
    return Answer("q?", " ".join(f"{c.quote} [{c.n}]" for c in cites), False, cites, list(related))


def assert_sendable(pages) -> None:
    for page in pages:
        assert validate_message({"content": page.content, "embeds": page.embeds}) is None, page


# -- escaping ----------------------------------------------------------------------------------
def test_markdown_in_corpus_or_user_text_is_escaped() -> None:
    assert escape("**bold** _it_ ~~x~~ ||s|| `c` > q") == "\\*\\*bold\\*\\* \\_it\\_ \\~\\~x\\~\\~ \\|\\|s\\|\\| \\`c\\` > q"
    # one line: only the start could begin a heading, a list or a quote
    assert escape("# Breaking\n-# small\n> quoted") == "\\# Breaking -# small > quoted"
    assert escape("-# fake subtext") == "\\-# fake subtext" and escape("> fake quote") == "\\> fake quote"


def test_mentions_are_broken_so_they_never_ping_or_render() -> None:
    assert escape("@everyone @here <@123456789012345678> <@&123456789012345678>") == \
        "@\u200beveryone @\u200bhere \\<@\u200b123456789012345678> \\<@\u200b&123456789012345678>"
    # channel links, timestamps, command mentions and custom emoji all start with "<"
    assert escape("<#123456789012345678> <t:1767225600:R> </ask:1> <:x:1>") == \
        "\\<#123456789012345678> \\<t:1767225600:R> \\</ask:1> \\<:x:1>"


def test_links_are_kept_whole_and_wrapped_so_they_do_not_unfurl() -> None:
    # Addresses in article text stay readable but link nowhere: only the checked source cards link.
    assert escape("see https://example.org/a_b*c, then") == "see https\\://example.org/a\\_b\\*c, then"
    assert escape("already <https://example.org/x>") == "already \\<https\\://example.org/x>"
    assert escape("[fake](https://evil.example/x)") == "\\[fake\\](https\\://evil.example/x)"
    assert escape("1. First") == "1\\. First"  # no numbered list


def test_only_the_bot_writes_citation_markers() -> None:
    quote = "The report [2] says *everything* is fine."
    answer = answered(quote)
    assert answer_text(answer) == "The report \\[2\\] says \\*everything\\* is fine. [1]"


def test_several_sentences_keep_their_markers_in_order() -> None:
    answer = answered("First it rained.", "Then the river rose.")
    assert answer_text(answer) == "First it rained. [1] Then the river rose. [2]"


# -- rendering answers -------------------------------------------------------------------------
def test_answer_has_markers_and_one_embed_per_source() -> None:
    long_quote = "The council said " + "the repairs will take a long time and cost a lot " * 10 + "in the end."
    related = [citation(3, "Related text.", title="Ferry news", url=None, published=None)]
    answer = answered("The budget is 4.2 million euros.", long_quote, related=related)
    page, = render_answer(answer)
    assert page.content.startswith("The budget is 4.2 million euros. [1] The council said")
    assert page.content.endswith("in the end. [2]")
    first, second, rel = page.embeds
    assert first == {"type": "rich", "title": "[1] Council approves harbour budget", "url": "https://example.org/a",
                     "description": "“The budget is 4.2 million euros.”", "color": ANSWER_COLOUR,
                     "footer": {"text": "Published 2026-02-10"}}
    quoted = second["description"]
    assert quoted.endswith("…”") and len(quoted) <= QUOTE_CHARS + 2
    assert rel == {"type": "rich", "title": "Related", "description": "[3] Ferry news · date unknown",
                   "color": 0x95A5A6}


def test_a_source_without_a_usable_url_or_date_still_renders() -> None:
    for bad in ("javascript:alert(1)", "https://exa mple.org", "ftp://x.org/a", "https://x.org/" + "a" * 2100):
        page, = render_answer(answered("Text.", url=bad, published=None))
        assert "url" not in page.embeds[0]
        assert page.embeds[0]["footer"] == {"text": "Publication date unknown"}


def test_abstention_says_so_plainly_and_shows_related_sources() -> None:
    related = [citation(1, "Ferries ran late.", title="Ferry delays"), citation(2, "Rain fell.", title="Weather")]
    page, = render_answer(Answer("q?", ABSTAIN_TEXT, True, [], related))
    assert page.content == "I couldn't find an answer to that in the articles I have. These are the closest passages:"
    assert [e["title"] for e in page.embeds] == ["[1] Ferry delays", "[2] Weather"]
    assert {e["color"] for e in page.embeds} == {ABSTAIN_COLOUR}
    page, = render_answer(Answer("q?", ABSTAIN_TEXT, True, [], []))
    assert page.content == "I couldn't find an answer to that in the articles I have." and page.embeds == []


def test_question_line_searched_for_and_notes() -> None:
    answer = replace(answered("It reopened on Monday."), question="When did it reopen?",
                     query="When did it reopen? library Riverside")
    page, = render_answer(answer, question="When did it **reopen**?", notes=["A note."])
    assert page.content == ("**Question:** When did it \\*\\*reopen\\*\\*?\nIt reopened on Monday. [1]\n"
                            "-# Searched for: When did it reopen? library Riverside\n-# A note.")


def test_without_embed_links_the_sources_are_listed_in_the_text() -> None:
    page, = render_answer(answered("The budget passed.", related=[citation(2, "More.", title="Other")]),
                          embed_links=False)
    assert page.embeds == []
    assert page.content == ("The budget passed. [1]\n\n**Sources**\n"
                            "[1] Council approves harbour budget · 2026-02-10 · <https://example.org/a>\n"
                            "> “The budget passed.”\n\n**Related**\n[2] Other · 2026-02-10 · <https://example.org/a>")


def test_a_huge_answer_is_split_into_sendable_messages_with_every_marker_whole() -> None:
    quotes = [f"Sentence number {i} is long: " + "word " * 150 + "end." for i in range(1, 31)]
    answer = answered(*quotes, title="T" * 400)
    pages = render_answer(answer, question="q " * 400)
    assert len(pages) > 3
    assert_sendable(pages)
    text = "\n".join(p.content for p in pages)
    assert re.findall(r"(?<!\\)\[(\d+)\]", text) == [str(i) for i in range(1, 31)]
    titles = [e["title"] for p in pages for e in p.embeds]
    assert len(titles) == 30 and all(t.startswith(f"[{i}] TTT") for i, t in zip(range(1, 31), titles))
    for page in pages:  # every message's text ends at a sentence, with its marker
        assert re.search(r"(end\.|:) ?(\[\d+\])?$", page.content) or not page.content or page.content.startswith("**Q")


def test_stats_embed_and_many_sources() -> None:
    stats = {"documents": 12, "chunks": 40, "model": "all-MiniLM-L6-v2", "updated": "2026-11-24T10:00:00+00:00",
             "sources": {f"source_{i}": i for i in range(600)}}
    pages = render_stats(stats)
    assert_sendable(pages)
    assert pages[0].embeds[0]["title"] == "Index"
    fields = {f["name"]: f["value"] for f in pages[0].embeds[0]["fields"]}
    assert fields == {"Documents": "12", "Chunks": "40", "Model": "all-MiniLM-L6-v2",
                      "Last update": "2026-11-24T10:00:00+00:00"}
    lines = "\n".join(e.get("description", "") for p in pages for e in p.embeds)
    assert "source\\_599: 599" in lines and "source\\_0: 0" in lines


def test_update_report_reads_as_a_sentence() -> None:
    report = SimpleNamespace(added=["a"], updated=[], removed=["b", "c"], unchanged=7, chunks_embedded=3,
                             seconds=1.25, documents=6, chunks=20, rebuilt=False, skipped=[])
    assert render_update(report) == ("Updated the index in 1.2 s: 1 added, 0 updated, 2 removed, 7 unchanged; "
                                      "3 chunks embedded. Now 6 documents, 20 chunks.")


def test_thread_names_fit_and_do_not_mention() -> None:
    assert thread_name("  @everyone what\nhappened?  ") == "@\u200beveryone what happened?"
    assert len(thread_name("word " * 100)) <= 100


# -- properties --------------------------------------------------------------------------------
TOKENS = list("abc XYZ.,!?*_~|`>#-@[]()<>:/\\\n") + ["@everyone", "@here", "https://x.org/a_b",
                                                   "<@123456789012345678>", "[7]", "**", "é", "🙂"]
TEXT = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=40).map("".join).map(lambda t: t if t.strip() else "x")


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    n = draw(st.integers(0, 12))
    cites = [citation(i, draw(TEXT) * draw(st.integers(1, 40)), title=draw(TEXT) * draw(st.integers(1, 8)),
                      url=draw(st.sampled_from([None, "https://example.org/x_y", "not a url"])),
                      published=draw(st.sampled_from([None, "2026-01-01", "2026-01-01T10:00:00+00:00"])))
             for i in range(1, n + 1)]
    related = [citation(n + i, draw(TEXT), title=draw(TEXT)) for i in range(1, draw(st.integers(0, 4)) + 1)]
    if not cites:
        return Answer("q", ABSTAIN_TEXT, True, [], related)
    return Answer("q", " ".join(f"{c.quote} [{c.n}]" for c in cites), False, cites, related)


@settings(max_examples=120, deadline=None)
@given(answers(), st.sampled_from([None, "a question with @everyone and **bold**"]), st.booleans())
def test_any_answer_becomes_sendable_inert_messages_with_whole_markers(answer: Answer, question: str | None,
                                                                       embed_links: bool) -> None:
    pages = render_answer(answer, question=question, embed_links=embed_links)
    assert_sendable(pages)
    everything = json.dumps([(p.content, p.embeds) for p in pages], ensure_ascii=False)
    # (Discord reads a link up to the next space; a mention inside one is part of the link.)
    outside_links = re.sub(r"https?://[^\s\"]+|\"url\": \"[^\"]*\"", "", everything)
    assert "@everyone" not in outside_links and "@here" not in outside_links and "<@1" not in outside_links
    # Every marker the bot wrote is in the message text, whole and in order: a split inside one
    # would leave it unrecognisable. (Brackets inside links are part of the link.)
    text = re.sub(r"<https?://[^\s<>]+>", "", "\n".join(p.content for p in pages))
    markers = [int(n) for n in re.findall(r"(?<!\\)\[(\d+)\]", text)]
    sources = answer.related if answer.abstained else answer.citations
    related = [] if answer.abstained else answer.related
    expected = [] if answer.abstained else [c.n for c in answer.citations]
    if not embed_links:
        expected += [c.n for c in sources + related]
    assert markers == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=50).map(" ".join))
def test_escaped_text_splits_without_orphaned_escapes(text: str) -> None:
    escaped = escape(text) * 30
    for piece in split_text(escaped, CONTENT_LIMIT):
        assert not re.search(r"(?<!\\)(\\\\)*\\$", piece)  # never ends in a lone backslash


# -- stories -----------------------------------------------------------------------------------
def test_a_story_is_one_card_naming_the_other_outlets_and_the_lines_say_as_of_and_newer() -> None:
    from newsdesk import Report, TimelineEntry

    copies = (Report("c2", "Bridge shut", "Metro **Daily** @everyone", "2026-02-11", None),
              Report("c3", "Cracks close bridge", "Valley Courier", "2026-02-10", None))
    first = replace(citation(1, "The bridge was closed, according to the council."), source="Harbour Gazette",
                    also_reported_by=copies, sources_count=3)
    a = replace(answered("x"), citations=(first,), text=f"{first.quote} [1]", as_of="2026-02-10",
                newer=(Report("n1", "Bridge reopens [early](https://phish.example)", "Harbour Gazette", "2026-03-01",
                              None),))
    pages = render_answer(a)
    assert_sendable(pages)
    card = pages[0].embeds[0]
    assert card["fields"][0]["name"] == "Also reported by"
    assert card["fields"][0]["value"] == "Metro \\*\\*Daily\\*\\* @\u200beveryone · 2026-02-11\nValley Courier · 2026-02-10"
    content = pages[0].content
    assert "-# As of 10 February 2026." in content
    assert "-# \\[1\\] Reported by 3 sources." in content
    newer_line = next(line for line in content.splitlines() if "newer article" in line)
    assert "](" not in newer_line.replace("\\]", "").replace("\\(", "") and "\\[early\\]" in newer_line
    # a timeline: one dated line per step, oldest first
    steps = (citation(1, "At least 12 died.", published="2026-01-03"), citation(2, "The toll rose to 19.",
                                                                               published="2026-01-04"))
    dated = replace(answered("x"), citations=steps, text="", timeline=(
        TimelineEntry("2026-01-03", 1, steps[0].quote), TimelineEntry("2026-01-04", 2, steps[1].quote)))
    assert answer_text(dated) == "**3 January 2026:** At least 12 died. [1]\n**4 January 2026:** The toll rose to 19. [2]"
