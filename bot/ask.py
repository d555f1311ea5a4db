"""Questions: /ask, the "Ask newsdesk" message menu, mentions, thread follow-ups, DMs and set-up channels.

Every way of asking ends in `Questions.respond`: trim the question, wait for a worker (telling
the asker if they are in line, giving up while the interaction can still say so), answer with
the conversation's memory, post the pages, and open a follow-up thread on a fresh answer.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from newsdesk import Answer, QueryError, UsageError
from newsdesk_bot.channels import EVERY_MESSAGE, OFF
from newsdesk_bot.client import INTENT_OFF
from newsdesk_bot.conversations import Conversation
from newsdesk_bot.feedback import new_answer_id
from newsdesk_bot.format import (FOLLOW_UP_HINT, MENTION_HINT, USAGE, apology, cannot_search, escape, queued_note,
                                 rate_limited, render_answer, thread_name, trimmed_note)
from newsdesk_bot.memory import Recent
from newsdesk_bot.replies import (NO_MENTIONS, LiveAnswer, Sender, can_embed, permissions, quietly, reply_sender,
                                  send_pages)
from newsdesk_bot.votes import feedback_view
from newsdesk_bot.work import TOKEN_MARGIN, QueueFull, TooLate, token_expires, wait_until

if TYPE_CHECKING:
    from newsdesk_bot.client import NewsdeskBot

log = logging.getLogger("newsdesk.bot")

BUSY = "I'm answering as many questions as I can right now: please ask again in a minute."
TOO_LATE = "Sorry, I was too busy to answer this in time: please ask again."
NO_TEXT = "That message has no text I can answer: pick a message with a question in it."
# Seconds an extractive answer may take once a worker has it (a generated one: the model's deadline).
EXTRACTIVE_BUDGET = 10.0


@dataclass
class Asked:
    """One question on its way to an answer, and how to send that answer."""

    question: str
    via: str  # slash, menu, mention, thread, dm, channel, forum
    user_id: int
    channel: Any
    first: Sender  # sends (or edits in) the first page
    rest: Sender  # sends the others
    show_question: bool = False  # a command's reply does not show what was asked; a reply to a message does
    options: dict[str, Any] = field(default_factory=dict)  # since, until, source
    conversation: Conversation | None = None
    open_thread: bool = False  # a fresh answer in a text channel: follow-ups go in a thread on it
    expires: float | None = None  # when the interaction token expires (None for messages)
    notice: Sender | None = None  # shows "queued"; for a message, replying to it (the answer then edits that)
    edits_first: bool = False  # `first` edits an existing message (an interaction's, a notice)


def strip_mentions(text: str, user_id: int) -> str:
    return " ".join(re.sub(rf"<@!?{user_id}>", " ", text).split())


class Questions(commands.Cog):
    def __init__(self, bot: NewsdeskBot):
        self.bot = bot
        self.settings = bot.settings
        self.hinted: Recent[int, bool] = Recent(self.settings.max_conversations)  # threads told to mention
        self.warned: Recent[int, float] = Recent(self.settings.max_conversations)  # user -> last slow-down reply
        self.ask_menu = app_commands.ContextMenu(name="Ask newsdesk", callback=self.ask_message)
        contexts = app_commands.AppCommandContext(guild=True, dm_channel=self.settings.answer_in_dms)
        for command in (self.ask, self.ask_menu):
            command.allowed_contexts = contexts  # hidden in DMs unless the host answers them

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.ask_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.ask_menu.name, type=self.ask_menu.type)

    # -- slash command and message menu --------------------------------------------------------
    @app_commands.command(description="Ask a question about the news articles.")
    @app_commands.describe(question="What you want to know",
                           since="Only articles published on or after this date (YYYY-MM-DD)",
                           until="Only articles published on or before this date (YYYY-MM-DD)",
                           source="Only articles from this source")
    async def ask(self, interaction: discord.Interaction, question: str, since: str | None = None,
                  until: str | None = None, source: str | None = None) -> None:
        question = " ".join(question.split())
        refusal = self._refusal(interaction) or (None if question else USAGE) or _bad_dates(since, until)
        await self._from_interaction(interaction, question, "slash", refusal,
                                     {"since": since, "until": until, "source": source})

    @ask.autocomplete("source")
    async def source_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await source_choices(self.bot, current)

    async def ask_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Right-click a message -> Apps -> Ask newsdesk: a cited answer to what it says."""
        question = strip_mentions(message.content, self.bot.user.id)
        refusal = self._refusal(interaction) or (None if question else NO_TEXT)
        await self._from_interaction(interaction, question, "menu", refusal, {})

    async def _from_interaction(self, interaction: discord.Interaction, question: str, via: str,
                                refusal: str | None, options: dict[str, Any]) -> None:
        # Everything before the defer is free of I/O: Discord wants a first response within 3 s.
        if refusal is None and (wait := self.bot.limiter.acquire(interaction.user.id)):
            refusal = rate_limited(wait)
        if refusal is None:
            try:
                self.bot.queue.admit()
            except QueueFull:
                self.bot.metrics.refused.inc()
                refusal = BUSY
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.defer(thinking=True)
        channel = interaction.channel
        conversation = await self.bot.conversations.get(channel) if self._is_conversation(channel) else None
        setup = self.bot.setups.get(_parent_id(channel)) if interaction.guild_id else None
        explicit = {k: v.strip() for k, v in options.items() if v and v.strip()}
        scope = setup.scope() if setup else {}
        if explicit.keys() & {"since", "until"}:
            scope.pop("since", None)  # /ask's own dates replace the channel's window, whichever end they give
        await self.respond(Asked(
            question, via, interaction.user.id, channel, first=interaction.edit_original_response,
            rest=functools.partial(interaction.followup.send, wait=True), show_question=True,
            options={**scope, **explicit}, conversation=conversation,
            open_thread=conversation is None and isinstance(channel, discord.TextChannel),
            expires=token_expires(interaction), notice=interaction.edit_original_response, edits_first=True,
        ), embed_links=interaction.app_permissions.embed_links)

    # -- messages ------------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        me = self.bot.user
        if me is None:
            return
        try:
            await self._route(message, me)
        except Exception:
            error_id = self.bot.report_error(f"handling message {message.id}")
            await quietly(reply_sender(message)(content=apology(error_id), allowed_mentions=NO_MENTIONS))

    async def _route(self, message: discord.Message, me: discord.ClientUser) -> None:
        mentioned = any(u.id == me.id for u in message.mentions)
        channel: Any = message.channel
        if message.guild is None:
            if self.settings.answer_in_dms:
                await self._on_question(message, channel, "dm", conversation=True)
            return
        if isinstance(channel, discord.PartialMessageable):  # a thread the cache does not know (yet)
            try:
                channel = await self.bot.fetch_channel(channel.id)
            except discord.HTTPException:
                return
        parent_id = _parent_id(channel)
        if not self.settings.allows_channel(parent_id):
            return
        setup = self.bot.setups.get(parent_id)
        if setup.mode == OFF:
            return
        thread = channel if isinstance(channel, discord.Thread) else None
        if thread is not None and thread.locked:
            return  # only moderators can post in a locked thread; the bot could not reply there
        perms = permissions(channel)
        if perms is not None and not (perms.send_messages_in_threads if thread else perms.send_messages):
            log.warning("Not answering in channel %s: the bot lacks 'Send Messages%s' there", channel.id,
                        " in Threads" if thread else "")
            return
        if thread is not None and thread.owner_id == me.id:
            if not message.content and not mentioned and not self.bot.intents.message_content:
                await self._hint_mention(thread)
                return
            await self._on_question(message, channel, "thread", conversation=True)
        elif thread is not None and isinstance(thread.parent, discord.ForumChannel):
            if message.id == thread.id and setup.mode == EVERY_MESSAGE:  # a new post: its title and text
                text = f"{thread.name}. {strip_mentions(message.content, me.id)}".strip(" .")
                await self._on_question(message, channel, "forum", conversation=True, question=text)
            elif mentioned:
                await self._on_question(message, channel, "forum", conversation=True)
        elif mentioned:
            await self._on_question(message, channel, "mention", conversation=False)
        elif thread is None and setup.mode == EVERY_MESSAGE and isinstance(channel, discord.TextChannel):
            if message.content:
                await self._on_question(message, channel, "channel", conversation=False)
            elif not self.bot.intents.message_content:
                self._warn_no_content(channel.id)

    async def _on_question(self, message: discord.Message, channel: Any, via: str, *, conversation: bool,
                           question: str | None = None) -> None:
        question = question if question is not None else strip_mentions(message.content, self.bot.user.id)
        reply = reply_sender(message, channel)
        if not question:
            if conversation and isinstance(channel, discord.Thread):
                return  # a bare mention in a follow-up thread: nothing to answer
            await reply(content=USAGE, allowed_mentions=NO_MENTIONS)
            return
        wait = self.bot.limiter.acquire(message.author.id)
        if wait:
            now = time.monotonic()
            if now - self.warned.get(message.author.id, -1e9) > self.settings.rate_window:
                self.warned[message.author.id] = now  # one reminder per window, not one per message
                await reply(content=rate_limited(wait), allowed_mentions=NO_MENTIONS)
            return
        try:
            self.bot.queue.admit()
        except QueueFull:
            self.bot.metrics.refused.inc()
            await reply(content=BUSY, allowed_mentions=NO_MENTIONS)
            return
        convo = await self.bot.conversations.get(channel) if conversation else None
        setup = self.bot.setups.get(_parent_id(channel)) if message.guild else None
        asked = Asked(question, via, message.author.id, channel, first=reply, rest=channel.send,
                      options=setup.scope() if setup else {}, conversation=convo,
                      open_thread=not conversation and isinstance(channel, discord.TextChannel))

        async def notice(**kwargs: Any) -> None:  # the note that it waits; the answer replaces it
            note = await reply(**kwargs)
            asked.first, asked.edits_first = note.edit, True
        asked.notice = notice
        async with channel.typing():
            await self.respond(asked, embed_links=can_embed(channel))

    def _warn_no_content(self, channel_id: int) -> None:
        if channel_id not in self.hinted:
            self.hinted[channel_id] = True
            log.warning("Channel %s answers every message, but messages arrive without their text. %s",
                        channel_id, INTENT_NOTE)

    async def _hint_mention(self, thread: discord.Thread) -> None:
        if thread.id in self.hinted:
            return
        self.hinted[thread.id] = True
        log.warning("A message in thread %s arrived without its text. %s", thread.id, INTENT_OFF)
        await thread.send(MENTION_HINT.format(mention=self.bot.user.mention), allowed_mentions=NO_MENTIONS)

    # -- answering -----------------------------------------------------------------------------
    async def respond(self, asked: Asked, *, embed_links: bool) -> None:
        started = time.monotonic()
        self.bot.metrics.questions.labels(asked.via).inc()
        question, notes = self._trim(asked.question)
        shown = question if asked.show_question else None
        sent: list[discord.Message] = []
        try:
            conversation = asked.conversation
            if conversation is None and asked.open_thread:
                conversation = self.bot.conversations.new()
            try:
                answer = await self._answer(question, conversation, asked, shown)
            except (TooLate, QueryError, UsageError) as err:  # told in a sentence, no error id
                if isinstance(err, TooLate):
                    self.bot.metrics.too_late.inc()
                if self._locked_meanwhile(asked):
                    return
                lines = [f"**Question:** {escape(shown)}"] if shown else []
                said = TOO_LATE if isinstance(err, TooLate) else cannot_search(err)
                await asked.first(content="\n".join([*lines, said]), embeds=[], view=None,
                                  allowed_mentions=NO_MENTIONS)
                return
            if self._locked_meanwhile(asked):
                return
            answer_id = new_answer_id()
            await self.bot.in_background(self.bot.feedback.record_answer, answer_id, answer)
            pages = render_answer(answer, question=shown, notes=notes, embed_links=embed_links)
            first = asked.first
            if asked.edits_first:  # an edit must also clear what the message showed before (a page's own win)
                first = functools.partial(asked.first, embeds=[], view=None)
            await send_pages(pages, first, asked.rest, feedback_view(answer_id), sent=sent)
            self.bot.metrics.answers.inc()
            if answer.abstained:
                self.bot.metrics.abstentions.inc()
            self.bot.metrics.latency.observe(time.monotonic() - started)
            if asked.open_thread and conversation is not None:
                await self._open_thread(sent[-1], question, conversation, asked.channel)
        except Exception:
            error_id = self.bot.report_error(f"answering a question ({asked.via}) from user {asked.user_id}")
            if self._locked_meanwhile(asked):
                return
            if sent:  # the answer is out: do not replace it
                await quietly(asked.rest(content=apology(error_id), allowed_mentions=NO_MENTIONS,
                                         **({"ephemeral": True} if asked.expires else {})))
            elif asked.edits_first:
                await quietly(asked.first(content=apology(error_id), embeds=[], view=None,
                                          allowed_mentions=NO_MENTIONS))
            else:
                await quietly(asked.first(content=apology(error_id), allowed_mentions=NO_MENTIONS))

    async def _answer(self, question: str, conversation: Conversation | None, asked: Asked,
                      shown: str | None) -> Answer:
        desk = self.bot.desk
        clock = self.bot.clock
        budget = desk.llm.settings.deadline if desk.llm else EXTRACTIVE_BUDGET
        give_up_at = asked.expires - TOKEN_MARGIN - budget if asked.expires else None
        options: dict[str, Any] = {k: v for k, v in asked.options.items() if v}
        live = LiveAnswer(asked.first, shown) if desk.llm and asked.edits_first else None
        notified = False

        async def on_wait(ahead: int) -> None:
            nonlocal notified
            if asked.notice is not None and not notified:
                notified = True
                lines = [f"**Question:** {escape(shown)}"] if shown else []
                await asked.notice(content="\n".join([*lines, f"-# {queued_note(ahead)}"]),
                                   allowed_mentions=NO_MENTIONS)

        if live is not None:
            options["on_partial"] = live.push
        try:
            if conversation is None:
                ask, turn = functools.partial(desk.ask, question), None
            else:
                ask, turn = functools.partial(conversation.session.ask, question), conversation.turn
            if turn is not None:
                if turn.locked():
                    await on_wait(self.bot.queue.running + self.bot.queue.waiting)
                await wait_until(turn.acquire(), give_up_at, clock)
            try:
                if desk.llm and asked.expires:  # the model must finish while the token still works
                    options["deadline"] = max(5.0, min(budget, asked.expires - TOKEN_MARGIN - clock()))
                return await self.bot.queue.run(ask, k=self.settings.k, give_up_at=give_up_at, on_wait=on_wait,
                                                **options)
            finally:
                if turn is not None:
                    turn.release()
        finally:
            if live is not None:
                await live.stop()

    @staticmethod
    def _locked_meanwhile(asked: Asked) -> bool:
        """A thread a moderator locked while the answer was worked out: only moderators may post there now.

        (An interaction's reply is no post in the thread, so it goes out all the same.)
        """
        channel = asked.channel
        if asked.expires is not None or not isinstance(channel, discord.Thread) or not channel.locked:
            return False
        perms = permissions(channel)
        if perms is not None and perms.manage_threads:
            return False
        log.warning("Not answering in thread %s: it was locked while the answer was worked out", channel.id)
        return True

    def _is_conversation(self, channel: Any) -> bool:
        me = self.bot.user
        return isinstance(channel, discord.DMChannel) or (
            isinstance(channel, discord.Thread) and me is not None and channel.owner_id == me.id)

    async def _open_thread(self, message: discord.Message, question: str, conversation: Conversation,
                           channel: Any) -> None:
        """A thread on the answer's last page: the page with its buttons, whose answer id restores the memory.

        None where the bot may not post in threads: it could answer no follow-up there.
        """
        perms = permissions(channel)
        if perms is not None and not perms.send_messages_in_threads:
            log.warning("Not opening a follow-up thread on message %s: the bot lacks 'Send Messages in Threads' in "
                        "channel %s, so it could answer nothing there", message.id, channel.id)
            return
        try:
            # Through the channel: a later page of a slash answer is a webhook message, which knows no guild.
            thread = await channel.create_thread(name=thread_name(question), message=message,
                                                 auto_archive_duration=1440)
        except discord.HTTPException as err:
            log.warning("Could not open a follow-up thread on message %s (%s): give the bot the "
                        "'Create Public Threads' permission in that channel", message.id, err)
            return
        self.bot.conversations.remember(thread.id, conversation)
        hint = FOLLOW_UP_HINT if self.bot.intents.message_content else MENTION_HINT.format(
            mention=self.bot.user.mention)
        try:
            await thread.send(hint, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as err:
            log.warning("Could not post in the new thread %s (%s): give the bot the 'Send Messages in "
                        "Threads' permission", thread.id, err)

    # -- checks --------------------------------------------------------------------------------
    def _refusal(self, interaction: discord.Interaction) -> str | None:
        if interaction.guild_id is None:
            return None if self.settings.answer_in_dms else "I only answer questions in servers, not in DMs."
        parent = _parent_id(interaction.channel) or interaction.channel_id
        if not self.settings.allows_channel(parent):
            allowed = ", ".join(f"<#{c}>" for c in sorted(self.settings.allowed_channels))
            return f"I don't answer questions in this channel. Ask me in {allowed}."
        if self.bot.setups.get(parent).mode == OFF:
            return "I don't answer questions in this channel: its admins switched me off here."
        return None

    def _trim(self, question: str) -> tuple[str, list[str]]:
        limit = self.settings.max_question_chars
        if len(question) <= limit:
            return question, []
        cut = question[:limit]
        if " " in cut[limit // 2:]:
            cut = cut.rsplit(" ", 1)[0]
        return cut, [trimmed_note(limit)]


INTENT_NOTE = ("Enable 'Message Content Intent' in the developer portal and set message_content = true, "
               "or switch the channel to mentions with /channel set.")


def _parent_id(channel: Any) -> int | None:
    if isinstance(channel, discord.Thread):
        return channel.parent_id
    return getattr(channel, "id", None)


def _bad_dates(since: str | None, until: str | None) -> str | None:
    days = []
    for value in (since, until):
        if value and value.strip():
            try:
                days.append(date.fromisoformat(value.strip()))
            except ValueError:
                return f"Dates look like 2026-01-31; I can't read {escape(value)!s}."
    if len(days) == 2 and days[0] > days[1]:
        return f"`since` ({days[0]}) is after `until` ({days[1]}): no article can be from both. Swap them?"
    return None


async def source_choices(bot: NewsdeskBot, current: str) -> list[app_commands.Choice[str]]:
    """Up to 25 of the index's sources containing what was typed (Discord's limit), shortest first."""
    typed = current.strip().lower()
    names = [n for n in await bot.sources() if typed in n.lower()]
    names.sort(key=lambda n: (not n.lower().startswith(typed), len(n), n))
    return [app_commands.Choice(name=n[:100], value=n[:100]) for n in names[:25]]
