"""What real Discord would break, found by the strict local server: one end-to-end test per bug of issue 12.

Each test drives the real bot (discord.py) through the protocol and asserts on what users see or
on Discord's answers to the bot's requests (a 404 10062 is "This interaction failed").
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from discord_server import (ADMINISTRATOR, EPHEMERAL, LOADING, MANAGE_CHANNELS, MEMBER_PERMISSIONS, READ_HISTORY, SEND_IN_THREADS,
                            SEND_MESSAGES, CommandHidden, FakeDiscord, markdown_spans, pointed_at)
from llm_server import FakeLLM, Reply, fake_llm
from test_bot_e2e import (answer_id_of, answer_record, bot_desk, bot_settings, eventually, mention,  # noqa: F401
                          posted_to, records, running_bot)

from newsdesk import Desk, LLMSettings
from newsdesk_bot.format import escape, link
from newsdesk_bot.settings import BotSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")
PHISH = "https://a.example/)[Login](https://phish.example"


@asynccontextmanager
async def bot_on(desk: Desk, tmp_path: Path, server: FakeDiscord | None = None,
                 **changes: Any) -> AsyncIterator[tuple[FakeDiscord, BotSettings]]:
    """A fresh server (unless given) and the bot connected to it."""
    own = server is None
    server = server or FakeDiscord()
    if own:
        await server.start()
    settings = bot_settings(server, desk, tmp_path / "feedback.jsonl", **changes)
    try:
        with pointed_at(server):
            async with running_bot(server, settings, desk):
                yield server, settings
    finally:
        if own:
            await server.stop()


def slow_llm_desk(desk: Desk, llm: FakeLLM) -> Desk:
    return Desk(desk.settings, desk.encoder, llm=LLMSettings(
        provider="openai-compatible", model=FakeLLM.MODEL, base_url=llm.openai_url, timeout=30, deadline=20,
        condense=False))


def streamed_sentences(seconds: float) -> Reply:
    """Three sentences the library article supports, streamed over `seconds`."""
    text = ("The Riverside public library reopened on Monday after eight months of repairs [1]. "
            "The repairs cost 1.3 million euros [1]. The library now opens at 8 a.m. on weekdays [1].")
    return Reply(text, delay=seconds / len(text.split(" ")))


def slow_reply(seconds: float) -> Reply:
    words = "The library reopened on Monday after repairs [1].".split(" ")
    return Reply(" ".join(words), delay=seconds / len(words))


def edits_of(server: FakeDiscord, interaction: dict, mark: int = 0) -> list:
    return [r for r in server.since(mark, "PATCH") if interaction["token"] in r.path]


def spans_seen(server: FakeDiscord, message: dict) -> list[tuple[str, str]]:
    """Every link, mention and formatting span Discord renders in a message: its text and its cards'
    titles, descriptions, field names and values, and footers."""
    stored = server.stored(message["channel_id"], message["id"])
    texts = [stored["content"]]
    for e in server.seen_embeds(stored):
        texts += [e.get("title") or "", e.get("description") or "", (e.get("footer") or {}).get("text") or ""]
        texts += [part for f in e.get("fields") or [] for part in (f["name"], f["value"])]
    return [s for t in texts for s in markdown_spans(t)]


def link_hosts(server: FakeDiscord, message: dict) -> list[str | None]:
    """The host of every link users can click in a message: links in its text and its cards' own urls."""
    targets = [text.split(" -> ")[-1] for kind, text in spans_seen(server, message)
               if kind in ("masked_link", "link", "autolink")]
    targets += [e["url"] for e in server.seen_embeds(server.stored(message["channel_id"], message["id"]))
                if e.get("url")]
    return [urlsplit(t).hostname for t in targets]


# -- 1. same-url source cards ------------------------------------------------------------------
async def test_every_cited_quote_is_visible_when_all_come_from_one_article(bot_desk: Desk, tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, settings):
        _, reply, _ = await mention(s, "When did the library reopen?")  # two quotes of one article
        record = answer_record(settings, answer_id_of(reply.json))
        assert len(record["citations"]) >= 2 and len({c["url"] for c in record["citations"]}) == 1
        seen = s.seen_embeds(s.stored(reply.response["channel_id"], reply.response["id"]))
        text = "\n".join(f"{e.get('title', '')}\n{e.get('description', '')}" for e in seen)
        for c in record["citations"]:
            assert f"[{c['n']}]" in text, f"source [{c['n']}] is hidden by the Discord client"
            assert c["quote"][:60].replace("*", "\\*") in text


