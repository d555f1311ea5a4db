"""The real bot (discord.py) against a local Discord-protocol server, driven only through the protocol.

Every test sends what Discord would send (MESSAGE_CREATE, INTERACTION_CREATE) and asserts on
the requests the bot made: their JSON bodies, their order and their paths.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import discord
import pytest
import pytest_asyncio

from newsdesk_bot.format import FOLLOW_UP_HINT, MENTION_HINT, USAGE, escape, escape_quote
from newsdesk_bot.runner import serve
from newsdesk_bot.settings import BotSettings
from discord_server import MEMBER_PERMISSIONS, MESSAGE_CONTENT, CommandHidden, FakeDiscord, Request, pointed_at
from newsdesk import human_date
from newsdesk.desk import Desk

ROOT = Path(__file__).resolve().parents[1]
BOT_CORPUS = Path(__file__).parent / "fixtures" / "bot_corpus"
LIBRARY_URL = "https://example.org/riverside/library-reopens"
NONE = {"parse": []}  # allowed_mentions that ping nobody
REPLY_NONE = {"parse": [], "replied_user": False}  # ... not even the author of the message replied to

pytestmark = pytest.mark.asyncio(loop_scope="session")


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bot_desk(embedder, tmp_path_factory) -> Desk:
    corpus = tmp_path_factory.mktemp("bot") / "corpus"
    shutil.copytree(BOT_CORPUS, corpus)
    return Desk.build(corpus, corpus.parent / "index")


@dataclass
class Env:
    server: FakeDiscord
    settings: BotSettings
    desk: Desk


def bot_settings(server: FakeDiscord, desk: Desk, log: Path, **changes: Any) -> BotSettings:
    return replace(BotSettings(
        index=str(desk.settings.index_dir), corpus=desk.settings.corpus_dir,
        allowed_channels=frozenset({server.news_channel_id, server.plain_channel_id}),
        admin_roles=frozenset({server.admin_role_id}), rate_limit=3, rate_window=60, feedback_log=log,
        command_guilds=frozenset({server.guild_id}),
    ), **changes)


@asynccontextmanager
async def running_bot(server: FakeDiscord, settings: BotSettings, desk: Desk) -> AsyncIterator[None]:
    """The bot, started with `serve` and connected; cancelled (as Ctrl-C would) on the way out."""
    before = len(server.identifies)
    # The bot measures interaction deadlines on the server's clock, which tests can move forward.
    task = asyncio.create_task(serve(settings, server.TOKEN, desk=desk, guild_ready_timeout=0.05, clock=server.clock))
    connected = asyncio.create_task(server.wait_connected(before + 1))
    done, _ = await asyncio.wait({task, connected}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        connected.cancel()
        task.result()  # raises what stopped the bot
        raise AssertionError("the bot stopped before connecting")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        while server.ws is not None:  # the gateway connection closes behind the bot
            await asyncio.sleep(0.01)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env(bot_desk: Desk, tmp_path_factory) -> AsyncIterator[Env]:
    server = FakeDiscord()
    await server.start()
    settings = bot_settings(server, bot_desk, tmp_path_factory.mktemp("feedback") / "feedback.jsonl")
    with pointed_at(server):
        async with running_bot(server, settings, bot_desk):
            yield Env(server, settings, bot_desk)
    await server.stop()


# -- helpers -----------------------------------------------------------------------------------
def posted_to(channel_id: int | str) -> Any:
    return lambda r: r.method == "POST" and r.path == f"/channels/{channel_id}/messages"


async def mention(server: FakeDiscord, text: str, *, user: dict | None = None, channel_id: int | None = None,
                  **options: Any) -> tuple[dict, Request, int]:
    """A user asks by mentioning the bot; returns their message, the bot's reply request and a mark."""
    channel_id = channel_id or server.news_channel_id
    mark = len(server.requests)
    message = await server.user_message(f"<@{server.bot_id}> {text}", author=user or server.user("reader"),
                                        channel_id=channel_id, mentions=[server.bot_user], **options)
    # a 429 (5 messages per 5 s in a channel) is retried by discord.py: the reply is the request after it
    reply = await server.wait_for(lambda r: posted_to(channel_id)(r) and r.status != 429, since=mark,
                                  what="a reply to the mention")
    if reply.json.get("components") and server.channels[channel_id]["type"] == 0:
        # a new question: let the bot finish opening its thread before the test goes on
        thread = await server.wait_for(lambda r: r.path.endswith(f"/messages/{reply.response['id']}/threads"),
                                       since=mark, what="a thread on the answer")
        if thread.status == 201:
            await server.wait_for(posted_to(reply.response["id"]), since=mark, what="the hint in the new thread")
    return message, reply, mark


