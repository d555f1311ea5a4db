"""Starting the bot: settings and token checks, clear one-line errors, and the intent fallback."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import discord

from newsdesk_bot.client import INTENT_OFF, NewsdeskBot
from newsdesk_bot.settings import PORTAL, TOKEN_ENV, BotSettings, SettingsError, discord_token, load_settings
from newsdesk import Desk, NewsdeskError

log = logging.getLogger("newsdesk.bot")


async def serve(settings: BotSettings, token: str, *, desk: Desk | None = None, **client_options: Any) -> None:
    """Run the bot until it is closed or cancelled.

    If Discord refuses the Message Content intent (it is not switched on in the developer
    portal), the bot reconnects without it instead of giving up: mentions and slash commands
    still work, and thread follow-ups then need a mention.
    """
    while True:
        bot = NewsdeskBot(settings, desk=desk, **client_options)
        try:
            async with bot:
                await bot.start(token)
            return
        except discord.PrivilegedIntentsRequired:
            if not settings.message_content:
                raise
            log.warning("Discord refused the Message Content intent; reconnecting without it. %s", INTENT_OFF)
            settings = replace(settings, message_content=False)
            desk = bot.desk


def run(config: str | Path | None = None, *, index_dir: str | Path | None = None,
        corpus_dir: str | Path | None = None, log_level: str = "INFO") -> int:
    """Run the bot in the foreground; returns the process exit code (0 after Ctrl-C, 1 on an error)."""
    level = getattr(logging, log_level.upper(), logging.INFO)
    if logging.getLogger().handlers:  # the caller (the CLI) set up logging: keep its handlers
        for name in ("newsdesk", "discord"):
            logging.getLogger(name).setLevel(level)
    else:
        discord.utils.setup_logging(level=level, root=True)
    try:
        settings = load_settings(config)
        if index_dir is not None:
            settings = replace(settings, index=str(index_dir))
        if corpus_dir is not None:
            settings = replace(settings, corpus=Path(corpus_dir))
        token = discord_token()
    except SettingsError as err:
        return _fail(str(err))
    try:
        asyncio.run(serve(settings, token))
    except KeyboardInterrupt:
        return 0
    except discord.LoginFailure:
        return _fail(f"Discord rejected the token in {TOKEN_ENV}: reset it at {PORTAL} (your application -> Bot "
                     f"-> Reset Token) and set {TOKEN_ENV} to the new one")
    except (aiohttp.ClientConnectorError, discord.GatewayNotFound) as err:
        return _fail(f"cannot reach Discord ({type(err).__name__}); check the network connection and try again")
    except NewsdeskError as err:
        return _fail(str(err))
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m newsdesk_bot",
        description=f"Run the newsdesk Discord bot. The token comes from ${TOKEN_ENV}; see docs/discord.md.",
    )
    parser.add_argument("--config", help="settings file (default: $NEWSDESK_BOT_CONFIG or ./newsdesk-bot.toml)")
    parser.add_argument("--index", help="index folder (overrides the settings file)")
    parser.add_argument("--corpus", help="corpus folder that /reindex reads (overrides the settings file)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    return run(args.config, index_dir=args.index, corpus_dir=args.corpus, log_level=args.log_level)
