"""Followed topics, end to end: /follow, /unfollow, /following and the posts after an update.

The bot's corpus is the story fixtures without `later/`; the five later articles land in one
update, and only landslide-inquiry.md of them is on "the Brekke landslide" (only night-trains.md
on "night trains to the coast", none on "the Rovers cup final").
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from discord_server import (MANAGE_CHANNELS, MEMBER_PERMISSIONS, SEND_IN_THREADS, SEND_MESSAGES, CommandHidden,
                            FakeDiscord, OptionRefused, Request)
from test_bot_e2e import NONE, bot_desk, posted_to  # noqa: F401 (bot_desk: a fixture)
from test_bot_strict import bot_on

from newsdesk import Desk
from newsdesk_bot.topics import MAX_TOPICS, TOPIC_CHARS

pytestmark = pytest.mark.asyncio(loop_scope="session")
STORIES = Path(__file__).parent / "fixtures" / "stories"
INQUIRY_URL = "https://northline.example/2026/01/12/brekke-inquiry"
TRAINS_URL = "https://northline.example/2026/01/15/night-trains"
GEOLOGISTS_URL = "https://northline.example/2026/01/20/brekke-geologists"
CHANNEL_ADMIN = MEMBER_PERMISSIONS | MANAGE_CHANNELS
LANDSLIDE = "the Brekke landslide"
GEOLOGISTS = f"""---
title: Brekke landslide inquiry hears the geologists
date: 2026-01-20
source: Northline Press
url: {GEOLOGISTS_URL}
---
The inquiry into the landslide in Brekke heard on Tuesday from the geologists who had warned that the slope above
the village was moving.
"""


@pytest.fixture(scope="session")
def story_index(embedder, tmp_path_factory) -> Path:
    """The story fixtures without `later/`, indexed once; each test updates its own copy."""
    base = tmp_path_factory.mktemp("stories")
    shutil.copytree(STORIES, base / "corpus", ignore=shutil.ignore_patterns("later"))
    Desk.build(base / "corpus", base / "index")
    return base


def story_desk(story_index: Path, tmp_path: Path) -> Desk:
    shutil.copytree(story_index / "corpus", tmp_path / "corpus")
    shutil.copytree(story_index / "index", tmp_path / "index")
    return Desk.open(tmp_path / "index", corpus=tmp_path / "corpus")


def add_later_articles(desk: Desk) -> None:
    for f in sorted((STORIES / "later").iterdir()):
        shutil.copy(f, desk.settings.corpus_dir / f.name)


async def command(s: FakeDiscord, name: str, options: dict | None = None, **kwargs) -> Request:
    """Run a slash command; its first response (the callback request)."""
    mark = len(s.requests)
    interaction = await s.slash(name, options, **kwargs)
    return await s.wait_for(lambda r: interaction["token"] in r.path and "/callback" in r.path, since=mark)


async def reply_to(s: FakeDiscord, name: str, options: dict | None = None, **kwargs) -> str:
    """A command's private reply, which must be its first response."""
    callback = await command(s, name, options, **kwargs)
    assert callback.status == 200 and callback.json["type"] == 4, callback.json
    assert callback.json["data"]["flags"] == 64 and callback.json["data"]["allowed_mentions"] == NONE
    return callback.json["data"]["content"]


async def reindex(s: FakeDiscord) -> str:
    mark = len(s.requests)
    interaction = await s.slash("reindex", user=s.user("editor"), roles=[s.admin_role_id])
    done = await s.wait_for(lambda r: r.method == "PATCH" and interaction["token"] in r.path, since=mark,
                            timeout=120, what="the /reindex result")
    return done.json["content"]


def posts(s: FakeDiscord, channel_id: int, mark: int) -> list[Request]:
    return [r for r in s.since(mark) if posted_to(channel_id)(r)]


@asynccontextmanager
async def following_the_landslide(desk: Desk, tmp_path: Path, **changes) -> AsyncIterator[tuple[FakeDiscord, int]]:
    """The bot on a server with a #landslide channel that follows the landslide topic."""
    server = FakeDiscord()
    await server.start()
    landslide = server.add_channel("landslide")
    try:
        async with bot_on(desk, tmp_path, server=server, allowed_channels=frozenset(), **changes) as (s, _):
            await reply_to(s, "follow", {"topic": LANDSLIDE}, user=s.owner, channel_id=landslide)
            yield s, landslide
    finally:
        await server.stop()