async def eventually(check: Any, timeout: float = 5.0) -> None:
    """Until check() is true: for effects that follow the last request the server saw."""
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    assert check()


def records(settings: BotSettings, kind: str) -> list[dict]:
    lines = settings.feedback_log.read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def answer_id_of(body: dict) -> str:
    ids = {m["answer_id"] for row in body["components"] for b in row["components"]
           for m in [re.fullmatch(r"newsdesk:vote:(up|down):(?P<answer_id>[0-9a-f]{16})", b["custom_id"])]}
    assert len(ids) == 1
    return ids.pop()


def vote_buttons(answer_id: str) -> list[dict]:
    """The action row discord.py sends for the 👍/👎 buttons."""
    return [{"type": 1, "components": [
        {"type": 2, "style": 2, "disabled": False, "emoji": {"id": None, "name": "👍"}, "custom_id": f"newsdesk:vote:up:{answer_id}"},
        {"type": 2, "style": 2, "disabled": False, "emoji": {"id": None, "name": "👎"}, "custom_id": f"newsdesk:vote:down:{answer_id}"},
    ]}]


def answer_record(settings: BotSettings, answer_id: str) -> dict:
    return next(r for r in records(settings, "answer") if r["answer_id"] == answer_id)


# -- registering -------------------------------------------------------------------------------
async def test_slash_commands_are_registered_in_the_configured_guild(env: Env) -> None:
    s = env.server
    sync = [r for r in s.requests if r.method == "PUT" and "commands" in r.path]
    # in the configured guild only: the global set is emptied, or members would see every command twice
    assert [(r.path, bool(r.json)) for r in sync] == [(f"/applications/{s.app_id}/commands", False),
                                                      (f"/applications/{s.app_id}/guilds/{s.guild_id}/commands", True)]
    commands = {c["name"]: c for c in sync[1].json}
    assert set(commands) == {"ask", "stats", "reindex", "channel", "follow", "unfollow", "following", "Ask newsdesk"}
    assert commands["Ask newsdesk"]["type"] == 3  # the message menu
    assert int(commands["reindex"]["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
    assert int(commands["channel"]["default_member_permissions"]) == discord.Permissions(manage_channels=True).value
    assert commands["ask"]["contexts"] == [0] and commands["reindex"]["contexts"] == [0]  # no DMs in these settings
    assert [c["name"] for c in s.visible_commands(s.guild_id)] == [c["name"] for c in sync[1].json]
    options = {o["name"]: (o["type"], o["required"]) for o in commands["ask"]["options"]}
    assert options == {"question": (3, True), "since": (3, False), "until": (3, False), "source": (3, False)}
    identify = s.identifies[-1]
    assert identify["intents"] & MESSAGE_CONTENT  # asked for, and this application may have it


# -- mentions ----------------------------------------------------------------------------------
async def test_mention_gets_cited_answer_with_source_embeds_buttons_and_a_thread(env: Env) -> None:
    s = env.server
    # Its answer quotes two sentences of one article (the day it reopened, and its new opening hour).
    question = "When did the library reopen?"
    asked, reply, mark = await mention(s, question)

    typing = s.since(mark, "POST", f"/channels/{s.news_channel_id}/typing")
    assert typing and typing[0].at <= reply.at  # "typing..." shows while the answer is worked out
    body = reply.json
    answer_id = answer_id_of(body)
    record = answer_record(env.settings, answer_id)
    assert record["question"] == question and not record["abstained"]
    cited = record["citations"][0]
    assert "reopened on Monday" in cited["quote"]
    assert body["content"] == " ".join(f"{escape(c['quote'])} [{c['n']}]" for c in record["citations"]) + \
        story_lines(record)
    assert body["allowed_mentions"] == REPLY_NONE
    assert str(body["message_reference"]["message_id"]) == asked["id"]
    assert body["components"] == vote_buttons(answer_id)

    # one card for the article with every quote from it (the Discord client would hide a second card
    # with the same url), then one listing the related articles
    assert {c["url"] for c in record["citations"]} == {LIBRARY_URL} and len(record["citations"]) > 1
    markers = " ".join(f"[{c['n']}]" for c in record["citations"])
    assert [e["title"] for e in body["embeds"]] == [f"{markers} Riverside library reopens after flood repairs"] + \
        (["Related"] if record["related"] else [])
    source = body["embeds"][0]
    assert source == {
        "type": "rich", "title": f"{markers} Riverside library reopens after flood repairs", "url": LIBRARY_URL,
        "description": "\n".join(f"[{c['n']}] “{escape_quote(c['quote'])}”" for c in record["citations"]),
        "color": 0x2F80ED, "footer": {"text": "Published 2026-04-02"}, "flags": 0,
    }
    assert escape(cited["quote"]) in source["description"]
    assert s.seen_embeds(s.stored(s.news_channel_id, reply.response["id"])) == \
        [{k: v for k, v in e.items()} for e in reply.response["embeds"]]  # nothing hidden
    assert record["related"], "the fixture corpus always has related articles"
    lines = body["embeds"][-1]["description"].splitlines()
    assert len(lines) == len(record["related"])
    for line, r in zip(lines, record["related"]):
        assert line.startswith(f"[{r['n']}] ") and line.endswith(f" · {r['published']}")
        if not re.search(r"[\[\]()*_`~|<>@\\]", r["title"] + (r["url"] or "")):  # hostile ones: test_bot_markup
            title = f"[{r['title']}]({r['url']})" if r["url"] else r["title"]
            assert line == f"[{r['n']}] {title} · {r['published']}"

    answer_message = reply.response
    thread = await s.wait_for(
        lambda r: r.method == "POST" and r.path == f"/channels/{s.news_channel_id}/messages/{answer_message['id']}/threads",
        since=mark, what="a thread on the answer")
    assert thread.json["name"] == question and thread.json["auto_archive_duration"] == 1440
    hint = await s.wait_for(posted_to(answer_message["id"]), since=mark, what="the follow-up hint")
    assert hint.json["content"] == FOLLOW_UP_HINT and hint.json["allowed_mentions"] == NONE


async def test_follow_up_in_the_thread_is_answered_with_the_conversation(env: Env) -> None:
    s = env.server
    user = s.user("follower")
    _, reply, _ = await mention(s, "How much did the Riverside library repairs cost?", user=user)
    thread_id = reply.response["id"]
    await s.wait_for(posted_to(thread_id), what="the follow-up hint")

    mark = len(s.requests)
    follow_up = await s.user_message("When did it reopen?", author=user, channel_id=int(thread_id))
    answer = await s.wait_for(lambda r: posted_to(thread_id)(r) and (r.json or {}).get("components"), since=mark,
                              what="an answer in the thread")
    assert s.since(mark, "POST", f"/channels/{thread_id}/typing")
    content = answer.json["content"]
    searched = re.search(r"^-# Searched for: (.*)$", content, re.M)
    assert searched and searched.group(1).startswith("When did it reopen?") and "Riverside" in searched.group(1)
    assert "[1]" in content and str(answer.json["message_reference"]["message_id"]) == follow_up["id"]
    assert answer.json["allowed_mentions"] == REPLY_NONE
    # no new thread inside a thread
    assert not [r for r in s.since(mark) if r.path.endswith("/threads")]


async def test_everyone_and_markdown_from_questions_and_articles_stay_inert(env: Env) -> None:
    s = env.server
    question = "@everyone <@&123456789012345678> What did the volunteers do?"
    _, reply, mark = await mention(s, question, mention_everyone=True)
    body = reply.json
    assert body["allowed_mentions"] == REPLY_NONE
    raw = json.dumps(body, ensure_ascii=False)
    assert "@everyone" not in raw and "<@&" not in raw  # only ever with a zero-width space after the @
    quotes = [e["description"] for e in body["embeds"] if e["title"] != "Related"] + [body["content"]]
    volunteers = next(q for q in quotes if "volunteers" in q)
    assert ("Residents cheered as \\*\\*volunteers\\*\\* carried the first boxes of books back inside; one "
            "hand-written sign on the door read \"@\u200beveryone welcome back\" and another said \\_thank you\\_."
            ) in volunteers
    thread = await s.wait_for(lambda r: r.path.endswith("/threads"), since=mark, what="a thread")
    assert thread.json["name"].startswith("@\u200beveryone <@\u200b&123456789012345678> What did")

    # @everyone alone is not a question to the bot, even though Discord flags it as mentioning everyone
    mark = len(s.requests)
    await s.user_message("@everyone meeting at noon", author=s.user("announcer"), mention_everyone=True)
    await mention(s, "How many books did the flood destroy?")  # a question after it, to know it was handled
    replies = s.since(mark, "POST", f"/channels/{s.news_channel_id}/messages")
    assert len(replies) == 1


async def test_messages_from_bots_and_from_itself_are_ignored(env: Env) -> None:
    s = env.server
    mark = len(s.requests)
    other_bot = s.user("otherbot", bot=True)
    await s.user_message(f"<@{s.bot_id}> How much did the Riverside library repairs cost?", author=other_bot,
                         mentions=[s.bot_user])
    _, reply, _ = await mention(s, "How many votes did the tram extension get?")
    replies = s.since(mark, "POST", f"/channels/{s.news_channel_id}/messages")
    assert replies == [reply]  # the bot's own messages came back over the gateway too, and got no answer


async def test_empty_mention_gets_a_usage_hint(env: Env) -> None:
    s = env.server
    mark = len(s.requests)
    await s.user_message(f"<@{s.bot_id}>", author=s.user("quiet"), mentions=[s.bot_user])
    reply = await s.wait_for(posted_to(s.news_channel_id), since=mark)
    assert reply.json["content"] == USAGE and reply.json["allowed_mentions"] == REPLY_NONE
    assert not reply.json.get("components")


async def test_over_long_question_is_trimmed_with_a_note(env: Env) -> None:
    s = env.server
    question = "How much did the Riverside library repairs cost? " + "Please explain in detail " * 30
    _, reply, mark = await mention(s, question)
    record = answer_record(env.settings, answer_id_of(reply.json))
    assert reply.json["content"].endswith(
        "\n-# Your question was long, so I only read its first 500 characters." + story_lines(record))
    assert len(record["question"]) <= 500 and question.startswith(record["question"])
    thread = await s.wait_for(lambda r: r.path.endswith("/threads"), since=mark)
    assert len(thread.json["name"]) <= 100


async def test_per_user_rate_limit_replies_politely_once(env: Env) -> None:
    s = env.server
    user = s.user("eager")
    for _ in range(3):  # the limit in these settings
        _, reply, _ = await mention(s, "How many votes did the tram extension get?", user=user)
        assert reply.json.get("components")
    _, reply, mark = await mention(s, "How many votes did the tram extension get?", user=user)
    assert re.fullmatch(r"You're asking faster than I can keep up with: please try again in \d+ s\.",
                        reply.json["content"])
    assert reply.json["allowed_mentions"] == REPLY_NONE
    # a second one in the same window gets no reminder, while another user is answered as usual
    await s.user_message(f"<@{s.bot_id}> and again?", author=user, mentions=[s.bot_user])
    await mention(s, "How many votes did the tram extension get?")
    assert len(s.since(mark, "POST", f"/channels/{s.news_channel_id}/messages")) == 2


async def test_channel_without_embed_links_or_threads_gets_sources_as_text_and_no_thread(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    s = env.server
    _, first, mark = await mention(s, "How much did the Riverside library repairs cost?", channel_id=s.plain_channel_id)
    await s.wait_for(lambda r: posted_to(s.plain_channel_id)(r) and r.json.get("components"), since=mark)
    await s.wait_for(lambda r: r.path.endswith("/threads"), since=mark, what="an attempt to open a thread")
    pages = s.since(mark, "POST", f"/channels/{s.plain_channel_id}/messages")
    body = {"embeds": [e for p in pages for e in p.json["embeds"]], "content": "\n".join(p.json["content"]
            for p in pages), "components": pages[-1].json["components"]}
    assert body["embeds"] == []
    assert "\n**Sources**\n[1] Riverside library reopens after flood repairs · 2026-04-02 · " \
           f"<{LIBRARY_URL}>\n> “" in body["content"]
    assert body["components"] == vote_buttons(answer_id_of(body))
    # Discord refused the thread (no Create Public Threads): the answer stands, the host is told why
    assert [r.status for r in s.since(mark) if r.path.endswith("/threads")] == [403]
    assert len(s.since(mark, "POST", f"/channels/{s.plain_channel_id}/messages")) == len(pages)
    await eventually(lambda: "'Create Public Threads' permission" in caplog.text)


async def test_questions_outside_the_allowed_channels_are_not_answered(env: Env) -> None:
    s = env.server
    mark = len(s.requests)
    await s.user_message(f"<@{s.bot_id}> How many votes did the tram extension get?", author=s.user("elsewhere"),
                         channel_id=s.other_channel_id, mentions=[s.bot_user])
    await s.slash("ask", {"question": "How many votes?"}, user=s.user("elsewhere"), channel_id=s.other_channel_id)
    refusal = await s.wait_for(lambda r: "/callback" in r.path, since=mark)
    assert refusal.json == {"type": 4, "data": {
        "content": f"I don't answer questions in this channel. Ask me in <#{s.news_channel_id}>, <#{s.plain_channel_id}>.",
        "flags": 64, "allowed_mentions": NONE, "tts": False}}
    assert not s.since(mark, "POST", f"/channels/{s.other_channel_id}/messages")


async def test_abstention_is_plain_and_lists_the_closest_sources(env: Env) -> None:
    s = env.server
    _, reply, _ = await mention(s, "What is the capital of Mongolia?")
    body = reply.json
    record = answer_record(env.settings, answer_id_of(body))
    assert record["abstained"] and record["related"]
    assert body["content"] == "I couldn't find an answer to that in the articles I have. These are the closest passages:"
    titles: dict[str, list] = {}
    for r in record["related"]:  # one card per article
        titles.setdefault(r["doc_id"], []).append(r)
    assert [e["title"] for e in body["embeds"]] == [
        " ".join(f"[{r['n']}]" for r in rs) + " " + escape(rs[0]["title"]) for rs in titles.values()]
    assert {e["color"] for e in body["embeds"]} == {0xE67E22}


def story_lines(record: dict) -> str:
    """The small lines under an answer that say as of when (these fixtures have no copies)."""
    days = [c["published"][:10] for c in record["citations"] if c.get("published")]
    return f"\n-# As of {human_date(max(days))}." if days else ""


# -- slash commands and buttons ----------------------------------------------------------------
async def test_slash_ask_is_deferred_at_once_then_answered_and_threaded(env: Env) -> None:
    s = env.server
    mark = len(s.requests)
    question = "How many votes did the tram extension get?"
    interaction = await s.slash("ask", {"question": question}, user=s.user("slasher"))
    token = interaction["token"]
    first = await s.wait_for(lambda r: token in r.path, since=mark)
    assert first.path == f"/interactions/{interaction['id']}/{token}/callback"
    assert first.json == {"type": 5} and first.query == {"with_response": "1"}

    edit = await s.wait_for(lambda r: r.method == "PATCH" and r.path == f"/webhooks/{s.app_id}/{token}/messages/@original",
                            since=mark, what="the answer")
    body = edit.json
    answer_id = answer_id_of(body)
    record = answer_record(env.settings, answer_id)
    assert body["content"] == f"**Question:** {question}\n" + " ".join(
        f"{escape(c['quote'])} [{c['n']}]" for c in record["citations"]) + story_lines(record)
    assert "31 to 9" in body["content"]
    assert body["allowed_mentions"] == NONE and body["components"] == vote_buttons(answer_id)
    assert body["embeds"][0]["title"] == " ".join(f"[{c['n']}]" for c in record["citations"]) + \
        " Council approves tram line to the airport"
    assert body["embeds"][0]["url"] == "https://example.org/riverside/tram-line"

    original = edit.response
    thread = await s.wait_for(lambda r: r.path == f"/channels/{s.news_channel_id}/messages/{original['id']}/threads",
                              since=mark, what="a thread on the answer")
    assert thread.json["name"] == question
    await s.wait_for(posted_to(original["id"]), since=mark, what="the hint in the thread")


async def test_slash_ask_refuses_empty_questions_and_bad_dates_privately(env: Env) -> None:
    s = env.server
    for options, content in (({"question": "   "}, USAGE),
                             ({"question": "What happened?", "since": "last week"},
                              "Dates look like 2026-01-31; I can't read last week.")):
        mark = len(s.requests)
        interaction = await s.slash("ask", options, user=s.user("vague"))
        reply = await s.wait_for(lambda r: interaction["token"] in r.path, since=mark)
        assert reply.json == {"type": 4, "data": {"content": content, "flags": 64, "allowed_mentions": NONE,
                                                  "tts": False}}


async def test_slash_ask_with_a_date_filter_answers_from_that_period(env: Env) -> None:
    s = env.server
    mark = len(s.requests)
    interaction = await s.slash("ask", {"question": "How many people were treated for heat exhaustion?",
                                        "since": "2026-06-01", "until": "2026-06-30"}, user=s.user("dated"))
    edit = await s.wait_for(lambda r: r.method == "PATCH" and interaction["token"] in r.path, since=mark)
    record = answer_record(env.settings, answer_id_of(edit.json))
    assert {c["published"] for c in record["citations"] + record["related"]} == {"2026-06-21"}
    await s.wait_for(posted_to(edit.response["id"]), since=mark, what="the hint in the new thread")


async def test_a_command_the_bot_no_longer_has_gets_a_private_explanation(env: Env) -> None:
    s = env.server
    mark = len(s.requests)
    stale = {"id": str(s.snowflake()), "name": "summarize", "type": 1, "options": [], "guild_id": str(s.guild_id)}
    interaction = await s.interact(2, stale, user=s.user("nostalgic"), channel_id=s.news_channel_id)
    reply = await s.wait_for(lambda r: interaction["token"] in r.path, since=mark)
    assert reply.json == {"type": 4, "data": {
        "content": "I don't have that command any more; Discord should stop offering it shortly.", "flags": 64,
        "allowed_mentions": NONE, "tts": False}}


async def test_vote_button_is_acknowledged_ephemerally_and_logged(env: Env) -> None:
    s = env.server
    _, reply, _ = await mention(s, "How many people were treated for heat exhaustion in Valdor?")
    answer_id = answer_id_of(reply.json)
    voter = s.user("voter")
    mark = len(s.requests)
    interaction = await s.click(reply.response, f"newsdesk:vote:down:{answer_id}", user=voter)
    ack = await s.wait_for(lambda r: "/callback" in r.path, since=mark)
    assert ack.path == f"/interactions/{interaction['id']}/{interaction['token']}/callback"
    assert ack.json == {"type": 4, "data": {
        "content": "Thanks for telling me: I've noted that this answer missed.", "flags": 64,
        "allowed_mentions": NONE, "tts": False}}

    # written after Discord was answered, on the feedback log's own thread
    await eventually(lambda: any(r["answer_id"] == answer_id for r in records(env.settings, "vote")))
    vote = next(r for r in records(env.settings, "vote") if r["answer_id"] == answer_id)
    shown = answer_record(env.settings, answer_id)
    assert vote["vote"] == "down"
    assert (vote["question"], vote["answer"], vote["citations"]) == (shown["question"], shown["answer"],
                                                                      shown["citations"])
    assert re.fullmatch(r"[0-9a-f]{32}", vote["user"]) and voter["id"] not in json.dumps(vote)
    assert vote["time"].endswith("+00:00")


async def test_stats_shows_documents_chunks_model_and_last_update(env: Env) -> None:
    s = env.server
    mark = len(s.requests)
    interaction = await s.slash("stats", user=s.user("curious"))
    defer = await s.wait_for(lambda r: "/callback" in r.path, since=mark)
    assert defer.json == {"type": 5, "data": {"flags": 64}}
    edit = await s.wait_for(lambda r: r.method == "PATCH" and interaction["token"] in r.path, since=mark)
    stats = env.desk.stats().to_dict()
    index, sources = edit.json["embeds"]
    fields = {f["name"]: f["value"] for f in index["fields"]}
    assert fields == {"Documents": str(stats["documents"]), "Chunks": str(stats["chunks"]),
                      "Model": "all-MiniLM-L6-v2", "Last update": stats["updated"]}
    assert sources["title"] == "Sources"
    assert sources["description"].splitlines() == [f"{name}: {n}" for name, n in stats["sources"].items()]
    assert edit.json["allowed_mentions"] == NONE


async def test_reindex_is_refused_to_non_admins_and_runs_for_admins(env: Env) -> None:
    s = env.server
    documents = env.desk.stats().documents
    mark = len(s.requests)
    with pytest.raises(CommandHidden):  # Discord does not even show it to members without Manage Server
        await s.slash("reindex", user=s.user("intern"))
    manager = discord.Permissions(manage_guild=True).value | MEMBER_PERMISSIONS
    interaction = await s.slash("reindex", user=s.user("intern"), permissions=manager)
    refusal = await s.wait_for(lambda r: "/callback" in r.path, since=mark)
    assert refusal.json == {"type": 4, "data": {"content": "Sorry, only the bot's admins can update the index.",
                                                "flags": 64, "allowed_mentions": NONE, "tts": False}}
    await asyncio.sleep(0.2)
    assert not [r for r in s.since(mark) if interaction["token"] in r.path and r is not refusal]
    assert env.desk.stats().documents == documents

    new = env.desk.settings.corpus_dir / "riverside" / "bridge.md"
    new.write_text("---\ntitle: Footbridge opens over the Riverside canal\ndate: 2026-07-01\n---\n"
                   "A new footbridge over the Riverside canal opened on Saturday after two years of work.\n",
                   encoding="utf-8")
    mark = len(s.requests)
    interaction = await s.slash("reindex", user=s.user("editor"), roles=[s.admin_role_id])
    defer = await s.wait_for(lambda r: "/callback" in r.path, since=mark)
    assert defer.json == {"type": 5, "data": {"flags": 64}}
    done = await s.wait_for(lambda r: r.method == "PATCH" and interaction["token"] in r.path, since=mark, timeout=60)
    assert re.fullmatch(
        rf"Updated the index in [\d.]+ s: 1 added, 0 updated, 0 removed, {documents} unchanged; \d+ chunks embedded\. "
        rf"Now {documents + 1} documents, \d+ chunks\.", done.json["content"])
    _, reply, _ = await mention(s, "When did the footbridge over the canal open?")
    assert "Saturday" in reply.json["content"]


async def test_questions_are_answered_while_a_reindex_runs(bot_desk: Desk, embedder, tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(bot_desk.settings.corpus_dir, corpus)
    shutil.copytree(bot_desk.settings.index_dir, index)
    desk = Desk.open(index, corpus=corpus)
    for i in range(24):  # enough new articles that embedding them takes a while
        (corpus / "wire" / f"market-{i}.txt").write_text(
            f"Fish market report {i}\n\n" + " ".join(f"Stall {j} sold {i * j} crates of herring and cod "
                                                    f"before noon on market day {i}." for j in range(8)),
            encoding="utf-8")
    server = FakeDiscord()
    await server.start()
    try:
        with pointed_at(server):
            async with running_bot(server, bot_settings(server, desk, tmp_path / "feedback.jsonl"), desk):
                mark = len(server.requests)
                interaction = await server.slash("reindex", user=server.user("editor"), roles=[server.admin_role_id])
                await server.wait_for(lambda r: "/callback" in r.path, since=mark)
                _, reply, _ = await mention(server, "How many votes did the tram extension get?")
                done = await server.wait_for(lambda r: r.method == "PATCH" and interaction["token"] in r.path,
                                             since=mark, timeout=120)
                assert reply.json.get("components") and reply.at < done.at  # answered during the update
                assert "24 added" in done.json["content"]
    finally:
        await server.stop()


# -- failures, restarts, intents, tokens -------------------------------------------------------
async def test_an_error_while_answering_gets_an_apology_with_an_id_and_the_bot_keeps_going(
        bot_desk: Desk, embedder, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    index = tmp_path / "index"
    shutil.copytree(bot_desk.settings.index_dir, index)
    desk = Desk.open(index)
    server = FakeDiscord()
    await server.start()
    caplog.set_level(logging.DEBUG)
    try:
        with pointed_at(server):
            async with running_bot(server, bot_settings(server, desk, tmp_path / "feedback.jsonl"), desk):
                shutil.rmtree(index)  # the index disappears under the running bot
                _, reply, _ = await mention(server, "How much did the Riverside library repairs cost?")
                m = re.fullmatch(r"Sorry, something went wrong while answering that \(error id `([0-9a-f]{8})`\)\. "
                                 r"The bot's host can find the details in its log under that id\.",
                                 reply.json["content"])
                assert m and reply.json["allowed_mentions"] == REPLY_NONE
                logged = [r for r in caplog.records if m.group(1) in r.getMessage()]
                assert logged and logged[0].exc_info and "IndexMissing" in logged[0].exc_text

                _, reply, _ = await mention(server, "")  # still answering
                assert reply.json["content"] == USAGE
    finally:
        await server.stop()
    assert FakeDiscord.TOKEN not in caplog.text  # not even in debug logs


async def test_thread_memory_and_buttons_survive_a_restart(bot_desk: Desk, tmp_path: Path) -> None:
    server = FakeDiscord()
    await server.start()
    settings = bot_settings(server, bot_desk, tmp_path / "feedback.jsonl")
    user = server.user("loyal")
    try:
        with pointed_at(server):
            async with running_bot(server, settings, bot_desk):
                _, reply, _ = await mention(server, "How much did the Riverside library repairs cost?", user=user)
                thread_id = reply.response["id"]
                await server.wait_for(posted_to(thread_id), what="the follow-up hint")
                mark = len(server.requests)
                await server.user_message("When did it reopen?", author=user, channel_id=int(thread_id))
                await server.wait_for(lambda r: posted_to(thread_id)(r) and r.json.get("components"), since=mark)

            async with running_bot(server, settings, bot_desk):
                assert [c["type"] for c in server.guild_payload()["threads"]] == [11]
                mark = len(server.requests)
                await server.user_message("And who paid for them?", author=user, channel_id=int(thread_id))
                answer = await server.wait_for(lambda r: posted_to(thread_id)(r) and r.json.get("components"),
                                               since=mark, what="a follow-up answer after the restart")
                # the memory came from the thread: its starter message and its history
                assert server.since(mark, "GET", f"/channels/{server.news_channel_id}/messages/{thread_id}")
                assert server.since(mark, "GET", f"/channels/{thread_id}/messages")
                searched = re.search(r"^-# Searched for: (.*)$", answer.json["content"], re.M)
                assert searched and searched.group(1).startswith("And who paid for them?")
                assert "Riverside" in searched.group(1) and "reopen" in searched.group(1)

                # a button from before the restart still works
                mark = len(server.requests)
                await server.click(reply.response, f"newsdesk:vote:up:{answer_id_of(reply.json)}", user=user)
                ack = await server.wait_for(lambda r: "/callback" in r.path, since=mark)
                assert ack.json["data"]["content"] == "Thanks! Glad it helped."
    finally:
        await server.stop()


async def test_direct_messages_are_answered_only_when_enabled_and_keep_a_conversation(
        env: Env, bot_desk: Desk, tmp_path: Path) -> None:
    s = env.server  # the shared bot does not answer DMs
    user = s.user("private")
    dm = s.open_dm(user)
    mark = len(s.requests)
    await s.user_message("How much did the Riverside library repairs cost?", author=user, channel_id=dm)
    await mention(s, "How many votes did the tram extension get?")
    assert not s.since(mark, "POST", f"/channels/{dm}/messages")
    assert not s.identifies[-1]["intents"] & discord.Intents(dm_messages=True).value

    server = FakeDiscord()
    await server.start()
    settings = bot_settings(server, bot_desk, tmp_path / "feedback.jsonl", answer_in_dms=True)
    user = server.user("private")
    dm = server.open_dm(user)
    try:
        with pointed_at(server):
            async with running_bot(server, settings, bot_desk):
                assert server.identifies[-1]["intents"] & discord.Intents(dm_messages=True).value
                mark = len(server.requests)
                await server.user_message("How much did the Riverside library repairs cost?", author=user,
                                          channel_id=dm)
                first = await server.wait_for(posted_to(dm), since=mark, what="an answer in the DM")
                assert "1.3 million euros" in first.json["content"] and first.json["embeds"]
                mark = len(server.requests)
                await server.user_message("When did it reopen?", author=user, channel_id=dm)
                second = await server.wait_for(posted_to(dm), since=mark, what="a follow-up answer in the DM")
                assert "Riverside" in second.json["content"].split("-# Searched for:")[1]
                assert not [r for r in server.since(0) if r.path.endswith("/threads")]  # no threads in DMs
    finally:
        await server.stop()


async def test_without_the_message_content_intent_it_falls_back_and_asks_for_mentions(
        bot_desk: Desk, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = FakeDiscord(message_content_allowed=False)
    await server.start()
    settings = bot_settings(server, bot_desk, tmp_path / "feedback.jsonl", command_guilds=frozenset())
    user = server.user("no-intent")
    caplog.set_level(logging.INFO, logger="newsdesk.bot")
    try:
        with pointed_at(server):
            async with running_bot(server, settings, bot_desk):
                assert server.gateway_closes == [4014]
                first, second = server.identifies
                assert first["intents"] & MESSAGE_CONTENT and not second["intents"] & MESSAGE_CONTENT
                assert "Message Content intent is off" in caplog.text  # the log line at start
                # global commands this time
                assert [r.path for r in server.requests if r.method == "PUT"][-1] == \
                    f"/applications/{server.app_id}/commands"

                _, reply, _ = await mention(server, "How much did the Riverside library repairs cost?", user=user)
                thread_id = reply.response["id"]
                intro = await server.wait_for(posted_to(thread_id))
                assert intro.json["content"] == MENTION_HINT.format(mention=f"<@{server.bot_id}>")

                # a follow-up without a mention arrives without its text: the bot says why, once
                mark = len(server.requests)
                await server.user_message("When did it reopen?", author=user, channel_id=int(thread_id))
                hint = await server.wait_for(posted_to(thread_id), since=mark, what="the mention hint")
                assert hint.json["content"] == MENTION_HINT.format(mention=f"<@{server.bot_id}>")
                assert hint.json["allowed_mentions"] == NONE
                await server.user_message("Hello?", author=user, channel_id=int(thread_id))
                # with a mention, the follow-up is answered with the conversation
                await server.user_message(f"<@{server.bot_id}> When did it reopen?", author=user,
                                          channel_id=int(thread_id), mentions=[server.bot_user])
                answer = await server.wait_for(lambda r: posted_to(thread_id)(r) and r.json.get("components"),
                                               since=mark)
                assert "Riverside" in answer.json["content"].split("-# Searched for:")[1]
                assert len(server.since(mark, "POST", f"/channels/{thread_id}/messages")) == 2
    finally:
        await server.stop()
