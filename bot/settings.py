"""The bot's settings: a TOML file, then environment variables on top; the token only from the environment.

Paths written in the file are relative to the file's folder, so a host can keep the settings,
the index and the feedback log together; paths from the environment are relative to the
current folder, like every other path given on a command line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from newsdesk import LLMSettings, NewsdeskError, read_settings

DEFAULT_FILE = "newsdesk-bot.toml"
PORTAL = "https://discord.com/developers/applications"


class SettingsError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class BotSettings:
    index_dir: Path = Path("index")
    # Only `/reindex` reads the corpus.
    corpus_dir: Path = Path("corpus")
    # Channel ids the bot answers in (threads count as their parent channel); empty = everywhere.
    allowed_channels: frozenset[int] = frozenset()
    # Role ids allowed to run /reindex; empty = members with the Administrator permission.
    admin_roles: frozenset[int] = frozenset()
    # Questions per user per `rate_window` seconds; 0 turns the limit off.
    rate_limit: int = 5
    rate_window: float = 60.0
    answer_in_dms: bool = False
    # Keep the index current in the background while articles land in corpus_dir.
    watch: bool = False
    feedback_log: Path = Path("feedback.jsonl")
    # Ask Discord for the privileged Message Content intent (needed for follow-ups without a mention).
    message_content: bool = True
    # Register the slash commands at start: in these guilds only (instant), or globally when empty.
    sync_commands: bool = True
    command_guilds: frozenset[int] = frozenset()
    max_question_chars: int = 500
    k: int = 5
    # Questions answered at the same time (each uses one CPU core while it runs).
    workers: int = 2
    # Questions that may wait for a worker; more are turned away with a polite "ask again".
    max_queue: int = 20
    # Conversations (threads, DMs) kept in memory; older ones are rebuilt from Discord when needed.
    max_conversations: int = 2000
    # Gateway shards; 0 lets Discord recommend a count (needed past 2,500 servers).
    shard_count: int = 0
    # Serve /health and /metrics on this port of health_host; 0 = off.
    health_port: int = 0
    health_host: str = "127.0.0.1"
    # A language model for generated answers (the [llm] table, NEWSDESK_LLM_* variables); None: extractive.
    llm: LLMSettings | None = None

    def allows_channel(self, channel_id: int | None) -> bool:
        return not self.allowed_channels or channel_id in self.allowed_channels


# name in the TOML file -> environment variable that overrides it
ENV = {
    "index_dir": "NEWSDESK_INDEX",
    "corpus_dir": "NEWSDESK_CORPUS",
    "allowed_channels": "NEWSDESK_BOT_CHANNELS",
    "admin_roles": "NEWSDESK_BOT_ADMIN_ROLES",
    "rate_limit": "NEWSDESK_BOT_RATE_LIMIT",
    "rate_window": "NEWSDESK_BOT_RATE_WINDOW",
    "answer_in_dms": "NEWSDESK_BOT_DMS",
    "watch": "NEWSDESK_BOT_WATCH",
    "feedback_log": "NEWSDESK_BOT_FEEDBACK_LOG",
    "message_content": "NEWSDESK_BOT_MESSAGE_CONTENT",
    "sync_commands": "NEWSDESK_BOT_SYNC_COMMANDS",
    "command_guilds": "NEWSDESK_BOT_COMMAND_GUILDS",
    "max_question_chars": "NEWSDESK_BOT_MAX_QUESTION_CHARS",
    "k": "NEWSDESK_BOT_K",
    "workers": "NEWSDESK_BOT_WORKERS",
    "max_queue": "NEWSDESK_BOT_MAX_QUEUE",
    "max_conversations": "NEWSDESK_BOT_MAX_CONVERSATIONS",
    "shard_count": "NEWSDESK_BOT_SHARDS",
    "health_port": "NEWSDESK_BOT_HEALTH_PORT",
    "health_host": "NEWSDESK_BOT_HEALTH_HOST",
}
CONFIG_ENV = "NEWSDESK_BOT_CONFIG"
MAX_DEADLINE = 600
TOKEN_ENV = "DISCORD_TOKEN"


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> BotSettings:
    """Settings from `path` (or $NEWSDESK_BOT_CONFIG, or ./newsdesk-bot.toml if present), then the environment."""
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get(CONFIG_ENV))
    file = Path(path if path is not None else env.get(CONFIG_ENV) or DEFAULT_FILE).expanduser()
    values: dict[str, Any] = {}
    llm_table: dict[str, Any] = {}
    if file.is_file():
        values.update(_from_file(file))
        llm_table = values.pop("llm", {})
    elif explicit:
        raise SettingsError(
            f"no settings file at {file}: copy bot/newsdesk-bot.example.toml there, or leave out the path "
            "to run with the defaults"
        )
    for name, var in ENV.items():
        raw = env.get(var)
        if raw is not None and raw.strip() != "":
            values[name] = _parse(name, raw.strip(), var, base=Path.cwd())
    try:
        values["llm"] = LLMSettings.from_settings(read_settings("llm", llm_table, env, where=f"[llm] in {file}"))
    except NewsdeskError as err:
        raise SettingsError(str(err)) from None
    settings = replace(BotSettings(), **values)
    _check(settings)
    return settings


def discord_token(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    token = (env.get(TOKEN_ENV) or "").strip()
    if not token:
        raise SettingsError(
            f"{TOKEN_ENV} is not set: copy your bot's token from {PORTAL} (your application -> Bot -> "
            f"Reset Token) and run the bot with {TOKEN_ENV}=<token> in its environment"
        )
    return token


def _from_file(file: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{file} is not valid TOML ({err}); fix that line and start again") from None
    if "token" in {k.lower() for k in data} or "discord_token" in {k.lower() for k in data}:
        raise SettingsError(
            f"{file} holds a token: remove it from the file (settings files get shared and committed) "
            f"and set {TOKEN_ENV} in the bot's environment instead"
        )
    known = {f.name for f in fields(BotSettings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(
            f"{file}: unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(sorted(known))}"
        )
    llm = data.pop("llm", {})
    if not isinstance(llm, dict):
        raise SettingsError(f"llm in {file} must be a table: write [llm] on its own line, then its settings")
    values = {name: _parse(name, value, f"{name} in {file}", base=file.parent) for name, value in data.items()}
    return values | {"llm": llm}


_PATHS = {"index_dir", "corpus_dir", "feedback_log"}
_ID_SETS = {"allowed_channels", "admin_roles", "command_guilds"}
_BOOLS = {"answer_in_dms", "message_content", "sync_commands", "watch"}
_INTS = {"rate_limit", "max_question_chars", "k", "workers", "max_queue", "max_conversations", "shard_count",
         "health_port"}
_FLOATS = {"rate_window"}
_STRINGS = {"health_host"}


def _parse(name: str, value: Any, where: str, *, base: Path) -> Any:
    if name in _PATHS:
        if not isinstance(value, str) or not value:
            raise SettingsError(f"{where} must be a path, not {value!r}")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p
    if name in _ID_SETS:
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(items, list):
            raise SettingsError(f"{where} must be a list of ids, like [123456789012345678]")
        try:
            return frozenset(int(str(i).strip()) for i in items)
        except ValueError:
            raise SettingsError(
                f"{where} must hold numeric ids (right-click -> Copy ID with Developer Mode on), not {value!r}"
            ) from None
    if name in _BOOLS:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.lower() in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{where} must be true or false, not {value!r}")
    if name in _STRINGS:
        if not isinstance(value, str) or not value.strip():
            raise SettingsError(f"{where} must be text, like \"127.0.0.1\", not {value!r}")
        return value.strip()
    if name in _INTS | _FLOATS:
        try:
            number = (int if name in _INTS else float)(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{where} must be a number, not {value!r}") from None
        if isinstance(value, bool) or number < 0:
            raise SettingsError(f"{where} must be a number of at least 0, not {value!r}")
        return number
    raise AssertionError(name)


def _check(s: BotSettings) -> None:
    if s.rate_limit and s.rate_window <= 0:
        raise SettingsError("rate_window must be more than 0 seconds when rate_limit is on")
    if not 1 <= s.k <= 50:
        raise SettingsError(f"k must be between 1 and 50, not {s.k}")
    if s.workers < 1:
        raise SettingsError("workers must be at least 1")
    if s.llm is not None and s.llm.deadline > MAX_DEADLINE:
        raise SettingsError(f"deadline in [llm] must be at most {MAX_DEADLINE} seconds (Discord lets a bot answer an "
                            f"interaction for 15 minutes), not {s.llm.deadline}")
    if s.max_conversations < 1:
        raise SettingsError("max_conversations must be at least 1")
    if s.health_port > 65535:
        raise SettingsError(f"health_port must be a port number (1-65535, or 0 for off), not {s.health_port}")
    if s.max_question_chars < 20:
        raise SettingsError(f"max_question_chars must be at least 20, not {s.max_question_chars}")
