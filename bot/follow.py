"""Followed topics: /follow, /unfollow and /following, and the posts when news on a topic lands.

After every index update (watch mode or /reindex) the articles it added or changed are matched
against each followed topic with `desk.topic_news`; a channel that follows a topic with new
matches gets one post, "New on “topic”:" and a short cited summary of what the new articles
say. A topic followed by several channels is matched once per update. A rebuilt index reports
every article as new, so a rebuild posts nothing.

Who chooses what a channel follows: members who may manage that channel (Manage Channels, which
is also what Discord asks before it shows them /follow and /unfollow), the members with one of
the bot's `admin_roles`, and the bot's owner, like /channel. Anyone may list them with /following.

A thread or forum post can follow topics of its own: the news is posted where /follow was run.
The topics are kept by `topics.FollowedTopics`, so they survive restarts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from newsdesk_bot.ask import _parent_id
from newsdesk_bot.format import escape, render_answer
from newsdesk_bot.replies import NO_MENTIONS, can_embed, permissions, send_pages
from newsdesk_bot.split import paginate
from newsdesk_bot.topics import MAX_TOPICS, TOPIC_CHARS, FollowedTopics, topic_key

if TYPE_CHECKING:
    from newsdesk import TopicNews, UpdateReport
    from newsdesk_bot.client import NewsdeskBot

log = logging.getLogger("newsdesk.bot")

NOT_ALLOWED = "Sorry, only members who can manage this channel choose the topics I follow here."
NO_TOPIC = "Tell me what to follow, like `/follow topic: the Brekke landslide`."
TOO_LONG = f"A topic can be at most {TOPIC_CHARS} characters: say it in fewer words."
FULL = (f"This channel already follows {MAX_TOPICS} topics, the most I keep for one channel: "
        "`/unfollow` one of them first.")
NONE_FOLLOWED = "This channel follows no topics. Members who can manage it can add one with `/follow topic:`."


def quoted(topic: str) -> str:
    return f"“{escape(topic)}”"


@dataclass
class Posted:
    """What one update's news came to: topics with news, channels posted in, channels skipped."""

    topics: int = 0
    channels: set[int] = field(default_factory=set)
    skipped: set[int] = field(default_factory=set)

    def describe(self) -> str:
        """A line under the /reindex result; empty when no followed topic had news."""
        if not self.topics:
            return ""
        text = (f"News on {_count(self.topics, 'followed topic')}: posted in "
                f"{_count(len(self.channels), 'channel')}")
        if self.skipped:
            text += f"; skipped {len(self.skipped)} where I may not post (see the log)"
        return f"-# {text}."


def _topic_problem(topic: str) -> str | None:
    if not topic:
        return NO_TOPIC
    # Discord's client enforces the option's max_length; this guards the store all the same.
    return TOO_LONG if len(topic) > TOPIC_CHARS else None


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def news_heading(topic: str) -> str:
    return f"**New on {quoted(topic)}:**"


def news_note(news: TopicNews) -> str:
    n = len(news.articles)
    return f"{n} new article{' matches' if n == 1 else 's match'} this topic. Stop these posts with /unfollow."


