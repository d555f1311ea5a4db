"""Sending what the bot has to say: pages, replies that survive a deleted question, streamed edits.

Every send goes out with mentions disabled (the client's allowed_mentions); nothing here may
ping anyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from newsdesk import Answer
from newsdesk_bot.format import render_partial
from newsdesk_bot.split import Page

log = logging.getLogger("newsdesk.bot")

NO_MENTIONS = discord.AllowedMentions.none()
# Seconds between two edits of a reply while a language model streams it (Discord rate-limits edits).
EDIT_INTERVAL = 1.0

Sender = Callable[..., Awaitable[Any]]


def permissions(channel: Any) -> discord.Permissions | None:
    """The bot's permissions in a guild channel; None in DMs (where it may do everything it needs)."""
    guild = getattr(channel, "guild", None)
    if guild is None or guild.me is None or not hasattr(channel, "permissions_for"):
        return None
    return channel.permissions_for(guild.me)


def can_embed(channel: Any) -> bool:
    perms = permissions(channel)
    return perms is None or perms.embed_links


def reply_sender(message: discord.Message, channel: Any = None) -> Sender:
    """Sends in reply to `message`, or as a plain message where a reply would fail.

    Discord refuses a reply without Read Message History, and by default one to a message that
    was deleted meanwhile; the answer still belongs in the channel.
    """
    channel = channel or message.channel
    perms = permissions(channel)
    reference = message.to_reference(fail_if_not_exists=False)
    if perms is not None and not perms.read_message_history:
        reference = None

    async def send(**kwargs: Any) -> discord.Message:
        return await channel.send(reference=reference, mention_author=False, **kwargs)
    return send


async def send_pages(pages: list[Page], first: Sender, rest: Sender, view: discord.ui.View | None = None,
                     sent: list[discord.Message] | None = None) -> list[discord.Message]:
    """Send each page as one message; the buttons go under the last one. Each sent message is
    appended to `sent` as it goes, so a caller whose later page fails knows which pages are out."""
    sent = [] if sent is None else sent
    for i, page in enumerate(pages):
        kwargs: dict[str, Any] = {"allowed_mentions": NO_MENTIONS,
                                  "embeds": [discord.Embed.from_dict(e) for e in page.embeds]}
        if page.content:
            kwargs["content"] = page.content
        if view is not None and i == len(pages) - 1:
            kwargs["view"] = view
        sent.append(await (first if i == 0 else rest)(**kwargs))
    return sent


async def quietly(coro: Awaitable[Any]) -> None:
    """Send an apology; if even that fails, the error is already in the log."""
    try:
        await coro
    except discord.HTTPException as err:
        log.warning("Could not tell the user about an error: %s", err)


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
