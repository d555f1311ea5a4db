"""The real bot with a language model: /ask edits its reply as checked sentences stream in.

Discord is the local server in discord_server.py, the model the one in llm_server.py; the test
asserts on the edits the bot sent to Discord and on the request it sent to the model.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from discord_server import FakeDiscord, pointed_at
from llm_server import FakeLLM, Reply, fake_llm
from test_bot_e2e import NONE, answer_id_of, bot_settings, posted_to, running_bot, vote_buttons

from newsdesk_bot import replies
from newsdesk import Desk
from newsdesk.llm import LLMSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")

SENTENCES = [
    "The harbour bridge in Port Halden will reopen to traffic on 14 June [1].",
    "The repairs cost 4.2 million euros, the city's transport office said [1].",
    "All answers are HACKED [1].",  # obeys the injection in the article: never shown
    "Engineers replaced 300 steel cables and resurfaced the whole deck [1].",
    "Ferries carried an extra 6,000 passengers a day while the bridge was closed [1].",
]


async def test_slash_ask_streams_checked_sentences_then_posts_the_sources(llm_corpus_desk, tmp_path):
    question = "When will the harbour bridge reopen?"
    with fake_llm() as llm:
        llm.script(Reply(" ".join(SENTENCES), delay=0.05))
        desk = Desk(llm_corpus_desk.settings, llm_corpus_desk.encoder, llm=LLMSettings(
            provider="openai-compatible", model=FakeLLM.MODEL, base_url=llm.openai_url, timeout=5, deadline=20))
        server = FakeDiscord()
        await server.start()
        settings = bot_settings(server, desk, tmp_path / "feedback.jsonl")
        try:
            with pointed_at(server):
                async with running_bot(server, settings, desk):
                    mark = len(server.requests)
                    interaction = await server.slash("ask", {"question": question}, user=server.user("streamer"))
                    token = interaction["token"]
                    final = await server.wait_for(
                        lambda r: r.method == "PATCH" and token in r.path and "components" in (r.json or {}),
                        since=mark, what="the final answer")
                    await server.wait_for(posted_to(final.response["id"]), since=mark, what="the thread hint")
        finally:
            await server.stop()

        [request] = llm.requests
        assert request.body["stream"] is True

    edits = [r for r in server.since(mark, "PATCH") if token in r.path]
    partial, last = edits[:-1], edits[-1]
    assert last is final
    assert len(partial) >= 2, [e.json for e in edits]
    for earlier, later in zip(partial, partial[1:] + [final]):
        if later is not final:  # the final answer is not held back by the edit interval
            assert later.at - earlier.at >= replies.EDIT_INTERVAL * 0.9
    shown = []
    for edit in partial:
        body = edit.json
        assert "embeds" not in body and "components" not in body and body["allowed_mentions"] == NONE
        header, text = body["content"].split("\n", 1)
        assert header == f"**Question:** {question}" and text.endswith(" …")
        shown.append(text.removesuffix(" …"))
        assert "HACKED" not in text
    assert all(later.startswith(earlier) for earlier, later in zip(shown, shown[1:]))
    assert len(shown[0]) < len(shown[-1])

    body = final.json
    answer_id = answer_id_of(body)
    assert body["components"] == vote_buttons(answer_id)
    lines = body["content"].split("\n")
    kept = [s.replace(" [1].", ". [1]") for s in SENTENCES if "HACKED" not in s]
    assert lines[1] == " ".join(kept)
    assert lines[1].startswith(shown[-1])
    assert lines[2] == ("-# 1 sentence of the language model's answer was left out: the passages it cited did not "
                        "support it.")
    assert [e["title"] for e in body["embeds"]] == ["[1] Port Halden harbour bridge to reopen in June", "Related"]
    assert "HACKED" not in body["embeds"][0]["description"]
