"""The Discord client: a `commands.Bot` with one cog that turns questions into `desk.ask` calls.

Questions arrive three ways: `/ask`, a message that mentions the bot, and a message in a thread
the bot opened (a follow-up, answered with the thread's history). Retrieval runs on a thread
pool, so the event loop keeps serving everyone else while a question is answered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from newsdesk_bot.feedback import FeedbackLog, new_answer_id
from newsdesk_bot.format import (FOLLOW_UP_HINT, MENTION_HINT, USAGE, apology, escape, rate_limited, render_answer,
                        render_partial, render_stats, render_update, thread_name, trimmed_note)
from newsdesk_bot.ratelimit import RateLimiter
from newsdesk_bot.settings import PORTAL, BotSettings
from newsdesk_bot.split import Page
from newsdesk import Answer, ChatSession, Desk, IndexBusy, Watcher

log = logging.getLogger("newsdesk.bot")
T = TypeVar("T")

NO_MENTIONS = discord.AllowedMentions.none()
MAX_SESSIONS = 2000
# Seconds between two edits of a reply while a language model streams it (Discord rate-limits edits).
EDIT_INTERVAL = 1.0
INTENT_OFF = (
    "The Message Content intent is off, so follow-up questions in threads must mention the bot "
    "(mentions and slash commands work as usual). To allow follow-ups without a mention, enable "
    f"'Message Content Intent' under Bot -> Privileged Gateway Intents at {PORTAL} and set "
    "message_content = true."
)


# -- feedback buttons --------------------------------------------------------------------------
VOTE_ID = re.compile(r"newsdesk:vote:(?P<vote>up|down):(?P<answer_id>[0-9a-f]{16})")


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=VOTE_ID):
    """👍 or 👎 under an answer; the custom_id carries the vote and the answer id, so it outlives restarts."""

    def __init__(self, vote: str, answer_id: str):
        super().__init__(discord.ui.Button(
            style=discord.ButtonStyle.secondary, emoji="👍" if vote == "up" else "👎",
            custom_id=f"newsdesk:vote:{vote}:{answer_id}",
        ))
        self.vote = vote
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> VoteButton:
        return cls(match["vote"], match["answer_id"])

    async def callback(self, interaction: discord.Interaction[NewsdeskBot]) -> None:
        bot = interaction.client
        try:
            await bot.off_loop(bot.feedback.record_vote, self.answer_id, self.vote, interaction.user.id)
        except Exception:
            reply = apology(bot.report_error(f"recording a vote on answer {self.answer_id}"))
        else:
            reply = ("Thanks! Glad it helped." if self.vote == "up"
                     else "Thanks for telling me: I've noted that this answer missed.")
        await interaction.response.send_message(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)


def feedback_view(answer_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton("up", answer_id))
    view.add_item(VoteButton("down", answer_id))
    return view


def answer_ids(message: discord.Message) -> list[str]:
    """The ids of the answers whose vote buttons are on this message."""
    ids: list[str] = []
    for row in message.components:
        for child in getattr(row, "children", []):
            m = VOTE_ID.fullmatch(getattr(child, "custom_id", None) or "")
            if m and m["answer_id"] not in ids:
                ids.append(m["answer_id"])
    return ids


# -- the bot -----------------------------------------------------------------------------------
class NewsdeskBot(commands.Bot):
    def __init__(self, settings: BotSettings, *, desk: Desk | None = None, **options: Any):
        # The bot never joins voice: discord.py's warnings about missing voice libraries are noise.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.dm_messages = settings.answer_in_dms
        intents.message_content = settings.message_content
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, allowed_mentions=NO_MENTIONS,
                         help_command=None, **options)
        self.settings = settings
        self.desk = desk
        self.feedback = FeedbackLog(settings.feedback_log)
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_window)
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="newsdesk-ask")
        # Updates get their own thread, so questions keep being answered during one.
        self.maintenance = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsdesk-reindex")
        self.watcher: Watcher | None = None

    async def setup_hook(self) -> None:
        if self.desk is None:
            log.info("Opening the index in %s (loading the model takes a few seconds)", self.settings.index_dir)
            self.desk = await asyncio.to_thread(Desk.open, self.settings.index_dir,
                                                corpus_dir=self.settings.corpus_dir, llm=self.settings.llm)
        self.add_dynamic_items(VoteButton)
        await self.add_cog(Newsdesk(self))
        self.tree.error(self.on_app_command_error)
        if self.settings.sync_commands:
            await self.sync_commands()
        if not self.intents.message_content:
            log.warning(INTENT_OFF)
        if self.settings.watch:
            log.info("Watching %s: new articles are indexed as they land", self.settings.corpus_dir)
            self.watcher = Watcher(self.desk).start()

    async def sync_commands(self) -> None:
        try:
            if self.settings.command_guilds:
                for guild_id in sorted(self.settings.command_guilds):
                    guild = discord.Object(id=guild_id)
                    self.tree.copy_global_to(guild=guild)
                    await self.tree.sync(guild=guild)
            else:
                await self.tree.sync()
        except discord.Forbidden:
            log.error("Discord refused to register the slash commands: invite the bot with the "
                      "'applications.commands' scope (see docs/discord.md); mentions still work")
        except discord.HTTPException as err:
            log.error("Could not register the slash commands (%s); mentions still work", err)

    async def on_ready(self) -> None:
        log.info("Connected as %s (id %s) to %d server(s)", self.user, self.user and self.user.id, len(self.guilds))

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: the cog handles questions."""

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.CommandNotFound):  # e.g. a command an older version registered
            reply = "I don't have that command any more; Discord should stop offering it shortly."
        else:
            reply = apology(self.report_error(
                f"running /{interaction.command.name if interaction.command else '?'}", exc=error))
        try:
            if interaction.response.is_done():
                await interaction.followup.send(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)
            else:
                await interaction.response.send_message(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException:
            pass

    async def off_loop(self, fn: Callable[..., T], *args: Any, pool: ThreadPoolExecutor | None = None,
                       **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool or self.pool, functools.partial(fn, *args, **kwargs))

    def report_error(self, doing: str, exc: BaseException | None = None) -> str:
        """Log the full trace under a short id the user is shown."""
        error_id = secrets.token_hex(4)
        log.error("error %s while %s", error_id, doing, exc_info=exc or True)
        return error_id

    async def close(self) -> None:
        if self.watcher is not None:
            await asyncio.to_thread(self.watcher.stop)
        await super().close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.maintenance.shutdown(wait=False, cancel_futures=True)


Sender = Callable[..., Awaitable[Any]]


class LiveAnswer:
    """Shows a generated answer while it streams, by editing the reply at most once per EDIT_INTERVAL.

    The desk calls `push` from its worker thread with the sentences checked so far; unchecked
    text is never shown. `stop` waits for an edit under way, so the final answer lands last.
    """

    def __init__(self, edit: Sender, question: str | None = None):
        self.edit = edit
        self.question = question
        self.loop = asyncio.get_running_loop()
        self.latest: Answer | None = None
        self.changed = asyncio.Event()
        self.stopping = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    def push(self, answer: Answer) -> None:
        self.loop.call_soon_threadsafe(self._set, answer)

    def _set(self, answer: Answer) -> None:
        self.latest = answer
        self.changed.set()

    async def _run(self) -> None:
        while True:
            await self.changed.wait()
            if self.stopping.is_set():
                return
            self.changed.clear()
            try:
                await self.edit(content=render_partial(self.latest, question=self.question),
                                allowed_mentions=NO_MENTIONS)
            except discord.HTTPException as err:
                log.warning("Could not show the answer so far: %s", err)
            try:
                await asyncio.wait_for(self.stopping.wait(), EDIT_INTERVAL)
                return
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self.stopping.set()
        self.changed.set()
        await asyncio.gather(self.task, return_exceptions=True)


async def send_pages(pages: list[Page], first: Sender, rest: Sender,
                     view: discord.ui.View | None = None) -> list[discord.Message]:
    """Send each page as one message; the buttons go under the last one."""
    sent = []
    for i, page in enumerate(pages):
        kwargs: dict[str, Any] = {"allowed_mentions": NO_MENTIONS,
                                  "embeds": [discord.Embed.from_dict(e) for e in page.embeds]}
        if page.content:
            kwargs["content"] = page.content
        if view is not None and i == len(pages) - 1:
            kwargs["view"] = view
        sent.append(await (first if i == 0 else rest)(**kwargs))
    return sent


def strip_mentions(text: str, user_id: int) -> str:
    return " ".join(re.sub(rf"<@!?{user_id}>", " ", text).split())


def can_embed(channel: Any) -> bool:
    guild = getattr(channel, "guild", None)
    if guild is None or guild.me is None or not hasattr(channel, "permissions_for"):
        return True
    return channel.permissions_for(guild.me).embed_links


class Newsdesk(commands.Cog):
    """Questions, follow-ups, /stats and /reindex."""

    def __init__(self, bot: NewsdeskBot):
        self.bot = bot
        self.settings = bot.settings
        self.sessions: dict[int, ChatSession] = {}  # conversation (thread or DM channel) -> memory
        self.locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)  # per conversation id
        self.turns: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)  # per session: one turn at a time
        self.hinted: set[int] = set()  # threads already told that mentions are needed
        self.warned: dict[int, float] = {}  # user -> when the last slow-down reply was sent
        self.reindexing = False

    # -- slash commands ----------------------------------------------------------------------
    @app_commands.command(description="Ask a question about the news articles.")
    @app_commands.describe(question="What you want to know",
                           since="Only articles published on or after this date (YYYY-MM-DD)",
                           until="Only articles published on or before this date (YYYY-MM-DD)",
                           source="Only articles from this source")
    async def ask(self, interaction: discord.Interaction, question: str, since: str | None = None,
                  until: str | None = None, source: str | None = None) -> None:
        # The checks below need no I/O; everything slow happens after the defer.
        refusal = self._refusal(interaction)
        question = " ".join(question.split())
        if refusal is None and not question:
            refusal = USAGE
        if refusal is None:
            refusal = _bad_dates(since, until)
        if refusal is None and (wait := self.bot.limiter.acquire(interaction.user.id)):
            refusal = rate_limited(wait)
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.defer(thinking=True)
        channel = interaction.channel
        sent: list[discord.Message] = []
        try:
            question, notes = self._trim(question)
            session = await self._session_for(channel) if self._is_conversation(channel) else None
            fresh = session is None and isinstance(channel, discord.TextChannel)
            if fresh:
                session = self.bot.desk.chat()
            live = LiveAnswer(interaction.edit_original_response, question) if self.bot.desk.llm else None
            answer, answer_id = await self._answer(question, session, live=live, since=since, until=until,
                                                   source=source)
            pages = render_answer(answer, question=question, notes=notes,
                                  embed_links=interaction.app_permissions.embed_links)
            sent = await send_pages(pages, interaction.edit_original_response,
                                    functools.partial(interaction.followup.send, wait=True),
                                    feedback_view(answer_id))
            if fresh:
                await self._open_thread(sent[0], question, session)
        except Exception:
            error_id = self.bot.report_error(f"answering /ask from user {interaction.user.id}")
            if sent:  # the answer is out: do not replace it, tell the asker privately
                await _quietly(interaction.followup.send(apology(error_id), ephemeral=True,
                                                         allowed_mentions=NO_MENTIONS))
            else:
                await _quietly(interaction.edit_original_response(content=apology(error_id), embeds=[], view=None,
                                                                  allowed_mentions=NO_MENTIONS))

    @app_commands.command(description="What the index holds: documents, chunks, model, last update.")
    async def stats(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            info = await self.bot.off_loop(self.bot.desk.stats)
            await send_pages(render_stats(info), interaction.edit_original_response,
                             functools.partial(interaction.followup.send, wait=True, ephemeral=True))
        except Exception:
            error_id = self.bot.report_error("answering /stats")
            await _quietly(interaction.edit_original_response(content=apology(error_id),
                                                              allowed_mentions=NO_MENTIONS))

    @app_commands.command(description="Update the index from the corpus folder (bot admins only).")
    async def reindex(self, interaction: discord.Interaction) -> None:
        if not self._is_admin(interaction):
            await interaction.response.send_message(
                "Sorry, only the bot's admins can update the index.", ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        if self.reindexing:
            await interaction.response.send_message(
                "An update is already running; I'll have the new articles when it finishes.", ephemeral=True,
                allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        self.reindexing = True
        try:
            report = await self.bot.off_loop(self.bot.desk.update, lock_timeout=0, pool=self.bot.maintenance)
            reply = render_update(report)
            log.info("Index updated by /reindex from user %s: %s", interaction.user.id, reply)
        except IndexBusy as err:
            reply = escape(str(err))
        except Exception:
            reply = apology(self.bot.report_error("running /reindex"))
        finally:
            self.reindexing = False
        await _quietly(interaction.edit_original_response(content=reply, allowed_mentions=NO_MENTIONS))

    # -- messages ------------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        me = self.bot.user
        if me is None:
            return
        mentioned = any(u.id == me.id for u in message.mentions)
        channel: Any = message.channel
        try:
            if message.guild is None:
                if self.settings.answer_in_dms:
                    await self._on_question(message, conversation=True)
                return
            if isinstance(channel, discord.PartialMessageable):  # a thread the cache does not know (yet)
                try:
                    channel = await self.bot.fetch_channel(channel.id)
                except discord.HTTPException:
                    return
            if isinstance(channel, discord.Thread) and channel.owner_id == me.id:
                if not self.settings.allows_channel(channel.parent_id):
                    return
                if not message.content and not mentioned and not self.bot.intents.message_content:
                    await self._hint_mention(channel)
                    return
                await self._on_question(message, conversation=True, channel=channel)
            elif mentioned:
                parent = channel.parent_id if isinstance(channel, discord.Thread) else channel.id
                if self.settings.allows_channel(parent):
                    await self._on_question(message, conversation=False, channel=channel)
        except Exception:
            error_id = self.bot.report_error(f"handling message {message.id}")
            await _quietly(message.reply(apology(error_id), mention_author=False, allowed_mentions=NO_MENTIONS))

    async def _on_question(self, message: discord.Message, *, conversation: bool, channel: Any = None) -> None:
        channel = channel or message.channel
        question = strip_mentions(message.content, self.bot.user.id)
        reply = functools.partial(message.reply, mention_author=False)
        if not question:
            if conversation and isinstance(channel, discord.Thread):
                return  # a bare mention in a follow-up thread: nothing to answer
            await reply(USAGE, allowed_mentions=NO_MENTIONS)
            return
        wait = self.bot.limiter.acquire(message.author.id)
        if wait:
            now = asyncio.get_running_loop().time()
            if now - self.warned.get(message.author.id, -1e9) > self.settings.rate_window:
                self.warned[message.author.id] = now  # one reminder per window, not one per message
                await reply(rate_limited(wait), allowed_mentions=NO_MENTIONS)
            return
        question, notes = self._trim(question)
        fresh = not conversation and isinstance(channel, discord.TextChannel)
        async with channel.typing():
            if conversation:
                session = await self._session_for(channel)
            else:
                session = self.bot.desk.chat() if fresh else None
            answer, answer_id = await self._answer(question, session)
        pages = render_answer(answer, notes=notes, embed_links=can_embed(channel))
        sent = await send_pages(pages, reply, channel.send, feedback_view(answer_id))
        if fresh:
            await self._open_thread(sent[0], question, session)

    async def _hint_mention(self, thread: discord.Thread) -> None:
        if thread.id in self.hinted:
            return
        self.hinted.add(thread.id)
        log.warning("A message in thread %s arrived without its text. %s", thread.id, INTENT_OFF)
        await thread.send(MENTION_HINT.format(mention=self.bot.user.mention), allowed_mentions=NO_MENTIONS)

    # -- answering -----------------------------------------------------------------------------
    async def _answer(self, question: str, session: ChatSession | None, live: LiveAnswer | None = None,
                      **options: Any) -> tuple[Answer, str]:
        options = {k: v for k, v in options.items() if v}
        if live is not None:
            options["on_partial"] = live.push
        try:
            if session is None:
                answer = await self.bot.off_loop(self.bot.desk.ask, question, k=self.settings.k, **options)
            else:
                async with self.turns[id(session)]:
                    answer = await self.bot.off_loop(session.ask, question, k=self.settings.k, **options)
        finally:
            if live is not None:
                await live.stop()
        answer_id = new_answer_id()
        await self.bot.off_loop(self.bot.feedback.record_answer, answer_id, answer)
        return answer, answer_id

    def _is_conversation(self, channel: Any) -> bool:
        me = self.bot.user
        return isinstance(channel, discord.DMChannel) or (
            isinstance(channel, discord.Thread) and me is not None and channel.owner_id == me.id)

    async def _session_for(self, channel: Any) -> ChatSession:
        async with self.locks[channel.id]:
            if channel.id not in self.sessions:
                self._remember(channel.id, ChatSession.restore(self.bot.desk, await self._asked_in(channel)))
            return self.sessions[channel.id]

    def _remember(self, conversation_id: int, session: ChatSession) -> None:
        self.sessions[conversation_id] = session
        while len(self.sessions) > MAX_SESSIONS:  # the oldest can be restored from Discord if needed
            oldest = next(iter(self.sessions))
            self.turns.pop(id(self.sessions.pop(oldest)), None)
            self.locks.pop(oldest, None)

    async def _asked_in(self, channel: Any) -> list[str]:
        """The questions answered so far in a thread or DM, from the answer ids on the bot's own messages.

        This is how a thread keeps its memory across restarts: the bot's messages are always
        readable (no Message Content intent needed) and the feedback log has each answer's question.
        """
        me = self.bot.user
        ids: list[str] = []
        if isinstance(channel, discord.Thread):
            try:  # a thread opened from an answer has that answer as its starter message
                parent = channel.parent or await self.bot.fetch_channel(channel.parent_id)
                starter = await parent.fetch_message(channel.id)
                if starter.author.id == me.id:
                    ids += answer_ids(starter)
            except discord.HTTPException:
                pass
        later = [m async for m in channel.history(limit=100) if m.author.id == me.id]
        for m in reversed(later):
            ids += [i for i in answer_ids(m) if i not in ids]
        questions = []
        for answer_id in ids:
            record = await self.bot.off_loop(self.bot.feedback.answer, answer_id)
            if record and record.get("question"):
                questions.append(record["question"])
        log.info("Restored %d earlier question(s) in conversation %s", len(questions), channel.id)
        return questions

    async def _open_thread(self, message: discord.Message, question: str, session: ChatSession | None) -> None:
        try:
            thread = await message.create_thread(name=thread_name(question), auto_archive_duration=1440)
        except discord.HTTPException as err:
            log.warning("Could not open a follow-up thread on message %s (%s): give the bot the "
                        "'Create Public Threads' permission in that channel", message.id, err)
            return
        if session is not None:
            self._remember(thread.id, session)
        hint = FOLLOW_UP_HINT if self.bot.intents.message_content else MENTION_HINT.format(
            mention=self.bot.user.mention)
        try:
            await thread.send(hint, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as err:
            log.warning("Could not post in the new thread %s (%s): give the bot the 'Send Messages in "
                        "Threads' permission", thread.id, err)

    # -- checks --------------------------------------------------------------------------------
    def _refusal(self, interaction: discord.Interaction) -> str | None:
        channel = interaction.channel
        if interaction.guild_id is None:
            return None if self.settings.answer_in_dms else "I only answer questions in servers, not in DMs."
        parent = channel.parent_id if isinstance(channel, discord.Thread) else interaction.channel_id
        if not self.settings.allows_channel(parent):
            allowed = ", ".join(f"<#{c}>" for c in sorted(self.settings.allowed_channels))
            return f"I don't answer questions in this channel. Ask me in {allowed}."
        return None

    def _is_admin(self, interaction: discord.Interaction) -> bool:
        user = interaction.user
        if not isinstance(user, discord.Member):
            return False
        if self.settings.admin_roles:
            return any(role.id in self.settings.admin_roles for role in user.roles)
        return interaction.permissions.administrator

    def _trim(self, question: str) -> tuple[str, list[str]]:
        limit = self.settings.max_question_chars
        if len(question) <= limit:
            return question, []
        cut = question[:limit]
        if " " in cut[limit // 2:]:
            cut = cut.rsplit(" ", 1)[0]
        return cut, [trimmed_note(limit)]


def _bad_dates(*values: str | None) -> str | None:
    for value in values:
        if value:
            try:
                date.fromisoformat(value.strip())
            except ValueError:
                return f"Dates look like 2026-01-31; I can't read {escape(value)!s}."
    return None


async def _quietly(coro: Awaitable[Any]) -> None:
    """Send an apology; if even that fails, the error is already in the log."""
    try:
        await coro
    except discord.HTTPException as err:
        log.warning("Could not tell the user about an error: %s", err)
