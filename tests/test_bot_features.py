"""What a news community wants from the bot, driven end to end through the local Discord.

Channel set-up (every message, forum posts, a default source), the "Ask newsdesk" message menu,
source autocomplete, /ask hidden in DMs, two shards, the health endpoint and Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import aiohttp
import pytest
from discord_server import MANAGE_CHANNELS, MEMBER_PERMISSIONS, CommandHidden, FakeDiscord
from test_bot_e2e import answer_id_of, answer_record, bot_desk, mention, posted_to  # noqa: F401 (bot_desk: a fixture)
from test_bot_strict import bot_on

from newsdesk import Desk

pytestmark = pytest.mark.asyncio(loop_scope="session")
CHANNEL_ADMIN = MEMBER_PERMISSIONS | MANAGE_CHANNELS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def callback_of(server: FakeDiscord, interaction: dict, mark: int = 0):
    return server.wait_for(lambda r: interaction["token"] in r.path and "/callback" in r.path, since=mark)


async def test_a_channel_set_to_every_message_answers_each_post_from_its_source(bot_desk: Desk,
                                                                               tmp_path: Path) -> None:
    server = FakeDiscord()
    await server.start()
    help_id = server.add_channel("harbour-help")
    try:
        async with bot_on(bot_desk, tmp_path, server=server, allowed_channels=frozenset()) as (s, settings):
            with pytest.raises(CommandHidden):  # members without Manage Channels do not see /channel
                await s.slash("channel", {"mode": "every message"}, subcommand="set", user=s.user("m"),
                              channel_id=help_id)
            mark = len(s.requests)
            done = await s.slash("channel", {"mode": "every message", "source": "harbour", "days": 3650},
                                 subcommand="set", user=s.user("mod"), channel_id=help_id, permissions=CHANNEL_ADMIN)
            reply = await callback_of(s, done, mark)
            assert reply.json["data"]["content"] == (f"Set for <#{help_id}>: I answer every new message or post, "
                                                     "searching only source harbour and the last 3650 days.")
            assert reply.json["data"]["flags"] == 64

            mark = len(s.requests)
            asked = await s.user_message("How deep will the channel be dredged?", author=s.user("reader"),
                                         channel_id=help_id)  # no mention
            answer = await s.wait_for(lambda r: posted_to(help_id)(r) and r.json.get("components"), since=mark)
            assert str(answer.json["message_reference"]["message_id"]) == asked["id"]
            record = answer_record(settings, answer_id_of(answer.json))
            assert {c["doc_id"].split("/")[0] for c in record["citations"] + record["related"]} == {"harbour"}
            assert "eleven metres" in answer.json["content"]
            await s.wait_for(lambda r: r.path.endswith(f"/messages/{answer.response['id']}/threads"), since=mark)

            # the news channel keeps the default: no mention, no answer
            mark = len(s.requests)
            await s.user_message("How deep will the channel be dredged?", author=s.user("x"))
            await mention(s, "How many votes did the tram extension get?")
            assert len(s.since(mark, "POST", f"/channels/{s.news_channel_id}/messages")) == 1

            # the set-up survives a restart (it is kept beside the feedback log)
        async with bot_on(bot_desk, tmp_path, server=server, allowed_channels=frozenset()) as (s, _):
            show = await s.slash("channel", {}, subcommand="show", user=s.user("mod"), channel_id=help_id,
                                 permissions=CHANNEL_ADMIN)
            reply = await callback_of(s, show)
            assert "I answer every new message or post" in reply.json["data"]["content"]
            off = await s.slash("channel", {"mode": "off"}, subcommand="set", user=s.user("mod"), channel_id=help_id,
                                permissions=CHANNEL_ADMIN)
            await callback_of(s, off)
            mark = len(s.requests)
            refused = await s.slash("ask", {"question": "How deep?"}, user=s.user("r"), channel_id=help_id)
            refusal = await callback_of(s, refused, mark)
            assert refusal.json["data"]["content"] == ("I don't answer questions in this channel: its admins "
                                                       "switched me off here.")
    finally:
        await server.stop()


async def test_a_channel_date_scope_leaves_out_older_articles_unless_ask_gives_its_own_dates(bot_desk: Desk,
                                                                                           tmp_path: Path) -> None:
    server = FakeDiscord()
    await server.start()
    recent = server.add_channel("recent-news")
    # the fixtures are from 2026: a window from 1 May keeps the tram line (10 May) and the heatwave (21 June)
    # and leaves out the library (2 April), the dredging plan (15 March) and the ferry timetable (3 February)
    since = date(2026, 5, 1)
    days = (date.today() - since).days
    try:
        async with bot_on(bot_desk, tmp_path, server=server, allowed_channels=frozenset(), rate_limit=0) as (s, settings):
            mod = s.user("mod")
            done = await s.slash("channel", {"mode": "mentions", "days": days}, subcommand="set", user=mod,
                                 channel_id=recent, permissions=CHANNEL_ADMIN)
            reply = await callback_of(s, done)
            assert reply.json["data"]["content"] == (f"Set for <#{recent}>: I answer when mentioned, searching only "
                                                     f"the last {days} days.")

            def found(request) -> list[dict]:
                record = answer_record(settings, answer_id_of(request.json))
                return record["citations"] + record["related"]

            async def ask(options: dict):
                mark = len(s.requests)
                interaction = await s.slash("ask", {"question": "When did the library reopen?", **options},
                                            user=s.user("reader"), channel_id=recent)
                return await s.wait_for(lambda r: r.method == "PATCH" and interaction["token"] in r.path
                                        and (r.json or {}).get("components"), since=mark)

            _, answer, _ = await mention(s, "When did the library reopen?", channel_id=recent)
            passages = found(answer)
            assert passages and min(p["published"] for p in passages) >= since.isoformat()
            assert answer.json["content"].startswith("I couldn't find an answer")  # its article is too old here
            # /ask's own options: a source narrows the channel's window further, it does not replace it
            passages = found(await ask({"source": "riverside"}))
            assert {p["doc_id"] for p in passages} == {"riverside/tram-line.md"}
            # /ask's own dates replace the channel's window, whichever end they give
            for options in ({"since": "2026-01-01"}, {"until": "2026-04-30"}):
                edit = await ask(options)
                assert "Monday" in edit.json["content"], options
                assert "riverside/library-reopens.md" in {p["doc_id"] for p in found(edit)}
            # dates no article can match are said so, in a sentence (not an apology with an error id)
            mark = len(s.requests)
            crossed = await s.slash("ask", {"question": "What happened?", "since": "2026-05-01", "until": "2026-04-01"},
                                    user=s.user("reader"), channel_id=recent)
            refusal = await callback_of(s, crossed, mark)
            assert refusal.json["data"]["content"] == ("`since` (2026-05-01) is after `until` (2026-04-01): no article "
                                                       "can be from both. Swap them?")
            assert refusal.json["data"]["flags"] == 64
            mark = len(s.requests)
            future = await s.slash("ask", {"question": "What happened?", "since": "2030-01-01"}, user=s.user("reader"),
                                   channel_id=recent)
            said = await s.wait_for(lambda r: r.method == "PATCH" and future["token"] in r.path, since=mark)
            assert said.json["content"] == ("**Question:** What happened?\nI can't answer that as asked: no article is "
                                            "published on or after 2030-01-01.")
    finally:
        await server.stop()


async def test_a_forum_set_to_every_message_answers_each_new_post_in_the_post(bot_desk: Desk,
                                                                             tmp_path: Path) -> None:
    server = FakeDiscord()
    await server.start()
    forum = server.add_channel("ask-the-newsroom", kind=15)
    try:
        async with bot_on(bot_desk, tmp_path, server=server, allowed_channels=frozenset()) as (s, _):
            rules = await s.forum_post("Rules", "Be nice.", author=s.owner, forum_id=forum)
            done = await s.slash("channel", {"mode": "every message"}, subcommand="set", user=s.owner,
                                 channel_id=int(rules["channel_id"]))  # run inside a post: sets up the forum
            reply = await callback_of(s, done)
            assert reply.json["data"]["content"].startswith(f"Set for <#{forum}>:")

            mark = len(s.requests)
            post = await s.forum_post("Tram line", "How many votes did the tram extension get?",
                                      author=s.user("rider"), forum_id=forum)
            answer = await s.wait_for(lambda r: posted_to(post["channel_id"])(r) and r.json.get("components"),
                                      since=mark, what="an answer in the post")
            assert "31 to 9" in answer.json["content"]
            assert str(answer.json["message_reference"]["message_id"]) == post["id"]
            assert not [r for r in s.since(mark) if r.path.endswith("/threads")]  # the post is the thread

            # a follow-up in the post that mentions the bot is answered with the post's question in mind
            mark = len(s.requests)
            await s.user_message(f"<@{s.bot_id}> And when does construction start?", author=s.user("rider"),
                                 channel_id=int(post["channel_id"]), mentions=[s.bot_user])
            follow = await s.wait_for(lambda r: posted_to(post["channel_id"])(r) and r.json.get("components"),
                                      since=mark)
            assert "2027" in follow.json["content"]
    finally:
        await server.stop()


async def test_ask_newsdesk_on_a_message_answers_what_it_says(bot_desk: Desk, tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, settings):
        message = await s.user_message("How many votes did the tram extension get?", author=s.user("writer"))
        mark = len(s.requests)
        menu = await s.context_menu("Ask newsdesk", message, user=s.user("curious"))
        defer = await callback_of(s, menu, mark)
        assert defer.json == {"type": 5}
        edit = await s.wait_for(lambda r: r.method == "PATCH" and menu["token"] in r.path, since=mark)
        assert edit.json["content"].startswith("**Question:** How many votes did the tram extension get?\n")
        assert "31 to 9" in edit.json["content"]
        assert answer_record(settings, answer_id_of(edit.json))["question"] == message["content"]
        await s.wait_for(lambda r: r.path.endswith(f"/messages/{edit.response['id']}/threads"), since=mark)

        empty = await s.user_message("", author=s.user("lurker"))
        mark = len(s.requests)
        menu = await s.context_menu("Ask newsdesk", empty, user=s.user("curious"))
        reply = await callback_of(s, menu, mark)
        assert reply.json["data"]["content"] == ("That message has no text I can answer: pick a message with a "
                                                 "question in it.") and reply.json["data"]["flags"] == 64


async def test_source_autocomplete_offers_the_index_sources(bot_desk: Desk, tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, _):
        for typed, expected in (("", ["wire", "harbour", "riverside"]), ("ri", ["riverside"]), ("zz", [])):
            mark = len(s.requests)
            typing = await s.autocomplete("ask", {"question": "x", "source": typed}, "source", user=s.user("t"))
            answer = await callback_of(s, typing, mark)
            assert answer.status == 200
            assert answer.json == {"type": 8, "data": {"choices": [{"name": n, "value": n} for n in expected]}}
        mark = len(s.requests)
        interaction = await s.slash("ask", {"question": "When did the library reopen?", "source": "riverside"},
                                    user=s.user("t"))
        edit = await s.wait_for(lambda r: r.method == "PATCH" and interaction["token"] in r.path, since=mark)
        assert "Monday" in edit.json["content"]


async def test_ask_is_offered_in_dms_only_when_the_host_answers_them(bot_desk: Desk, tmp_path: Path) -> None:
    # commands registered in one guild only are never offered in DMs: register them globally here
    async with bot_on(bot_desk, tmp_path, command_guilds=frozenset()) as (s, _):
        user = s.user("private")
        with pytest.raises(CommandHidden):
            await s.slash("ask", {"question": "How many votes?"}, user=user, channel_id=s.open_dm(user))
        with pytest.raises(CommandHidden):
            await s.context_menu("Ask newsdesk", await s.user_message("hi", author=user,
                                                                      channel_id=s.open_dm(user)), user=user)
    async with bot_on(bot_desk, tmp_path / "dms", answer_in_dms=True, command_guilds=frozenset()) as (s, _):
        user = s.user("private")
        dm = s.open_dm(user)
        mark = len(s.requests)
        interaction = await s.slash("ask", {"question": "How many votes did the tram extension get?"}, user=user,
                                    channel_id=dm)
        edit = await s.wait_for(lambda r: r.method == "PATCH" and interaction["token"] in r.path, since=mark)
        assert "31 to 9" in edit.json["content"]
        with pytest.raises(CommandHidden):  # /reindex is never offered in DMs
            await s.slash("reindex", user=s.owner, channel_id=s.open_dm(s.owner))


async def test_two_shards_health_and_metrics(bot_desk: Desk, tmp_path: Path) -> None:
    server = FakeDiscord(recommended_shards=2, max_concurrency=2)
    await server.start()
    main_shard = (server.guild_id >> 22) % 2
    other = server.add_guild("Valdor weekly", shard=(1 - main_shard, 2))
    world = server.add_channel("world", guild_id=other)
    port = free_port()
    try:
        async with bot_on(bot_desk, tmp_path, server=server, allowed_channels=frozenset(),
                          health_port=port) as (s, _):
            await s.wait_connected(2, shards=2, timeout=30)
            assert sorted(tuple(i["shard"]) for i in s.identifies) == [(0, 2), (1, 2)]
            # max_concurrency 2: both may identify at once, no 5-second wait between them
            assert s.identified_at[1] - s.identified_at[0] < 2
            # the recommended shard count, then the session start limits (max_concurrency)
            assert [r.path for r in s.requests if r.path.startswith("/gateway")] == ["/gateway/bot"] * 2
            # each guild's events reach the bot on its own shard, and it answers in both
            for channel in (s.news_channel_id, world):
                _, reply, _ = await mention(s, "How many votes did the tram extension get?", channel_id=channel)
                assert "31 to 9" in reply.json["content"]
            _, reply, _ = await mention(s, "What is the capital of Mongolia?")
            await s.click(reply.response, f"newsdesk:vote:up:{answer_id_of(reply.json)}", user=s.user("v"))

            async with aiohttp.ClientSession() as http:
                for _ in range(50):  # both shards READY
                    async with http.get(f"http://127.0.0.1:{port}/health") as response:
                        health = await response.json()
                    if response.status == 200:
                        break
                    await asyncio.sleep(0.1)
                assert response.status == 200, health
                assert health["connected"] is True and set(health["shards"]) == {"0", "1"}
                assert health["guilds"] == 2
                assert health["index_generation"] == bot_desk.generation
                assert health["queue"] == {"waiting": 0, "running": 0}
                for _ in range(50):
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                        metrics = await response.text()
                    if 'newsdesk_votes_total{vote="up"} 1.0' in metrics:
                        break
                    await asyncio.sleep(0.1)
            assert response.headers["Content-Type"].startswith("text/plain")
            assert 'newsdesk_questions_total{via="mention"} 3.0' in metrics
            assert "newsdesk_abstentions_total 1.0" in metrics
            assert "newsdesk_answers_total 3.0" in metrics
            assert "newsdesk_answer_seconds_count 3.0" in metrics
            assert 'newsdesk_votes_total{vote="up"} 1.0' in metrics
            assert "newsdesk_queue_waiting 0.0" in metrics
        async with aiohttp.ClientSession() as http:  # gone with the bot
            with pytest.raises(aiohttp.ClientConnectorError):
                await http.get(f"http://127.0.0.1:{port}/health")
    finally:
        await server.stop()
    assert json.dumps(health)  # plain JSON


async def test_shards_in_one_identify_bucket_wait_five_seconds(bot_desk: Desk, tmp_path: Path) -> None:
    server = FakeDiscord(recommended_shards=2, max_concurrency=1)
    await server.start()
    try:
        async with bot_on(bot_desk, tmp_path, server=server, shard_count=2) as (s, _):
            await s.wait_connected(2, shards=2, timeout=30)
            assert sorted(tuple(i["shard"]) for i in s.identifies) == [(0, 2), (1, 2)]
            assert s.identified_at[1] - s.identified_at[0] >= 4.9
            assert len([r for r in s.requests if r.path == "/gateway/bot"]) == 1  # the limits, read once
    finally:
        await server.stop()
