"""The Discord client: an AutoShardedBot whose cogs turn questions into `desk.ask` calls.

Questions arrive as `/ask`, the "Ask newsdesk" message menu, a mention, a message in a thread
the bot opened (a follow-up, answered with the thread's history), or any new message or forum
post in a channel an admin set up that way. Answers are worked out on a fixed pool of worker
threads behind a bounded line (`work.AnswerQueue`), so the event loop keeps serving everyone
else; the index updates and the feedback log have threads of their own. After each update
(watch mode or /reindex) the channels' followed topics get posts on what is new (`follow.py`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from newsdesk import Desk, UpdateReport, Watcher
from newsdesk_bot.channels import ChannelSetups
from newsdesk_bot.conversations import Conversations
from newsdesk_bot.feedback import FeedbackLog
from newsdesk_bot.format import apology
from newsdesk_bot.health import HealthServer
from newsdesk_bot.metrics import Metrics
from newsdesk_bot.ratelimit import RateLimiter
from newsdesk_bot.replies import NO_MENTIONS
from newsdesk_bot.settings import PORTAL, BotSettings
from newsdesk_bot.sync import sync_commands
from newsdesk_bot.topics import FollowedTopics
from newsdesk_bot.votes import VoteButton
from newsdesk_bot.work import AnswerQueue

if TYPE_CHECKING:
    from newsdesk_bot.follow import Following

log = logging.getLogger("newsdesk.bot")
T = TypeVar("T")

INTENT_OFF = (
    "The Message Content intent is off, so follow-up questions in threads must mention the bot "
    "(mentions and slash commands work as usual). To allow follow-ups without a mention, enable "
    f"'Message Content Intent' under Bot -> Privileged Gateway Intents at {PORTAL} and set "
    "message_content = true."
)
SOURCES_TTL = 60.0  # seconds the list of sources offered by autocomplete is reused
IDENTIFY_WINDOW = 5.0  # Discord lets max_concurrency shards identify per this many seconds


def state_file(settings: BotSettings, what: str) -> Path:
    """A small state file kept beside the feedback log, e.g. feedback.jsonl.channels.json."""
    return settings.feedback_log.with_name(f"{settings.feedback_log.name}.{what}.json")


class NewsdeskBot(commands.AutoShardedBot):
    def __init__(self, settings: BotSettings, *, desk: Desk | None = None,
                 clock: Callable[[], float] = time.time, **options: Any):
        # The bot never joins voice: discord.py's warnings about missing voice libraries are noise.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.dm_messages = settings.answer_in_dms
        intents.message_content = settings.message_content
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, allowed_mentions=NO_MENTIONS,
                         help_command=None, shard_count=settings.shard_count or None, **options)
        self.settings = settings
        self.desk = desk
        self.clock = clock  # epoch seconds; interaction deadlines are measured on it
        self.feedback = FeedbackLog(settings.feedback_log)
        self.setups = ChannelSetups(state_file(settings, "channels"))
        self.follows = FollowedTopics(state_file(settings, "follows"))
        self.following: Following | None = None  # the cog, once set up
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_window)
        self.queue = AnswerQueue(settings.workers, settings.max_queue, clock)
        self.conversations = Conversations(self, settings.max_conversations)
        # Updates get their own thread, so questions keep being answered during one; the feedback
        # log gets another, so a vote never waits for an answer.
        self.maintenance = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsdesk-reindex")
        self.io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsdesk-io")
        self.metrics = Metrics(lambda: self.queue.waiting, lambda: self.queue.running)
        self.health = HealthServer(self, settings.health_host, settings.health_port) if settings.health_port else None
        self.watcher: Watcher | None = None
        self._sources: tuple[float, list[str]] = (-SOURCES_TTL, [])
        self._max_concurrency: int | None = None
        self._identified: dict[int, float] = {}  # rate-limit bucket -> when a shard last identified

    async def setup_hook(self) -> None:
        from newsdesk_bot.admin import Admin
        from newsdesk_bot.ask import Questions
        from newsdesk_bot.follow import Following

        if self.desk is None:
            log.info("Opening the index in %s (loading the model takes a few seconds)", self.settings.index_dir)
            self.desk = await asyncio.to_thread(Desk.open, self.settings.index, corpus=self.settings.corpus,
                                                llm=self.settings.llm, milvus_token=self.settings.milvus_token)
        self.add_dynamic_items(VoteButton)
        await self.add_cog(Questions(self))
        await self.add_cog(Admin(self))
        self.following = Following(self)
        await self.add_cog(self.following)
        self.tree.error(self.on_app_command_error)
        if self.settings.sync_commands:
            await sync_commands(self, state_file(self.settings, "commands"))
        if not self.intents.message_content:
            log.warning(INTENT_OFF)
        if self.settings.watch:
            log.info("Watching %s: new articles are indexed as they land", self.settings.corpus_dir)
            self.watcher = Watcher(self.desk, on_update=functools.partial(
                self._watched, asyncio.get_running_loop())).start()
        if self.health is not None:
            await self.health.start()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Identify as many shards at once as Discord allows (max_concurrency per 5 s) instead of one per 5 s.

        Shard i is in bucket i % max_concurrency; each bucket may identify once per IDENTIFY_WINDOW.
        """
        if self._max_concurrency is None:
            self._max_concurrency = 1
            if (self.shard_count or 1) > 1:
                try:
                    self._max_concurrency = max(1, (await self.fetch_session_start_limits()).max_concurrency)
                except (discord.HTTPException, discord.GatewayNotFound) as err:
                    log.warning("Could not read Discord's session start limits (%s); identifying one shard "
                                "per %.0f s", err, IDENTIFY_WINDOW)
        loop = asyncio.get_running_loop()
        bucket = (shard_id or 0) % self._max_concurrency
        last = self._identified.get(bucket)
        if last is not None and (wait := last + IDENTIFY_WINDOW - loop.time()) > 0:
            await asyncio.sleep(wait)
        self._identified[bucket] = loop.time()

    def _watched(self, loop: asyncio.AbstractEventLoop, report: UpdateReport) -> None:
        """The watcher's update is done (on its thread): post the followed topics' news from the loop."""
        if self.following is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.following.post_later, report)

    async def on_ready(self) -> None:
        log.info("Connected as %s (id %s) to %d server(s) on %d shard(s)", self.user, self.user and self.user.id,
                 len(self.guilds), self.shard_count or 1)

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: the Questions cog handles messages."""

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.CommandNotFound):  # e.g. a command an older version registered
            reply = "I don't have that command any more; Discord should stop offering it shortly."
        else:
            reply = apology(self.report_error(
                f"running /{interaction.command.name if interaction.command else '?'}", exc=error))
        try:
            if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
                await interaction.edit_original_response(content=reply, embeds=[], view=None,
                                                         allowed_mentions=NO_MENTIONS)
            elif interaction.response.is_done():
                await interaction.followup.send(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)
            else:
                await interaction.response.send_message(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException:
            pass

    async def in_background(self, fn: Callable[..., T], *args: Any, pool: ThreadPoolExecutor | None = None,
                            **kwargs: Any) -> T:
        """Run blocking I/O (the feedback log by default) off the event loop, never behind an answer."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool or self.io, functools.partial(fn, *args, **kwargs))

    async def sources(self) -> list[str]:
        """The sources in the index, for autocomplete: read at most once a minute, never waiting long."""
        at, names = self._sources
        if time.monotonic() - at > SOURCES_TTL:
            try:
                names = sorted(await asyncio.wait_for(asyncio.to_thread(self.desk.sources), 2.0))
                self._sources = (time.monotonic(), names)
            except Exception as err:
                log.warning("Could not list the sources for autocomplete: %s", err)
        return names

    def report_error(self, doing: str, exc: BaseException | None = None) -> str:
        """Log the full trace under a short id the user is shown."""
        error_id = secrets.token_hex(4)
        log.error("error %s while %s", error_id, doing, exc_info=exc or True)
        self.metrics.errors.inc()
        return error_id

    async def close(self) -> None:
        if self.watcher is not None:
            await asyncio.to_thread(self.watcher.stop)
        if self.health is not None:
            await self.health.stop()
        await super().close()
        self.queue.shutdown()
        self.maintenance.shutdown(wait=False, cancel_futures=True)
        self.io.shutdown(wait=False, cancel_futures=True)