class Following(commands.Cog):
    def __init__(self, bot: NewsdeskBot):
        self.bot = bot
        self.settings = bot.settings
        self.topics: FollowedTopics = bot.follows
        self._posting = asyncio.Lock()  # one update's news at a time, in the order of the updates
        self._pending: set[asyncio.Task[Posted]] = set()

    async def cog_unload(self) -> None:
        for task in self._pending:
            task.cancel()

    # -- commands ------------------------------------------------------------------------------
    @app_commands.command(description="Post here when new articles on a topic land (members who manage the channel).")
    @app_commands.describe(topic="What to follow, e.g. the Brekke landslide")
    @app_commands.default_permissions(manage_channels=True)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def follow(self, interaction: discord.Interaction,
                     topic: app_commands.Range[str, 1, TOPIC_CHARS]) -> None:
        topic = " ".join(topic.split())
        reply = await self._refusal(interaction) or _topic_problem(topic) or self._cannot_post(interaction)
        if reply is None:
            added, count = await self.bot.in_background(self.topics.add, interaction.channel_id, topic)
            if added == FollowedTopics.ALREADY:
                reply = f"This channel already follows {quoted(topic)}."
            elif added == FollowedTopics.FULL:
                reply = FULL
            else:
                log.info("Channel %s follows %r (user %s)", interaction.channel_id, topic, interaction.user.id)
                reply = (f"I'll post here when new articles on {quoted(topic)} land: a short cited summary, at most "
                         f"once per index update. This channel follows {_count(count, 'topic')}; `/following` "
                         "lists them.")
        await interaction.response.send_message(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(description="Stop posting news on a topic here (members who manage the channel).")
    @app_commands.describe(topic="A topic this channel follows")
    @app_commands.default_permissions(manage_channels=True)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def unfollow(self, interaction: discord.Interaction, topic: str) -> None:
        reply = await self._refusal(interaction)
        if reply is None:
            gone = await self.bot.in_background(self.topics.remove, interaction.channel_id, topic)
            if gone is None:
                reply = f"This channel doesn't follow {quoted(topic)}; `/following` lists what it does."
            else:
                reply = f"I've stopped following {quoted(gone)} here."
                log.info("Channel %s no longer follows %r (user %s)", interaction.channel_id, gone,
                         interaction.user.id)
        await interaction.response.send_message(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @unfollow.autocomplete("topic")
    async def followed_choices(self, interaction: discord.Interaction,
                               current: str) -> list[app_commands.Choice[str]]:
        typed = topic_key(current)
        topics = [t for t in self.topics.of(interaction.channel_id or 0) if typed in topic_key(t)]
        return [app_commands.Choice(name=t, value=t) for t in topics[:25]]

    @app_commands.command(description="The topics whose news I post in this channel.")
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def following(self, interaction: discord.Interaction) -> None:
        topics = self.topics.of(interaction.channel_id or 0)
        text = NONE_FOLLOWED if not topics else "\n".join(
            [f"This channel follows {_count(len(topics), 'topic')}:",
             *(f"- {quoted(t)}" for t in topics)])
        await send_pages(paginate(text),
                         functools.partial(interaction.response.send_message, ephemeral=True),
                         functools.partial(interaction.followup.send, ephemeral=True, wait=True))

    async def _refusal(self, interaction: discord.Interaction) -> str | None:
        parent = _parent_id(interaction.channel) or interaction.channel_id
        if not self.settings.allows_channel(parent):
            allowed = ", ".join(f"<#{c}>" for c in sorted(self.settings.allowed_channels))
            return f"I don't post in this channel. Follow topics in {allowed}."
        if interaction.permissions.manage_channels:
            return None
        roles = getattr(interaction.user, "roles", [])
        if self.settings.admin_roles and any(role.id in self.settings.admin_roles for role in roles):
            return None
        return None if await self.bot.is_owner(interaction.user) else NOT_ALLOWED

    @staticmethod
    def _cannot_post(interaction: discord.Interaction) -> str | None:
        perms = interaction.app_permissions
        thread = isinstance(interaction.channel, discord.Thread)
        if thread and interaction.channel.locked:
            return "This thread is locked, so I couldn't post news in it: follow the topic in its channel."
        if not perms.view_channel or not (perms.send_messages_in_threads if thread else perms.send_messages):
            needed = "Send Messages in Threads" if thread else "Send Messages"
            return f"I may not post in this channel: give me '{needed}' here first, then follow the topic again."
        return None

    # -- news after an update ------------------------------------------------------------------
    def post_later(self, report: UpdateReport) -> None:
        """Post the news of a watch-mode update; called on the event loop, returns at once."""
        task = asyncio.create_task(self.post_news(report))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def post_news(self, report: UpdateReport) -> Posted:
        """Match the update's new and changed articles to every followed topic and post the news.

        Never raises: a topic that cannot be matched or a channel that cannot be posted in is
        logged and the others go on.
        """
        posted = Posted()
        fresh = [*report.added, *report.updated]
        if report.rebuilt or not fresh:
            return posted
        async with self._posting:
            for followers in self.topics.followers().values():
                topic = followers[0][1]
                try:
                    news = await self.bot.in_background(self.bot.desk.topic_news, topic, fresh,
                                                        pool=self.bot.maintenance)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.bot.report_error(f"matching new articles to the followed topic {topic!r}")
                    continue
                if news is None or not news.summary.citations:
                    continue
                posted.topics += 1
                log.info("News on %r: %s", topic, ", ".join(a.doc_id for a in news.articles))
                for channel_id, wording in followers:
                    try:
                        done = await self._post(channel_id, wording, news)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        self.bot.report_error(f"posting news on {wording!r} in channel {channel_id}")
                        done = False
                    (posted.channels if done else posted.skipped).add(channel_id)
        return posted

    async def _post(self, channel_id: int, topic: str, news: TopicNews) -> bool:
        channel: Any = self.bot.get_channel(channel_id)
        try:
            if channel is None:
                channel = await self.bot.fetch_channel(channel_id)
        except discord.NotFound:
            log.info("Channel %s is gone: forgetting the topics it followed", channel_id)
            await self.bot.in_background(self.topics.forget, channel_id)
            return False
        except discord.HTTPException as err:
            log.warning("Not posting news on %r in channel %s: I cannot see it (%s)", topic, channel_id, err)
            return False
        thread = isinstance(channel, discord.Thread)
        perms = permissions(channel)
        if perms is not None and not (perms.view_channel and (
                perms.send_messages_in_threads if thread else perms.send_messages)):
            log.warning("Not posting news on %r in channel %s: the bot lacks 'Send Messages%s' there", topic,
                        channel_id, " in Threads" if thread else "")
            return False
        if thread and channel.locked:
            log.warning("Not posting news on %r in thread %s: it is locked", topic, channel_id)
            return False
        pages = render_answer(news.summary, heading=news_heading(topic), notes=[news_note(news)],
                              embed_links=can_embed(channel))
        try:
            await send_pages(pages, channel.send, channel.send)
        except discord.HTTPException as err:
            log.warning("Could not post news on %r in channel %s: %s", topic, channel_id, err)
            return False
        return True
