"""Registering the slash commands only when they changed, and never leaving a second copy behind.

Discord keeps global commands and each guild's commands apart, and shows a member both: a bot
that moves from global to guild registration (or back) must empty the other place, or every
command appears twice. What was last registered where is kept as a hash of its JSON payload in
a small file beside the feedback log, so an unchanged start registers nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from newsdesk_bot.client import NewsdeskBot

log = logging.getLogger("newsdesk.bot")


def payload_hash(payload: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _load(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (FileNotFoundError, ValueError):
        return {}


async def sync_commands(bot: NewsdeskBot, state_file: Path) -> None:
    """Register where the settings say (those guilds, else globally); empty the places used before."""
    tree = bot.tree
    guilds = sorted(bot.settings.command_guilds)
    for guild_id in guilds:
        tree.copy_global_to(guild=discord.Object(id=guild_id))
    if guilds:
        tree.clear_commands(guild=None)  # registered per guild: the global set must be empty

    def payload(guild: int | None) -> list[dict[str, Any]]:
        scope = None if guild is None else discord.Object(id=guild)
        return [c.to_dict(tree) for c in tree.get_commands(guild=scope)]  # what tree.sync sends

    wanted = {"global": payload(None), **{str(g): payload(g) for g in guilds}}
    state = _load(state_file)
    for old in state:
        wanted.setdefault(old, [])  # a guild used before and not now: empty it
    for key, commands in wanted.items():
        digest = payload_hash(commands)
        if state.get(key) == digest:
            continue
        try:
            if key == "global":
                await tree.sync()
            elif int(key) in guilds:
                await tree.sync(guild=discord.Object(id=int(key)))
            else:
                await bot.http.bulk_upsert_guild_commands(bot.application_id, int(key), payload=[])
        except discord.Forbidden:
            log.error("Discord refused to register the slash commands%s: invite the bot with the "
                      "'applications.commands' scope (see docs/discord.md); mentions still work",
                      "" if key == "global" else f" in guild {key}")
            continue
        except discord.HTTPException as err:
            log.error("Could not register the slash commands (%s); mentions still work", err)
            continue
        log.info("Registered %d command(s) %s", len(commands), "globally" if key == "global" else f"in guild {key}")
        if commands or key == "global":
            state[key] = digest
        else:
            state.pop(key, None)
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state, indent=1), encoding="utf-8")
