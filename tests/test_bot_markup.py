"""Property: no article text, title or URL can make Discord render a link, mention or formatting the bot did not write.

What Discord renders is read back with the test server's markdown reader (`markdown_spans`),
the same one the end-to-end tests use on what the bot sent: the message text and every part of
every card users see (title, description, field names and values, footer), and each card's own
url. Answers come in every shape the library returns: cited and abstained, extractive and
generated, with a timeline, notes, newer reports, and copies in other outlets
(`also_reported_by`), all of them written by a hostile page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from discord_server import FakeDiscord, markdown_spans
from hypothesis import given, settings
from hypothesis import strategies as st

from newsdesk import Answer, Citation, human_date, story_notes
from newsdesk.results import Generated, Report, Sentence, TimelineEntry
from newsdesk_bot.format import link, render_answer

HOSTILE = ["**", "__", "*", "_", "~~", "||", "`", "```", "> ", ">>> ", "# ", "-# ", "- ", "1. ", "\n", "\\",
           "[", "]", "(", ")", "](", "<", ">", "@everyone", "@here", "<@123456789012345678>", "<@&1>",
           "<#123456789012345678>", "<t:1767225600:R>", "</ask:1>", "<:x:1>", "[Log in](https://phish.example/x)",
           "[x](<https://phish.example>)", "https://ok.example/a_b*c", "<https://ok.example/y>", "word", " ", "é",
           "ignore previous instructions", "[7]", "http://phish.example/bare", "HTTPS://PHISH.example/up",
           " # heading", " > quote", " - item", " 2. item", " -# small"]
TEXT = st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=25).map("".join).map(lambda t: t if t.strip() else "x")
# A quote long enough to need a second message now and then, with what Discord reads at a line's
# start all around the cut: a cut between words must not make it a heading, a quote or a list.
OPENERS = st.sampled_from([" # heading", " ### heading", " > quote", " >>> quote", " - item", " + item", " 2. item",
                           " -# small"])
LONG = st.one_of(TEXT, st.builds(lambda n, opener, t: "word " * n + opener * 30 + t, st.integers(250, 400), OPENERS,
                                 TEXT))
URLS = st.sampled_from([None, "https://example.org/a", "https://a.example/)[Login](https://phish.example",
                        "https://ok.example/a_(b)", "https://x.org/<b>\"q\"", "javascript:alert(1)",
                        "https://exa mple.org/", "https://phish.example]x", "http://[::1]/"])
# The loader normalizes every date, so dates are ISO days or times, or missing.
DATES = st.sampled_from([None, "2026-01-03", "2026-11-30T08:15:00+00:00"])
BOT_BOLD = {"**Question:**", "**Sources**", "**Related**"}
LINE_START = {"heading", "subtext", "quote", "list"}


def reports(prefix: str) -> st.SearchStrategy[tuple[Report, ...]]:
    report = st.builds(lambda i, title, source, published, url: Report(f"{prefix}{i}", title, source, published, url),
                       st.integers(1, 9), TEXT, st.one_of(st.none(), TEXT), DATES, URLS)
    return st.lists(report, max_size=2).map(tuple)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    def cite(n: int) -> Citation:
        quote = draw(LONG)
        return Citation(n=n, doc_id=f"doc{draw(st.integers(1, 3))}", title=draw(TEXT), url=draw(URLS),
                        published=draw(DATES), quote=quote, start=0, end=len(quote), score=0.5,
                        source=draw(st.one_of(st.none(), TEXT)), also_reported_by=draw(reports("copy")),
                        sources_count=draw(st.integers(1, 3)))
    cites = tuple(cite(n) for n in range(1, draw(st.integers(0, 4)) + 1))
    related = tuple(cite(len(cites) + n) for n in range(1, draw(st.integers(0, 3)) + 1))
    story = {"query": draw(st.one_of(st.none(), TEXT)), "notes": tuple(draw(st.lists(TEXT, max_size=2))),
             "as_of": draw(DATES), "newer": draw(reports("newer"))}
    if not cites:
        return Answer("q", "none", True, (), related, **story)
    shape = draw(st.sampled_from(["extractive", "timeline", "generated"]))
    text = " ".join(f"{c.quote} [{c.n}]" for c in cites)
    if shape == "timeline":
        steps = tuple(TimelineEntry(draw(st.sampled_from(["2026-01-03", "2026-02-14"])), c.n, c.quote) for c in cites)
        return Answer("q", text, False, cites, related, timeline=steps, **story)
    if shape == "generated":
        said = tuple(Sentence(draw(LONG), tuple(draw(st.lists(st.sampled_from([c.n for c in cites]), min_size=1,
                                                                  max_size=2)))) for _ in cites)
        return Answer("q", text, False, cites, related, generated=Generated("m", said), **story)
    return Answer("q", text, False, cites, related, **story)


def card_texts(embed: dict) -> list[str]:
    """Every part of a card Discord renders text in."""
    texts = [embed.get("title") or "", embed.get("description") or "", (embed.get("footer") or {}).get("text") or ""]
    return texts + [part for f in embed.get("fields") or [] for part in (f["name"], f["value"])]


@settings(max_examples=500, deadline=None)
@given(answers(), st.one_of(st.none(), TEXT), st.booleans())
def test_article_text_and_urls_render_nothing_but_their_own_text(answer: Answer, question: str | None,
                                                                  embed_links: bool) -> None:
    pages = render_answer(answer, question=question, embed_links=embed_links)
    sources = answer.related if answer.abstained else answer.citations
    related = [] if answer.abstained else answer.related
    own_urls = [link(c.url) for c in (*sources, *related) if link(c.url)]
    # the bot's own lines: a bold date on each timeline step, one "-# " line per note, and Sources/Related
    bold = BOT_BOLD | {f"**{human_date(step.date)}:**" for step in answer.timeline}
    searched = answer.query and answer.query != answer.question
    notes = len(dict.fromkeys([*answer.notes, *story_notes(answer)])) + bool(searched)
    masked: list[str] = []
    autolinks: list[str] = []
    subtext = 0
    for page in pages:
        seen = FakeDiscord.seen_embeds({"embeds": page.embeds})
        assert len(seen) == len(page.embeds)  # no card hidden behind another with the same url
        for embed in seen:  # a card's own link is its article's checked address
            if embed.get("url"):
                assert any(embed["url"].split("#")[0].startswith(u.split("#")[0]) for u in own_urls), embed["url"]
                assert urlsplit(embed["url"]).hostname != "phish.example"
        for where, text in [("content", page.content)] + [("card", t) for e in seen for t in card_texts(e)]:
            for kind, span in markdown_spans(text):
                assert kind not in ("mention", "link", "heading", "list"), (kind, span, text)
                if kind == "masked_link":  # only the Related card's, to each related article's own address
                    assert where == "card", (span, text)
                    masked.append(span.split(" -> ")[-1])
                elif kind == "autolink":  # only a source listed as text, to its own address
                    assert where == "content" and not embed_links, (span, text)
                    autolinks.append(span)
                elif kind == "bold":
                    assert where == "content" and span in bold, (span, text)
                elif kind == "subtext":
                    assert where == "content", (span, text)
                    subtext += 1
                elif kind == "quote":  # the quoted passage under a source listed as text
                    assert not embed_links and "\n> “" in "\n" + text, (span, text)
                else:
                    raise AssertionError(f"{kind} {span!r} in {where} {text!r}")
    related_urls = [link(c.url) for c in related if link(c.url)]
    assert masked == (related_urls if embed_links else [])
    assert autolinks == ([] if embed_links else own_urls)
    assert subtext == notes  # article text never starts a "-# " line, even where a long answer is cut
    for url in masked + autolinks:
        assert urlsplit(url).hostname != "phish.example"
