"""The 👍/👎 buttons under every answer, and reading answer ids back off the bot's messages.

A button's custom_id carries the vote and the answer id, so it keeps working after a restart
(a persistent dynamic item). A click is acknowledged first and written to the feedback log
after, on its own thread: Discord wants the first response within 3 seconds, and the answer
workers may all be busy.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import discord

from newsdesk_bot.format import apology
from newsdesk_bot.replies import NO_MENTIONS, quietly

if TYPE_CHECKING:
    from newsdesk_bot.client import NewsdeskBot

VOTE_ID = re.compile(r"newsdesk:vote:(?P<vote>up|down):(?P<answer_id>[0-9a-f]{16})")


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=VOTE_ID):
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
        await interaction.response.send_message(
            "Thanks! Glad it helped." if self.vote == "up" else "Thanks for telling me: I've noted that this answer missed.",
            ephemeral=True, allowed_mentions=NO_MENTIONS)
        try:
            await bot.in_background(bot.feedback.record_vote, self.answer_id, self.vote, interaction.user.id)
        except Exception:
            error_id = bot.report_error(f"recording a vote on answer {self.answer_id}")
            await quietly(interaction.followup.send(apology(error_id), ephemeral=True, allowed_mentions=NO_MENTIONS))
        else:
            bot.metrics.votes.labels(self.vote).inc()


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