# -- 2. votes under load -----------------------------------------------------------------------
async def test_a_vote_is_acknowledged_within_3_seconds_while_both_workers_answer(bot_desk: Desk,
                                                                                 tmp_path: Path) -> None:
    with fake_llm() as llm:
        llm.script(slow_reply(0), slow_reply(6), slow_reply(6))
        desk = slow_llm_desk(bot_desk, llm)
        async with bot_on(desk, tmp_path, workers=2) as (s, _):
            first = await s.slash("ask", {"question": "When did the library reopen?"}, user=s.user("a"))
            done = await s.wait_for(lambda r: r.method == "PATCH" and first["token"] in r.path
                                    and "components" in (r.json or {}), what="the first answer")
            for who in ("b", "c"):  # both workers busy for 6 s
                await s.slash("ask", {"question": "When did the library reopen?"}, user=s.user(who))
            await asyncio.sleep(0.5)
            mark = len(s.requests)
            click = await s.click(done.response, f"newsdesk:vote:up:{answer_id_of(done.json)}", user=s.user("v"))
            ack = await s.wait_for(lambda r: click["token"] in r.path and "/callback" in r.path, since=mark)
            assert ack.status == 200, ack.response  # 404 10062 is "This interaction failed"


# -- 3. the 15-minute token --------------------------------------------------------------------
async def test_a_queued_question_is_told_it_waits_and_never_outlives_its_token(bot_desk: Desk,
                                                                               tmp_path: Path) -> None:
    with fake_llm() as llm:
        llm.script(slow_reply(8))
        desk = slow_llm_desk(bot_desk, llm)
        async with bot_on(desk, tmp_path, workers=1, max_queue=1) as (s, settings):
            running = await s.slash("ask", {"question": "When did the library reopen?"}, user=s.user("a"))
            await s.wait_for(lambda r: running["token"] in r.path and "/callback" in r.path)
            await asyncio.sleep(0.3)
            queued = await s.slash("ask", {"question": "Who paid for the repairs?"}, user=s.user("b"))
            notice = await s.wait_for(lambda r: r.method == "PATCH" and queued["token"] in r.path,
                                      what="a note that the question is queued")
            assert notice.json["content"].endswith("1 question is ahead of yours; I'll answer here when it's your turn.")
            # the queue is full: a third question is turned away at once, privately
            mark = len(s.requests)
            full = await s.slash("ask", {"question": "What did the volunteers do?"}, user=s.user("c"))
            refusal = await s.wait_for(lambda r: full["token"] in r.path, since=mark)
            assert refusal.json["type"] == 4 and refusal.json["data"]["flags"] == 64
            assert refusal.json["data"]["content"] == ("I'm answering as many questions as I can right now: "
                                                       "please ask again in a minute.")

            s.advance(13.5 * 60)  # the queued question's token is about to expire
            gave_up = await s.wait_for(lambda r: r.method == "PATCH" and queued["token"] in r.path
                                       and "too busy" in (r.json or {}).get("content", ""), since=mark,
                                       what="an apology before the token expires")
            assert gave_up.status == 200
            assert s.original(queued)["content"].endswith(
                "Sorry, I was too busy to answer this in time: please ask again.")
            await s.wait_for(lambda r: r.method == "PATCH" and running["token"] in r.path
                             and "components" in (r.json or {}), since=mark, what="the first answer", timeout=30)
            assert "Who paid for the repairs?" not in [r["question"] for r in records(settings, "answer")]
            assert not [r for r in s.since(0) if queued["token"] in r.path and r.status == 401]


async def test_a_question_waiting_behind_its_conversation_gives_up_before_its_token_expires(bot_desk: Desk,
                                                                                         tmp_path: Path) -> None:
    with fake_llm() as llm:
        llm.script(slow_reply(0), slow_reply(12))
        desk = slow_llm_desk(bot_desk, llm)
        async with bot_on(desk, tmp_path) as (s, settings):
            user = s.user("reader")
            _, reply, _ = await mention(s, "When did the library reopen?", user=user)
            thread_id = reply.response["id"]
            mark = len(s.requests)
            await s.user_message("How much did the repairs cost?", author=user, channel_id=int(thread_id))
            await eventually(lambda: len(llm.requests) == 2)  # the follow-up holds the thread's conversation
            waiting = await s.slash("ask", {"question": "Who paid for the repairs?"}, user=s.user("b"),
                                    channel_id=int(thread_id))
            notice = await s.wait_for(lambda r: r.method == "PATCH" and waiting["token"] in r.path, since=mark,
                                      what="a note that the question waits")
            assert notice.json["content"] == ("**Question:** Who paid for the repairs?\n-# 1 question is ahead of "
                                              "yours; I'll answer here when it's your turn.")
            s.advance(13.5 * 60)  # its token is about to expire while the conversation is still busy
            gave_up = await s.wait_for(lambda r: r.method == "PATCH" and waiting["token"] in r.path
                                       and "too busy" in (r.json or {}).get("content", ""), since=mark, timeout=8,
                                       what="an apology while the token still works")
            assert gave_up.status == 200
            assert s.original(waiting)["content"] == ("**Question:** Who paid for the repairs?\nSorry, I was too busy "
                                                      "to answer this in time: please ask again.")
            follow_up = await s.wait_for(lambda r: posted_to(thread_id)(r) and r.json.get("components"), since=mark,
                                         timeout=30, what="the follow-up's answer")
            assert gave_up.at < follow_up.at  # it gave up while the other question still held the conversation
            assert not [r for r in s.since(0) if waiting["token"] in r.path and r.status >= 400]
            assert "Who paid for the repairs?" not in [r["question"] for r in records(settings, "answer")]
            assert len(llm.requests) == 2  # the given-up question never reached the model


