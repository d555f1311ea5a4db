"""Conversation memory: one ChatSession per thread or DM, rebuilt from Discord after a restart.

A thread opened from an answer has that answer (the page with its vote buttons) as its starter
message; the bot's later answers in it carry their own buttons. The answer ids on those buttons
lead to the questions in the feedback log, so the memory survives restarts without storing
anything new. At most `maxsize` conversations are kept (least recently used first out).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord

from newsdesk import ChatSession
from newsdesk_bot.memory import Recent
from newsdesk_bot.votes import answer_ids

if TYPE_CHECKING:
    from newsdesk_bot.client import NewsdeskBot

log = logging.getLogger("newsdesk.bot")


@dataclass
class Conversation:
    session: ChatSession
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)  # one question at a time per conversation


class Conversations:
    def __init__(self, bot: NewsdeskBot, maxsize: int):
        self.bot = bot
        self._known: Recent[int, Conversation] = Recent(maxsize)
        self._restoring: Recent[int, asyncio.Lock] = Recent(maxsize)

    def __len__(self) -> int:
        return len(self._known)

    def new(self) -> Conversation:
        return Conversation(self.bot.desk.chat())

    def remember(self, conversation_id: int, conversation: Conversation) -> None:
        self._known[conversation_id] = conversation

    async def get(self, channel: Any) -> Conversation:
        """The conversation of a thread or DM, restored from its messages if it is not in memory."""
        if channel.id in self._known:
            return self._known[channel.id]
        lock = self._restoring.get(channel.id)
        if lock is None:
            lock = self._restoring[channel.id] = asyncio.Lock()
        async with lock:
            if channel.id not in self._known:
                questions = await self.asked_in(channel)
                self._known[channel.id] = Conversation(ChatSession.restore(self.bot.desk, questions))
            return self._known[channel.id]

    async def asked_in(self, channel: Any) -> list[str]:
        """The questions answered so far in a thread or DM, from the answer ids on the bot's own messages."""
        me = self.bot.user
        ids: list[str] = []
        if isinstance(channel, discord.Thread) and channel.owner_id == me.id:
            try:  # a thread opened from an answer has that answer as its starter message, in the parent
                parent = channel.parent or await self.bot.fetch_channel(channel.parent_id)
                starter = await parent.fetch_message(channel.id)
                if starter.author.id == me.id:
                    ids += answer_ids(starter)
            except (discord.HTTPException, AttributeError):
                pass
        try:
            later = [m async for m in channel.history(limit=100) if m.author.id == me.id]
        except discord.HTTPException as err:
            log.warning("Could not read the history of conversation %s (%s): give the bot the "
                        "'Read Message History' permission", channel.id, err)
            later = []
        for m in reversed(later):
            ids += [i for i in answer_ids(m) if i not in ids]
        questions = []
        for answer_id in ids:
            record = await self.bot.in_background(self.bot.feedback.answer, answer_id)
            if record and record.get("question"):
                questions.append(record["question"])
        log.info("Restored %d earlier question(s) in conversation %s", len(questions), channel.id)
        return questions