async def test_a_followed_topic_gets_one_cited_post_when_a_matching_article_lands(story_index: Path,
                                                                                 tmp_path: Path) -> None:
    desk = story_desk(story_index, tmp_path)
    server = FakeDiscord()
    await server.start()
    landslide = server.add_channel("landslide")
    transport = server.add_channel("transport")
    muted = server.add_channel("muted")
    mod = server.user("mod")
    try:
        async with bot_on(desk, tmp_path, server=server, allowed_channels=frozenset()) as (s, _):
            followed = [(landslide, LANDSLIDE), (landslide, "the Rovers cup final"),
                        (transport, "night trains to the coast"), (muted, LANDSLIDE)]
            replies = [await reply_to(s, "follow", {"topic": topic}, user=mod, channel_id=channel,
                                      permissions=CHANNEL_ADMIN) for channel, topic in followed]
            assert replies[0] == ("I'll post here when new articles on “the Brekke landslide” land: a short cited "
                                  "summary, at most once per index update. This channel follows 1 topic; "
                                  "`/following` lists them.")
            assert "This channel follows 2 topics" in replies[1]
            # the bot loses Send Messages in #muted after it followed there: skipped, and said so
            await s.set_overwrite(muted, int(s.bot_role()["id"]), deny=SEND_MESSAGES)

            add_later_articles(desk)
            mark = len(s.requests)
            result = await reindex(s)
            assert "5 added" in result
            assert result.endswith("\n-# News on 2 followed topics: posted in 2 channels; skipped 1 where I may "
                                   "not post (see the log).")
            (post,) = posts(s, landslide, mark)  # one post for both topics: only the landslide had news
            body = post.json
            assert post.status == 200
            assert body["content"].startswith("**New on “the Brekke landslide”:**\n")
            assert "killed 31 people in the village of Brekke" in body["content"]
            assert "-# 1 new article matches this topic. Stop these posts with /unfollow." in body["content"]
            assert [e.get("url") for e in body["embeds"]] == [INQUIRY_URL]  # cites landslide-inquiry.md only
            assert "[1]" in body["content"] and body["embeds"][0]["title"].startswith("[1]")
            assert body["allowed_mentions"] == NONE and not body.get("components")
            (trains,) = posts(s, transport, mark)
            assert trains.json["content"].startswith("**New on “night trains to the coast”:**\n")
            assert [e.get("url") for e in trains.json["embeds"]] == [TRAINS_URL]
            assert not posts(s, muted, mark)  # not even tried

            # an update that brings nothing new posts nothing
            mark = len(s.requests)
            result = await reindex(s)
            assert "0 added" in result and "\n-#" not in result
            assert not [r for r in s.since(mark, "POST") if r.path.startswith("/channels/")]

            listed = await reply_to(s, "following", user=s.user("reader"), channel_id=landslide)
            assert listed == "This channel follows 2 topics:\n- “the Brekke landslide”\n- “the Rovers cup final”"
            gone = await reply_to(s, "unfollow", {"topic": "The BREKKE  landslide"}, user=mod, channel_id=landslide,
                                  permissions=CHANNEL_ADMIN)
            assert gone == "I've stopped following “the Brekke landslide” here."

        # the topics survive a restart: they are kept beside the feedback log
        async with bot_on(desk, tmp_path, server=server, allowed_channels=frozenset()) as (s, settings):
            assert settings.feedback_log.with_name("feedback.jsonl.follows.json").is_file()
            listed = await reply_to(s, "following", user=s.user("reader"), channel_id=landslide)
            assert listed == "This channel follows 1 topic:\n- “the Rovers cup final”"
            await s.set_overwrite(muted, int(s.bot_role()["id"]))  # Send Messages again
            (desk.settings.corpus_dir / "landslide-geologists.md").write_text(GEOLOGISTS, encoding="utf-8")
            mark = len(s.requests)
            result = await reindex(s)
            assert "1 added" in result and result.endswith("\n-# News on 1 followed topic: posted in 1 channel.")
            assert not posts(s, landslide, mark)  # unfollowed there
            (post,) = posts(s, muted, mark)  # still followed in #muted, from before the restart
            assert post.json["content"].startswith("**New on “the Brekke landslide”:**\n")
            assert [e.get("url") for e in post.json["embeds"]] == [GEOLOGISTS_URL]
    finally:
        await server.stop()


