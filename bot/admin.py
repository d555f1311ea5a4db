"""Commands for the people who run the bot or a server: /stats, /reindex and /channel.

/reindex changes the one index every server shares, so it is the bot owner's (or the roles in
`admin_roles`), not any server's administrators'; Discord hides it from members without Manage
Server. /channel changes one channel of one server, so it needs Manage Channels there.
After /reindex, the channels' followed topics get their news before the result is shown, and
the result says where it was posted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from newsdesk import IndexBusy
from newsdesk_bot.ask import _parent_id, source_choices
from newsdesk_bot.channels import EVERY_MESSAGE, MODES, ChannelSetup
from newsdesk_bot.format import apology, escape, render_stats, render_update
from newsdesk_bot.replies import NO_MENTIONS, quietly, send_pages
from newsdesk_bot.work import TOKEN_MARGIN, TooLate, token_expires, wait_until

if TYPE_CHECKING:
    from newsdesk import UpdateReport
    from newsdesk_bot.client import NewsdeskBot
    from newsdesk_bot.follow import Posted

log = logging.getLogger("newsdesk.bot")

NOT_ADMIN = "Sorry, only the bot's admins can update the index."
RUNNING = "An update is already running; I'll have the new articles when it finishes."
BY_DM = ("This update is taking a while, and Discord lets me change this message for only 15 minutes: "
         "I'll send you the result in a direct message.")
GUILD = app_commands.AppCommandContext(guild=True)


class Admin(commands.Cog):
    def __init__(self, bot: NewsdeskBot):
        self.bot = bot
        self.settings = bot.settings
        self.reindexing = False
        self.stats.allowed_contexts = app_commands.AppCommandContext(guild=True, dm_channel=self.settings.answer_in_dms)

    # -- /stats --------------------------------------------------------------------------------
    @app_commands.command(description="What the index holds: documents, chunks, model, last update.")
    async def stats(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            info = (await self.bot.in_background(self.bot.desk.stats)).to_dict()
            await send_pages(render_stats(info), interaction.edit_original_response,
                             functools.partial(interaction.followup.send, wait=True, ephemeral=True))
        except Exception:
            error_id = self.bot.report_error("answering /stats")
            await quietly(interaction.edit_original_response(content=apology(error_id),
                                                             allowed_mentions=NO_MENTIONS))

    # -- /reindex ------------------------------------------------------------------------------
    @app_commands.command(description="Update the index from the corpus folder (bot admins only).")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    async def reindex(self, interaction: discord.Interaction) -> None:
        if not await self._is_admin(interaction):
            await interaction.response.send_message(NOT_ADMIN, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        if self.reindexing:
            await interaction.response.send_message(RUNNING, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        self.reindexing = True  # before the first await: a second call must see it
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            reply = await self._update(interaction)
        finally:
            self.reindexing = False
        await self._report(interaction, reply)

    async def _update(self, interaction: discord.Interaction) -> str:
        """Run the update and post the followed topics' news; past the token's useful life, say
        that the result will come by DM."""
        bot = self.bot
        warn_at = token_expires(interaction) - TOKEN_MARGIN

        async def update_and_post() -> tuple[UpdateReport, Posted]:
            report = await bot.in_background(bot.desk.update, lock_timeout=0, pool=bot.maintenance)
            return report, await bot.following.post_news(report)

        update = asyncio.ensure_future(update_and_post())
        try:
            try:
                report, posted = await wait_until(asyncio.shield(update), warn_at, bot.clock)
            except TooLate:
                interaction.extras["by_dm"] = True
                await quietly(interaction.edit_original_response(content=BY_DM, allowed_mentions=NO_MENTIONS))
                report, posted = await update
            reply = "\n".join(line for line in (render_update(report), posted.describe()) if line)
            log.info("Index updated by /reindex from user %s: %s", interaction.user.id, reply)
            return reply
        except IndexBusy as err:
            return escape(str(err))
        except Exception:
            return apology(bot.report_error("running /reindex"))

    async def _report(self, interaction: discord.Interaction, reply: str) -> None:
        if not interaction.extras.get("by_dm") and self.bot.clock() < token_expires(interaction) - TOKEN_MARGIN:
            await quietly(interaction.edit_original_response(content=reply, allowed_mentions=NO_MENTIONS))
            return
        if not interaction.extras.get("by_dm") and self.bot.clock() < token_expires(interaction) - 5:
            await quietly(interaction.edit_original_response(content=BY_DM, allowed_mentions=NO_MENTIONS))
        try:
            await interaction.user.send(reply, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as err:
            log.warning("Could not send the /reindex result to user %s by DM (%s); it was: %s",
                        interaction.user.id, err, reply)

    async def _is_admin(self, interaction: discord.Interaction) -> bool:
        """A member with one of `admin_roles`, or else the bot's owner (the application's owner or team)."""
        user = interaction.user
        if self.settings.admin_roles:
            roles = getattr(user, "roles", [])
            if any(role.id in self.settings.admin_roles for role in roles):
                return True
        return await self.bot.is_owner(user)

    # -- /channel ------------------------------------------------------------------------------
    channel = app_commands.Group(name="channel", description="How the bot answers in this channel (server admins).",
                                 default_permissions=discord.Permissions(manage_channels=True),
                                 allowed_contexts=GUILD)

    @channel.command(name="set", description="Choose when I answer here and what I search by default.")
    @app_commands.describe(mode="When to answer in this channel (a forum: every new post)",
                           source="Search only this source by default", days="Search only the last N days by default")
    @app_commands.choices(mode=[app_commands.Choice(name=m, value=m) for m in MODES])
    async def channel_set(self, interaction: discord.Interaction, mode: str, source: str | None = None,
                          days: app_commands.Range[int, 1, 3650] | None = None) -> None:
        target = _parent_id(interaction.channel) or interaction.channel_id
        setup = ChannelSetup(mode=mode, source=(source or "").strip() or None, days=days)
        if setup.source and setup.source not in await self.bot.sources():
            await interaction.response.send_message(
                f"The index has no source called {escape(setup.source)}: pick one from the list as you type.",
                ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await self.bot.in_background(self.bot.setups.set, target, setup)
        note = ""
        if mode == EVERY_MESSAGE and not self.bot.intents.message_content:
            note = ("\n-# Without the Message Content intent I only see the titles of forum posts and no text of "
                    "other messages; the bot's host can enable it (see docs/discord.md).")
        await interaction.response.send_message(f"Set for <#{target}>: {setup.describe()}{note}", ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)

    @channel_set.autocomplete("source")
    async def channel_source(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await source_choices(self.bot, current)

    @channel.command(name="show", description="How I answer in this channel.")
    async def channel_show(self, interaction: discord.Interaction) -> None:
        target = _parent_id(interaction.channel) or interaction.channel_id
        await interaction.response.send_message(f"In <#{target}>: {self.bot.setups.get(target).describe()}",
                                                ephemeral=True, allowed_mentions=NO_MENTIONS)

    @channel.command(name="reset", description="Back to the default: answer when mentioned, search everything.")
    async def channel_reset(self, interaction: discord.Interaction) -> None:
        target = _parent_id(interaction.channel) or interaction.channel_id
        await self.bot.in_background(self.bot.setups.set, target, None)
        await interaction.response.send_message(f"In <#{target}>: {ChannelSetup().describe()}", ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)