async def test_a_long_reindex_reports_by_dm_when_its_token_runs_out(bot_desk: Desk, embedder,
                                                                   tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(bot_desk.settings.corpus_dir, corpus)
    shutil.copytree(bot_desk.settings.index_dir, index)
    desk = Desk.open(index, corpus=corpus)
    for i in range(60):
        (corpus / "wire" / f"market-{i}.txt").write_text(
            f"Fish market report {i}\n\n" + " ".join(f"Stall {j} sold {i * j} crates of herring and cod "
                                                    f"before noon on market day {i}." for j in range(10)),
            encoding="utf-8")
    async with bot_on(desk, tmp_path, admin_roles=frozenset()) as (s, _):
        mark = len(s.requests)
        interaction = await s.slash("reindex", user=s.owner)
        await s.wait_for(lambda r: interaction["token"] in r.path and "/callback" in r.path, since=mark)
        s.advance(14 * 60)
        note = await s.wait_for(lambda r: r.method == "PATCH" and interaction["token"] in r.path, since=mark,
                                what="a note that the result comes by DM")
        assert "direct message" in note.json["content"] and note.status == 200
        s.advance(2 * 60)
        dm = await s.wait_for(lambda r: r.method == "POST" and r.path == "/users/@me/channels", since=mark,
                              timeout=120)
        assert str(dm.json["recipient_id"]) == s.owner["id"]
        result = await s.wait_for(posted_to(dm.response["id"]), since=mark, timeout=120)
        assert "60 added" in result.json["content"]
        assert not [r for r in s.since(mark) if r.status == 401]


# -- 4. masked-link injection ------------------------------------------------------------------
async def test_an_article_url_or_title_cannot_add_a_link(bot_desk: Desk, tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, settings):
        _, reply, _ = await mention(s, "When does the last ferry to the islands leave this winter?")
        record = answer_record(settings, answer_id_of(reply.json))
        assert PHISH in [c["url"] for c in record["citations"] + record["related"]]
        links = [text for kind, text in spans_seen(s, reply.response) if kind in ("masked_link", "link", "autolink")]
        targets = [urlsplit(text.split(" -> ")[-1]).hostname for text in links]
        assert "phish.example" not in targets, links
        assert set(targets) <= {urlsplit(c["url"]).hostname for c in record["citations"] + record["related"]
                                if c["url"]}
        # one link per related article that has a URL, and no other masked link
        assert len([k for k, _ in spans_seen(s, reply.response) if k == "masked_link"]) == \
            len([r for r in record["related"] if r["url"]])
        hosts = link_hosts(s, reply.response)
        assert "phish.example" not in hosts and set(hosts) <= {urlsplit(c["url"]).hostname for c in
                                                              record["citations"] + record["related"] if c["url"]}


async def test_a_hostile_article_url_in_the_related_card_links_only_to_its_own_site(bot_desk: Desk,
                                                                                    tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, settings):
        _, reply, _ = await mention(s, "When did the library reopen?")
        record = answer_record(settings, answer_id_of(reply.json))
        assert PHISH not in [c["url"] for c in record["citations"]]
        hostile = next(r for r in record["related"] if r["url"] == PHISH)  # listed under Related, not cited
        spans = spans_seen(s, reply.response)
        # the Related card links each related article to its own address, the hostile one to a.example
        masked = [text for kind, text in spans if kind == "masked_link"]
        assert [m.split(" -> ")[1] for m in masked] == [link(r["url"]) for r in record["related"] if r["url"]]
        (label,) = [m.split(" -> ")[0] for m in masked if m.endswith(link(PHISH))]
        assert urlsplit(link(PHISH)).hostname == "a.example"
        assert label.startswith("Ferry [timetable](https:") and "@\u200beveryone" in label  # text, not a link
        related = next(e for e in s.seen_embeds(s.stored(s.news_channel_id, reply.response["id"]))
                       if e["title"] == "Related")
        assert f"[{hostile['n']}] [" in related["description"]
        # a web address in a label would be a second link (Discord does not render such masked links as meant)
        assert "https://phish.example/login" not in related["description"]
        # nothing else anywhere links, mentions or formats: no bare link, autolink or mention in any
        # title, description, field or footer, and every card's own url is its article's
        assert {kind for kind, _ in spans} == {"masked_link", "subtext"}, spans  # subtext: the bot's "-# As of"
        assert [text for kind, text in spans if kind == "subtext"] == ["-# A"]
        hosts = link_hosts(s, reply.response)
        assert set(hosts) <= {urlsplit(c["url"]).hostname for c in record["citations"] + record["related"]
                              if c["url"]} and "phish.example" not in hosts


# -- 5. /reindex -------------------------------------------------------------------------------
async def test_reindex_is_hidden_from_members_and_owner_only_without_admin_roles(bot_desk: Desk,
                                                                                 tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path, admin_roles=frozenset()) as (s, _):
        with pytest.raises(CommandHidden):
            await s.slash("reindex", user=s.user("member"))
        mark = len(s.requests)
        other_admin = await s.slash("reindex", user=s.user("admin-of-some-guild"), permissions=ADMINISTRATOR)
        refusal = await s.wait_for(lambda r: other_admin["token"] in r.path, since=mark)
        assert refusal.json["data"]["content"] == "Sorry, only the bot's admins can update the index."
        mark = len(s.requests)
        owner = await s.slash("reindex", user=s.owner)
        done = await s.wait_for(lambda r: r.method == "PATCH" and owner["token"] in r.path, since=mark, timeout=60)
        assert done.json["content"].startswith("Updated the index")


async def test_two_reindex_calls_at_once_run_one_update(bot_desk: Desk, embedder, tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(bot_desk.settings.corpus_dir, corpus)
    shutil.copytree(bot_desk.settings.index_dir, index)
    desk = Desk.open(index, corpus=corpus)
    async with bot_on(desk, tmp_path) as (s, _):
        mark = len(s.requests)
        first, second = await asyncio.gather(*(s.slash("reindex", user=s.user(n), roles=[s.admin_role_id])
                                               for n in ("one", "two")))
        replies = []
        for i in (first, second):
            replies.append(await s.wait_for(
                lambda r, t=i["token"]: t in r.path and (r.method == "PATCH" or (r.json or {}).get("type") == 4),
                since=mark, timeout=60))
        texts = sorted((r.json.get("content") or r.json.get("data", {}).get("content", "")) for r in replies)
        assert texts[0] == "An update is already running; I'll have the new articles when it finishes."
        assert texts[1].startswith("Updated the index")


# -- 6. thread memory of multi-page answers ----------------------------------------------------
async def test_a_multi_page_answer_keeps_its_question_in_thread_memory_after_a_restart(bot_desk: Desk,
                                                                                        tmp_path: Path) -> None:
    server = FakeDiscord()
    await server.start()
    try:
        user = server.user("reader")
        async with bot_on(bot_desk, tmp_path, server=server) as (s, _):
            mark = len(s.requests)
            await s.user_message(f"<@{s.bot_id}> What does the harbour dredging plan do?", author=user,
                                 mentions=[s.bot_user])
            thread = await s.wait_for(lambda r: r.path.endswith("/threads"), since=mark, what="a thread")
            pages = s.since(mark, "POST", f"/channels/{s.news_channel_id}/messages")
            assert len(pages) == 2
            thread_id = thread.response["id"]
            await s.wait_for(posted_to(thread_id), since=mark)
        async with bot_on(bot_desk, tmp_path, server=server) as (s, _):
            mark = len(s.requests)
            await s.user_message("How long will it take?", author=user, channel_id=int(thread_id))
            answer = await s.wait_for(lambda r: posted_to(thread_id)(r) and r.json.get("components"), since=mark)
            assert "-# Searched for: How long will it take? harbour dredging plan" in answer.json["content"]
    finally:
        await server.stop()


# -- 7. replies to deleted messages, no Read Message History -----------------------------------
async def test_a_deleted_question_still_gets_its_answer(bot_desk: Desk, tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, _):
        mark = len(s.requests)
        asked = await s.user_message(f"<@{s.bot_id}> How many votes did the tram extension get?",
                                     author=s.user("shy"), mentions=[s.bot_user])
        await s.delete_message(asked)
        answer = await s.wait_for(lambda r: posted_to(s.news_channel_id)(r) and r.status == 200, since=mark)
        assert "31 to 9" in answer.json["content"] and "message_reference" not in answer.response


async def test_the_apology_for_an_error_still_reaches_a_deleted_question(bot_desk: Desk, embedder,
                                                                        tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(bot_desk.settings.index_dir, index)
    desk = Desk.open(index)
    async with bot_on(desk, tmp_path) as (s, _):
        shutil.rmtree(index)  # the index disappears under the running bot: answering fails
        mark = len(s.requests)
        asked = await s.user_message(f"<@{s.bot_id}> How much did the Riverside library repairs cost?",
                                     author=s.user("shy"), mentions=[s.bot_user])
        await s.delete_message(asked)
        apology = await s.wait_for(posted_to(s.news_channel_id), since=mark, what="an apology")
        assert apology.status == 200
        assert re.fullmatch(r"Sorry, something went wrong while answering that \(error id `[0-9a-f]{8}`\)\. The bot's "
                            r"host can find the details in its log under that id\.", apology.json["content"])
        assert apology.json["message_reference"]["fail_if_not_exists"] is False
        assert "message_reference" not in apology.response  # a plain message: the question is gone
        assert not [(r.method, r.path, r.status) for r in s.since(mark) if r.status >= 400]


async def test_without_read_message_history_answers_are_plain_messages(bot_desk: Desk, tmp_path: Path) -> None:
    server = FakeDiscord()
    await server.start()
    no_history = server.add_channel("no-history", deny={int(server.bot_role()["id"]): READ_HISTORY})
    try:
        async with bot_on(bot_desk, tmp_path, server=server, allowed_channels=frozenset({no_history})) as (s, _):
            mark = len(s.requests)
            await s.user_message(f"<@{s.bot_id}> How many votes did the tram extension get?",
                                 author=s.user("r"), channel_id=no_history, mentions=[s.bot_user])
            answer = await s.wait_for(lambda r: posted_to(no_history)(r) and r.status == 200, since=mark)
            assert "31 to 9" in answer.json["content"]
            assert not [r for r in s.since(mark) if r.status >= 400 and r.path.startswith("/channels")]
    finally:
        await server.stop()


async def test_a_locked_thread_gets_no_reply_attempts(bot_desk: Desk, tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, _):
        user = s.user("reader")
        _, reply, _ = await mention(s, "How much did the Riverside library repairs cost?", user=user)
        thread_id = int(reply.response["id"])
        await s.archive_thread(thread_id, locked=True)
        mark = len(s.requests)
        await s.user_message(f"<@{s.bot_id}> When did it reopen?", author=s.owner, channel_id=thread_id,
                             mentions=[s.bot_user])
        await mention(s, "How many votes did the tram extension get?")
        await asyncio.sleep(1.0)  # messages are handled concurrently: give the one in the thread its time
        assert not [(r.method, r.path, r.status) for r in s.since(mark) if r.status >= 400]
        assert not [r for r in s.since(mark) if str(thread_id) in r.path and r.method == "POST"]


# -- 8. bounded memory, LRU, command sync ------------------------------------------------------
async def test_the_session_cache_keeps_the_conversation_in_use(bot_desk: Desk, tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path, max_conversations=2, rate_limit=0) as (s, _):
        user = s.user("busy")
        threads = []
        for q in ("How much did the Riverside library repairs cost?", "How many votes did the tram extension get?"):
            _, reply, _ = await mention(s, q, user=user)
            threads.append(reply.response["id"])
        a, _ = threads
        mark = len(s.requests)
        await s.user_message("When did it reopen?", author=user, channel_id=int(a))
        await s.wait_for(lambda r: posted_to(a)(r) and r.json.get("components"), since=mark)
        await mention(s, "How many people were treated for heat exhaustion in Valdor?", user=user)
        mark = len(s.requests)
        await s.user_message("Who paid for it?", author=user, channel_id=int(a))
        await s.wait_for(lambda r: posted_to(a)(r) and r.json.get("components"), since=mark)
        assert not s.since(mark, "GET", f"/channels/{a}/messages"), "the conversation in use was evicted"


async def test_reminders_and_hints_are_kept_for_at_most_max_conversations_users_and_threads(bot_desk: Desk,
                                                                                          tmp_path: Path) -> None:
    # Without the Message Content intent a follow-up without a mention gets a hint, once per thread.
    server = FakeDiscord(message_content_allowed=False)
    await server.start()
    try:
        async with bot_on(bot_desk, tmp_path, server=server, max_conversations=2, rate_limit=1,
                          rate_window=600, command_guilds=frozenset()) as (s, _):
            news = s.news_channel_id

            async def ask(user: dict) -> str | None:
                """What the bot said to a question from `user`, if anything (another's question shows it is done)."""
                mark = len(s.requests)
                asked = await s.user_message(f"<@{s.bot_id}> How many votes did the tram extension get?",
                                             author=user, mentions=[s.bot_user])
                await mention(s, "How many votes did the tram extension get?", user=s.user("someone else"))
                await asyncio.sleep(0.5)

                def to_it(r: Any) -> bool:
                    return posted_to(news)(r) and str(r.json["message_reference"]["message_id"]) == asked["id"]
                said = [r.json["content"] for r in s.since(mark) if to_it(r)]
                return said[0] if said else None

            a, b, c = (s.user(n) for n in "abc")
            for user in (a, b, c):
                assert "31 to 9" in await ask(user)  # each user's one question in the window
            assert (await ask(a)).startswith("You're asking faster than I can keep up with")
            assert await ask(a) is None  # one reminder per window
            assert (await ask(b)).startswith("You're asking faster")
            assert (await ask(c)).startswith("You're asking faster")
            # only two users' reminders are remembered (max_conversations): a's was forgotten
            assert (await ask(a)).startswith("You're asking faster")

            threads = []
            for q in ("How much did the Riverside library repairs cost?", "When did the library reopen?",
                      "How many people were treated for heat exhaustion in Valdor?"):
                _, _, mark = await mention(s, q, user=s.user("reader"))
                opened = await s.wait_for(lambda r: r.path.endswith("/threads") and r.status == 201, since=mark)
                threads.append(opened.response["id"])

            async def hinted(thread_id: str) -> bool:
                mark = len(s.requests)
                await s.user_message("And then?", author=s.user("reader"), channel_id=int(thread_id))
                await mention(s, "How many votes did the tram extension get?", user=s.user("someone else"))
                return bool(s.since(mark, "POST", f"/channels/{thread_id}/messages"))

            first, second, third = threads
            assert await hinted(first) and not await hinted(first)
            assert await hinted(second) and await hinted(third)
            assert await hinted(first)  # only two threads' hints are remembered: the first one's was forgotten
    finally:
        await server.stop()


async def test_commands_are_synced_only_when_they_change_and_never_left_twice(bot_desk: Desk,
                                                                             tmp_path: Path) -> None:
    server = FakeDiscord()
    await server.start()
    try:
        async with bot_on(bot_desk, tmp_path, server=server, command_guilds=frozenset()):
            pass
        assert [r.path for r in server.requests if r.method == "PUT"] == [f"/applications/{server.app_id}/commands"]
        mark = len(server.requests)
        async with bot_on(bot_desk, tmp_path, server=server, command_guilds=frozenset()):
            pass
        assert not server.since(mark, "PUT"), "the same commands were registered again"
        async with bot_on(bot_desk, tmp_path, server=server, command_guilds=frozenset({server.guild_id})):
            names = [c["name"] for c in server.visible_commands(server.guild_id)]
            assert sorted(names) == sorted(set(names)), f"members see duplicates: {names}"
        async with bot_on(bot_desk, tmp_path, server=server, command_guilds=frozenset()):
            names = [c["name"] for c in server.visible_commands(server.guild_id)]
            assert sorted(names) == sorted(set(names)), f"members see duplicates: {names}"
            assert server.global_commands
    finally:
        await server.stop()


# -- the stricter server's other rules ---------------------------------------------------------
async def test_a_multi_page_slash_answer_replaces_the_loading_message_then_adds_its_other_pages(
        bot_desk: Desk, tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, settings):
        mark = len(s.requests)
        interaction = await s.slash("ask", {"question": "What does the harbour dredging plan do?"}, user=s.user("r"))
        token = interaction["token"]
        defer = await s.wait_for(lambda r: token in r.path and "/callback" in r.path, since=mark)
        assert defer.json == {"type": 5}
        loading = s.original(interaction)
        assert loading["flags"] & LOADING  # "newsdesk is thinking..."
        last = await s.wait_for(lambda r: token in r.path and (r.json or {}).get("components"), since=mark,
                                what="the page with the buttons")
        sent = [r for r in s.since(mark) if token in r.path and "/callback" not in r.path]
        # The first page replaces the loading message; only then come followups. On Discord the first
        # followup after a defer would itself replace the loading message, and a later edit of it
        # would overwrite that page.
        assert [r.method for r in sent] == ["PATCH"] + ["POST"] * (len(sent) - 1) and len(sent) >= 2
        assert sent[-1] is last and all(r.status == 200 for r in sent)
        ids = [r.response["id"] for r in sent]
        assert ids[0] == loading["id"] and len(set(ids)) == len(ids)
        # what the channel shows: every page as its own message, in order, the buttons under the last
        shown = [s.stored(s.news_channel_id, i) for i in ids]
        assert not shown[0]["flags"] & LOADING and shown[0]["content"].startswith(
            "**Question:** What does the harbour dredging plan do?\n")
        assert [m["content"] for m in shown] == [r.json.get("content", "") for r in sent]
        assert shown[-1]["components"] and not any(m["components"] for m in shown[:-1])
        record = answer_record(settings, answer_id_of(last.json))
        text = " ".join(" ".join(m["content"] for m in shown).split())
        cards = "\n".join(e.get("title", "") for m in shown for e in s.seen_embeds(m))
        for c in record["citations"]:
            assert " ".join(escape(c["quote"]).split()) in text and f"[{c['n']}]" in cards
        thread = await s.wait_for(lambda r: r.path.endswith(f"/messages/{ids[-1]}/threads"), since=mark,
                                  what="a thread on the last page")
        assert thread.status == 201
        await s.wait_for(posted_to(ids[-1]), since=mark, what="the hint in the thread")
        assert [r for r in s.since(mark) if token in r.path and "/callback" not in r.path] == sent  # no apology


async def test_a_later_page_refused_leaves_the_first_page_and_apologises_below_it(bot_desk: Desk,
                                                                                   tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, _):
        mark = len(s.requests)
        interaction = await s.slash("ask", {"question": "What does the harbour dredging plan do?"}, user=s.user("r"))
        token = interaction["token"]
        s.refuse(lambda method, path: method == "POST" and path.startswith(f"/webhooks/{s.app_id}/{token}"))
        refused = await s.wait_for(lambda r: token in r.path and r.method == "POST" and r.status == 403, since=mark,
                                   what="the refused second page")
        apology = await s.wait_for(lambda r: token in r.path and r.method == "POST" and r.status == 200
                                   and "went wrong" in (r.json or {}).get("content", ""), since=mark,
                                   what="the apology")
        assert apology.json["flags"] & EPHEMERAL and refused.json.get("content")
        first_page = s.original(interaction)
        assert first_page["content"].startswith("**Question:** What does the harbour dredging plan do?\n")
        assert "went wrong" not in first_page["content"]
        edits = [r for r in s.since(mark) if token in r.path and r.method == "PATCH"]
        assert len(edits) == 1  # the first page, never overwritten by the apology


async def test_streamed_edits_survive_429s(bot_desk: Desk, tmp_path: Path) -> None:
    with fake_llm() as llm:
        llm.script(streamed_sentences(4))
        desk = slow_llm_desk(bot_desk, llm)
        # one edit per 1.5 s, a limit Discord does not announce in headers: only 429s tell the bot
        server = FakeDiscord(hidden_limits={"PATCH /webhooks/{app}/{token}/messages/@original": (1, 1.5)})
        await server.start()
        try:
            async with bot_on(desk, tmp_path, server=server) as (s, _):
                interaction = await s.slash("ask", {"question": "When did the library reopen?"}, user=s.user("x"))
                final = await s.wait_for(lambda r: r.method == "PATCH" and interaction["token"] in r.path
                                         and r.status == 200 and "components" in (r.json or {}), timeout=40)
                assert final.json["components"]
                limited = [r for r in edits_of(s, interaction) if r.status == 429]
                assert limited and all(r.response["retry_after"] > 0 for r in limited)
                assert "1.3 million euros" in s.original(interaction)["content"]
                assert s.original(interaction)["components"]
        finally:
            await server.stop()


async def test_a_reconnect_request_is_resumed_and_nothing_is_missed(bot_desk: Desk, tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, _):
        identified = len(s.identifies)
        session = await s.request_reconnect()
        mark = len(s.requests)
        await s.user_message(f"<@{s.bot_id}> How many votes did the tram extension get?", author=s.user("r"),
                             mentions=[s.bot_user])  # sent while the bot reconnects: replayed on resume
        answer = await s.wait_for(posted_to(s.news_channel_id), since=mark, what="an answer after the resume")
        assert "31 to 9" in answer.json["content"]
        assert len(s.identifies) == identified and session.resumes == 1
        assert s.resumes[-1]["path"] == "/resume" and s.resumes[-1]["session_id"] == session.id


async def test_an_archived_thread_reopens_for_a_follow_up(bot_desk: Desk, tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, _):
        user = s.user("reader")
        _, reply, _ = await mention(s, "How much did the Riverside library repairs cost?", user=user)
        thread_id = reply.response["id"]
        await s.archive_thread(int(thread_id))
        mark = len(s.requests)
        await s.user_message("When did it reopen?", author=user, channel_id=int(thread_id))
        answer = await s.wait_for(lambda r: posted_to(thread_id)(r) and r.json.get("components"), since=mark)
        assert answer.status == 200 and not s.channels[int(thread_id)]["thread_metadata"]["archived"]


async def test_an_answer_lands_in_a_thread_archived_meanwhile_and_not_in_one_locked_meanwhile(
        bot_desk: Desk, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with fake_llm() as llm:
        llm.script(slow_reply(0), slow_reply(3), slow_reply(3))
        desk = slow_llm_desk(bot_desk, llm)
        async with bot_on(desk, tmp_path) as (s, _):
            user = s.user("reader")
            _, reply, _ = await mention(s, "When did the library reopen?", user=user)
            thread_id = reply.response["id"]
            thread = s.channels[int(thread_id)]["thread_metadata"]

            # the thread goes quiet (auto-archive) while the bot works out a follow-up: its answer reopens it
            mark = len(s.requests)
            await s.user_message("How much did the repairs cost?", author=user, channel_id=int(thread_id))
            await eventually(lambda: len(llm.requests) == 2)
            await s.archive_thread(int(thread_id))
            answer = await s.wait_for(lambda r: posted_to(thread_id)(r) and r.json.get("components"), since=mark,
                                      timeout=20, what="the answer in the archived thread")
            assert answer.status == 200 and not thread["archived"]
            assert not [(r.method, r.path, r.status) for r in s.since(mark) if r.status >= 400]

            # a moderator locks it meanwhile: only moderators may post there, so the bot does not try
            mark = len(s.requests)
            await s.user_message("Who paid for them?", author=user, channel_id=int(thread_id))
            await eventually(lambda: len(llm.requests) == 3)
            await s.archive_thread(int(thread_id), locked=True)
            await eventually(lambda: f"Not answering in thread {thread_id}: it was locked" in caplog.text, timeout=20)
            await asyncio.sleep(0.5)
            assert not [r for r in s.since(mark) if r.path == f"/channels/{thread_id}/messages"]
            assert not [(r.method, r.path, r.status) for r in s.since(mark) if r.status >= 400]
            assert thread["archived"] and thread["locked"]


async def test_without_send_messages_the_bot_stays_quiet_and_says_why_in_the_log(
        bot_desk: Desk, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = FakeDiscord()
    await server.start()
    mute = server.add_channel("read-only", deny={int(server.bot_role()["id"]): SEND_MESSAGES})
    try:
        async with bot_on(bot_desk, tmp_path, server=server, allowed_channels=frozenset()) as (s, _):
            mark = len(s.requests)
            await s.user_message(f"<@{s.bot_id}> How many votes did the tram extension get?", author=s.user("r"),
                                 channel_id=mute, mentions=[s.bot_user])
            await mention(s, "How many votes did the tram extension get?")
            await asyncio.sleep(1.0)  # messages are handled concurrently: give the first its time
            assert not [r for r in s.since(mark) if str(mute) in r.path]
            assert "lacks 'Send Messages' there" in caplog.text
    finally:
        await server.stop()


async def test_without_send_messages_in_threads_the_bot_posts_in_no_thread_and_says_why(
        bot_desk: Desk, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = FakeDiscord()
    await server.start()
    bot_role = int(server.bot_role()["id"])
    no_threads = server.add_channel("no-thread-posts", deny={bot_role: SEND_IN_THREADS})
    try:
        async with bot_on(bot_desk, tmp_path, server=server, allowed_channels=frozenset(), rate_limit=0) as (s, _):
            user = s.user("reader")
            # an answer where the bot could not post in a thread opens none: nobody could be answered in it
            mark = len(s.requests)
            await s.user_message(f"<@{s.bot_id}> How many votes did the tram extension get?", author=user,
                                 channel_id=no_threads, mentions=[s.bot_user])
            answer = await s.wait_for(lambda r: posted_to(no_threads)(r) and r.json.get("components"), since=mark)
            assert answer.status == 200 and "31 to 9" in answer.json["content"]
            await mention(s, "How much did the Riverside library repairs cost?", user=user)  # handled after it
            assert not [r for r in s.since(mark) if r.path.endswith(f"/messages/{answer.response['id']}/threads")]
            assert "lacks 'Send Messages in Threads'" in caplog.text

            # a thread the bot opened, then the permission taken away in its channel (CHANNEL_UPDATE)
            _, reply, _ = await mention(s, "How much did the Riverside library repairs cost?", user=user)
            thread_id = reply.response["id"]
            await s.set_overwrite(s.news_channel_id, bot_role, deny=SEND_IN_THREADS)
            caplog.clear()
            mark = len(s.requests)
            await s.user_message("When did it reopen?", author=user, channel_id=int(thread_id))
            await s.user_message(f"<@{s.bot_id}> When did it reopen?", author=user, channel_id=int(thread_id),
                                 mentions=[s.bot_user])
            # /follow there is refused privately, with what to change
            follow = await s.slash("follow", {"topic": "the Riverside library"}, user=s.user("mod"),
                                   channel_id=int(thread_id), permissions=MEMBER_PERMISSIONS | MANAGE_CHANNELS)
            refusal = await s.wait_for(lambda r: follow["token"] in r.path and "/callback" in r.path, since=mark)
            assert refusal.json["data"] == {
                "content": "I may not post in this channel: give me 'Send Messages in Threads' here first, then "
                           "follow the topic again.", "flags": 64, "allowed_mentions": {"parse": []}, "tts": False}
            last = len(s.requests)
            await s.user_message(f"<@{s.bot_id}> How many votes did the tram extension get?", author=s.user("other"),
                                 channel_id=no_threads, mentions=[s.bot_user])
            await s.wait_for(lambda r: posted_to(no_threads)(r) and r.json.get("components"), since=last)
            await asyncio.sleep(1.0)  # messages are handled concurrently: give the ones in the thread their time
            assert not [r for r in s.since(mark) if thread_id in r.path], "it tried to post in the thread"
            assert not [(r.method, r.path, r.status) for r in s.since(mark) if r.status >= 400]
            assert caplog.text.count(f"Not answering in channel {thread_id}: the bot lacks 'Send Messages in "
                                     "Threads' there") == 2
    finally:
        await server.stop()