async def test_an_update_with_two_articles_on_a_topic_posts_once_citing_them(story_index: Path,
                                                                            tmp_path: Path) -> None:
    desk = story_desk(story_index, tmp_path)
    async with following_the_landslide(desk, tmp_path) as (s, landslide):
        add_later_articles(desk)
        (desk.settings.corpus_dir / "landslide-geologists.md").write_text(GEOLOGISTS, encoding="utf-8")
        mark = len(s.requests)
        result = await reindex(s)
        assert "6 added" in result and result.endswith("\n-# News on 1 followed topic: posted in 1 channel.")
        await asyncio.sleep(1.0)  # a second post for the same update would follow at once
        (post,) = posts(s, landslide, mark)
        content = post.json["content"]
        assert content.startswith("**New on “the Brekke landslide”:**\n")
        assert "-# 2 new articles match this topic. Stop these posts with /unfollow." in content
        cited = [e.get("url") for e in post.json["embeds"]]  # the summary cites the best of them, or both
        assert cited and set(cited) <= {INQUIRY_URL, GEOLOGISTS_URL} and len(set(cited)) == len(cited)
        assert not [r for r in s.since(mark, "POST") if r.path.startswith("/channels/") and r is not post]


async def test_news_reopens_an_archived_thread_and_skips_locked_or_muted_ones_without_trying(
        story_index: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    desk = story_desk(story_index, tmp_path)
    server = FakeDiscord()
    await server.start()
    forum = server.add_channel("newsroom-forum", kind=15)
    muted_forum = server.add_channel("muted-forum", kind=15)
    try:
        async with bot_on(desk, tmp_path, server=server, allowed_channels=frozenset()) as (s, _):
            reader = s.user("reader")
            archived, locked = [int((await s.forum_post(title, "Following the story here.", author=reader,
                                                        forum_id=forum))["channel_id"]) for title in ("a", "b")]
            muted = int((await s.forum_post("c", "And here.", author=reader, forum_id=muted_forum))["channel_id"])
            for thread in (archived, locked, muted):  # followed where the bot may post, in the post itself
                assert (await reply_to(s, "follow", {"topic": LANDSLIDE}, user=s.owner, channel_id=thread)
                        ).startswith("I'll post here")
            await s.archive_thread(archived)  # gone quiet
            await s.archive_thread(locked, locked=True)  # only moderators may post
            await s.set_overwrite(muted_forum, int(s.bot_role()["id"]), deny=SEND_IN_THREADS)

            add_later_articles(desk)
            mark = len(s.requests)
            result = await reindex(s)
            assert result.endswith("\n-# News on 1 followed topic: posted in 1 channel; skipped 2 where I may not "
                                   "post (see the log).")
            (post,) = posts(s, archived, mark)
            assert post.status == 200 and post.json["content"].startswith("**New on “the Brekke landslide”:**\n")
            assert not s.channels[archived]["thread_metadata"]["archived"]  # the post reopened it, as on Discord
            assert not posts(s, locked, mark) and not posts(s, muted, mark)  # not even tried
            assert not [(r.method, r.path, r.status) for r in s.since(mark) if r.status >= 400]
            assert s.channels[locked]["thread_metadata"]["archived"]
            assert f"Not posting news on 'the Brekke landslide' in thread {locked}: it is locked" in caplog.text
            assert (f"Not posting news on 'the Brekke landslide' in channel {muted}: the bot lacks 'Send Messages in "
                    "Threads' there") in caplog.text
    finally:
        await server.stop()


async def test_new_articles_found_by_the_watcher_are_posted_to_their_followers(story_index: Path,
                                                                              tmp_path: Path) -> None:
    desk = story_desk(story_index, tmp_path)
    async with following_the_landslide(desk, tmp_path, watch=True) as (s, landslide):
        mark = len(s.requests)
        add_later_articles(desk)  # written at once: one update (files still being written wait for the next)
        (desk.settings.corpus_dir / "landslide-geologists.md").write_text(GEOLOGISTS, encoding="utf-8")
        post = await s.wait_for(posted_to(landslide), since=mark, timeout=90, what="news from the watcher")
        assert post.status == 200
        assert post.json["content"].startswith("**New on “the Brekke landslide”:**\n")
        assert "-# 2 new articles match this topic." in post.json["content"]
        cited = [e.get("url") for e in post.json["embeds"]]
        assert cited and set(cited) <= {INQUIRY_URL, GEOLOGISTS_URL}
        await asyncio.sleep(3.0)  # past the watcher's debounce and settle: any later update has run
        assert posts(s, landslide, mark) == [post], "a second post for the same update"


async def test_only_members_who_manage_the_channel_choose_its_topics(bot_desk: Desk, tmp_path: Path) -> None:
    server = FakeDiscord()
    await server.start()
    read_only = server.add_channel("read-only", deny={server.guilds[server.guild_id]["bot_role_id"]: SEND_MESSAGES})
    news = server.news_channel_id
    try:
        async with bot_on(bot_desk, tmp_path, server=server,
                          allowed_channels=frozenset({news, read_only})) as (s, _):
            member, mod = s.user("member"), s.user("mod")
            with pytest.raises(CommandHidden):  # Discord shows /follow and /unfollow only with Manage Channels
                await s.slash("follow", {"topic": "trams"}, user=member)
            with pytest.raises(CommandHidden):
                await s.slash("unfollow", {"topic": "trams"}, user=member)
            assert await reply_to(s, "following", user=member) == (
                "This channel follows no topics. Members who can manage it can add one with `/follow topic:`.")

            # a server admin lets everyone use /follow (Integrations): the bot still refuses, privately
            s.permit("follow", s.guild_id)
            assert await reply_to(s, "follow", {"topic": "trams"}, user=member) == (
                "Sorry, only members who can manage this channel choose the topics I follow here.")
            # the bot's admin roles may, like the owner
            assert (await reply_to(s, "follow", {"topic": "trams"}, user=s.user("editor"),
                                   roles=[s.admin_role_id])).startswith("I'll post here when new articles on “trams”")
            assert await reply_to(s, "following", user=member) == "This channel follows 1 topic:\n- “trams”"

            # limits, each with a reply that says what to do
            with pytest.raises(OptionRefused):  # Discord's client enforces the option's max_length
                await s.slash("follow", {"topic": "x" * (TOPIC_CHARS + 1)}, user=mod, permissions=CHANNEL_ADMIN)
            assert await reply_to(s, "follow", {"topic": "  TRAMS "}, user=mod, permissions=CHANNEL_ADMIN) == (
                "This channel already follows “TRAMS”.")
            for i in range(2, MAX_TOPICS + 1):
                await reply_to(s, "follow", {"topic": f"topic {i}"}, user=mod, permissions=CHANNEL_ADMIN)
            assert await reply_to(s, "follow", {"topic": "one too many"}, user=mod, permissions=CHANNEL_ADMIN) == (
                f"This channel already follows {MAX_TOPICS} topics, the most I keep for one channel: "
                "`/unfollow` one of them first.")
            assert await reply_to(s, "unfollow", {"topic": "buses"}, user=mod, permissions=CHANNEL_ADMIN) == (
                "This channel doesn't follow “buses”; `/following` lists what it does.")
            s.permit("unfollow", int(mod["id"]))  # autocomplete comes from a member Discord shows /unfollow
            mark = len(s.requests)
            typing = await s.autocomplete("unfollow", {"topic": "Topic 2"}, "topic", user=mod)
            offered = await s.wait_for(lambda r: typing["token"] in r.path, since=mark)
            assert offered.status == 200
            assert [c["value"] for c in offered.json["data"]["choices"]] == ["topic 2", "topic 20", "topic 21",
                                                                              "topic 22", "topic 23", "topic 24",
                                                                              "topic 25"]
            listed = await reply_to(s, "following", user=member)
            assert listed.splitlines()[0] == f"This channel follows {MAX_TOPICS} topics:"

            # where the bot may not post, or may not answer at all, it says so instead of following
            assert await reply_to(s, "follow", {"topic": "trams"}, user=mod, permissions=CHANNEL_ADMIN,
                                  channel_id=read_only) == (
                "I may not post in this channel: give me 'Send Messages' here first, then follow the topic again.")
            assert (await reply_to(s, "follow", {"topic": "trams"}, user=mod, permissions=CHANNEL_ADMIN,
                                   channel_id=s.other_channel_id)).startswith("I don't post in this channel.")
    finally:
        await server.stop()


async def test_follow_commands_are_registered_for_guilds_with_their_permissions(bot_desk: Desk,
                                                                               tmp_path: Path) -> None:
    async with bot_on(bot_desk, tmp_path) as (s, _):
        commands = {c["name"]: c for c in s.commands}
        for name in ("follow", "unfollow"):
            assert int(commands[name]["default_member_permissions"]) == MANAGE_CHANNELS
        assert commands["following"].get("default_member_permissions") is None
        assert all(commands[n]["contexts"] == [0] for n in ("follow", "unfollow", "following"))
        (topic,) = commands["follow"]["options"]
        assert (topic["name"], topic["required"], topic["min_length"], topic["max_length"]) == (
            "topic", True, 1, TOPIC_CHARS)
        assert commands["unfollow"]["options"][0]["autocomplete"] is True
