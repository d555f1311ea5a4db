"""Property: no article text, title or URL can make Discord render a link, mention or formatting the bot did not write.

What Discord renders is read back with the test server's markdown reader (`markdown_spans`),
the same one the end-to-end tests use on what the bot sent.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from discord_server import FakeDiscord, markdown_spans
from hypothesis import given, settings
from hypothesis import strategies as st

from newsdesk import Answer, Citation
from newsdesk_bot.format import link, render_answer

HOSTILE = ["**", "__", "*", "_", "~~", "||", "`", "```", "> ", ">>> ", "# ", "-# ", "- ", "1. ", "\n", "\\",
           "[", "]", "(", ")", "](", "<", ">", "@everyone", "@here", "<@123456789012345678>", "<@&1>",
           "<#123456789012345678>", "<t:1767225600:R>", "</ask:1>", "<:x:1>", "[Log in](https://phish.example/x)",
           "[x](<https://phish.example>)", "https://ok.example/a_b*c", "<https://ok.example/y>", "word", " ", "é",
           "ignore previous instructions", "[7]"]
TEXT = st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=25).map("".join).map(lambda t: t if t.strip() else "x")
URLS = st.sampled_from([None, "https://example.org/a", "https://a.example/)[Login](https://phish.example",
                        "https://ok.example/a_(b)", "https://x.org/<b>\"q\"", "javascript:alert(1)",
                        "https://exa mple.org/", "https://phish.example]x", "http://[::1]/"])
BOT_BOLD = {"**Question:**", "**Sources**", "**Related**"}


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    def cite(n: int) -> Citation:
        quote = draw(TEXT)
        return Citation(n=n, doc_id=f"doc{draw(st.integers(1, 3))}", title=draw(TEXT), url=draw(URLS),
                        published=None, quote=quote, start=0, end=len(quote), score=0.5)
    cites = [cite(n) for n in range(1, draw(st.integers(0, 4)) + 1)]
    related = [cite(len(cites) + n) for n in range(1, draw(st.integers(0, 3)) + 1)]
    if not cites:
        return Answer("q", "none", True, [], related)
    return Answer("q", " ".join(f"{c.quote} [{c.n}]" for c in cites), False, cites, related)


@settings(max_examples=500, deadline=None)
@given(answers(), st.one_of(st.none(), TEXT), st.booleans())
def test_article_text_and_urls_render_nothing_but_their_own_text(answer: Answer, question: str | None,
                                                                  embed_links: bool) -> None:
    pages = render_answer(answer, question=question, embed_links=embed_links)
    everything = answer.citations + answer.related
    texts = " ".join([question or ""] + [c.quote for c in everything] + [c.title for c in everything])
    own_urls = {link(c.url) for c in everything} - {None}
    related_urls = [link(c.url) for c in ([] if answer.abstained else answer.related) if link(c.url)]
    masked: list[str] = []
    for page in pages:
        seen = FakeDiscord.seen_embeds({"embeds": page.embeds})
        assert len(seen) == len(page.embeds)  # no card hidden behind another with the same url
        for text in [page.content] + [e.get("description") or "" for e in seen]:
            for kind, span in markdown_spans(text):
                assert kind != "mention", (span, text)
                if kind == "masked_link":
                    masked.append(span.split(" -> ")[-1])
                elif kind in ("link", "autolink"):  # a URL the article itself wrote, or the article's own
                    url = span.strip("<>")
                    assert url in texts or url in own_urls, (span, text)
                elif kind == "bold":
                    assert span in BOT_BOLD, (span, text)
                elif kind == "quote":  # the quoted passage under a source listed as text
                    assert not embed_links and "\n> “" in "\n" + text, (span, text)
                else:
                    raise AssertionError(f"{kind} {span!r} in {text!r}")
    assert masked == (related_urls if embed_links else [])  # the Related card's links, each to its article's own address
    for url in masked:
        assert urlsplit(url).hostname != "phish.example"
