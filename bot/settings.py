"""The bot's settings: a TOML file, then environment variables on top; secrets only from the environment.

Every setting is a row of newsdesk's one settings table (`newsdesk.SETTINGS`): the "newsdesk" rows
(index, corpus, k, ...) and the "bot" rows as top-level keys, the "llm" rows in an `[llm]` table.
The table gives each its type, default, environment variable and help; `docs/settings.md`
documents them all. Paths written in the file are relative to the file's folder, so a host can
keep the settings, the index and the feedback log together; paths from the environment are
relative to the current folder, like every other path given on a command line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsdesk import LLMSettings, SettingsError, read_settings

DEFAULT_FILE = "newsdesk-bot.toml"
PORTAL = "https://discord.com/developers/applications"
CONFIG_ENV = "NEWSDESK_BOT_CONFIG"
TOKEN_ENV = "DISCORD_TOKEN"
MAX_DEADLINE = 600

__all__ = ["BotSettings", "SettingsError", "discord_token", "load_settings"]


@dataclass(frozen=True)
class BotSettings:
    """The values the bot runs with (their meaning: `newsdesk.SETTINGS`, group "bot")."""

    index: str = "index"
    corpus: Path = Path("corpus")  # only /reindex and watch read it
    k: int = 5
    encoder: str = "auto"
    milvus_token: str = field(default="", repr=False)
    allowed_channels: frozenset[int] = frozenset()
    admin_roles: frozenset[int] = frozenset()
    rate_limit: int = 5
    rate_window: float = 60.0
    answer_in_dms: bool = False
    watch: bool = False
    feedback_log: Path = Path("feedback.jsonl")
    message_content: bool = True
    sync_commands: bool = True
    command_guilds: frozenset[int] = frozenset()
    max_question_chars: int = 500
    workers: int = 2
    max_queue: int = 20
    max_conversations: int = 2000
    shard_count: int = 0
    health_port: int = 0
    health_host: str = "127.0.0.1"
    llm: LLMSettings | None = None

    @property
    def index_dir(self) -> str:
        return self.index

    @property
    def corpus_dir(self) -> Path:
        return self.corpus

    def allows_channel(self, channel_id: int | None) -> bool:
        return not self.allowed_channels or channel_id in self.allowed_channels


_FIELDS = set(BotSettings.__dataclass_fields__) - {"llm"}


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> BotSettings:
    """Settings from `path` (or $NEWSDESK_BOT_CONFIG, or ./newsdesk-bot.toml if present), then the environment."""
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get(CONFIG_ENV))
    file = Path(path if path is not None else env.get(CONFIG_ENV) or DEFAULT_FILE).expanduser()
    table: dict[str, Any] = {}
    if file.is_file():
        table = _read_file(file)
    elif explicit:
        raise SettingsError(
            f"no settings file at {file}: copy bot/newsdesk-bot.example.toml there, or leave out the path "
            "to run with the defaults")
    llm_table = table.pop("llm", {})
    if not isinstance(llm_table, dict):
        raise SettingsError(f"llm in {file} must be a table: write [llm] on its own line, then its settings")
    if "token" in {k.lower() for k in table} or "discord_token" in {k.lower() for k in table}:
        raise SettingsError(
            f"{file} holds a token: remove it from the file (settings files get shared and committed) "
            f"and set {TOKEN_ENV} in the bot's environment instead")
    values = read_settings(("newsdesk", "bot"), table, env, where=str(file), base=file.parent)
    llm = LLMSettings.from_settings(read_settings("llm", llm_table, env, where=f"[llm] in {file}"))
    settings = BotSettings(**{k: v for k, v in values.items() if k in _FIELDS}, llm=llm)
    _check(settings)
    return settings


def discord_token(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    token = (env.get(TOKEN_ENV) or "").strip()
    if not token:
        raise SettingsError(
            f"{TOKEN_ENV} is not set: copy your bot's token from {PORTAL} (your application -> Bot -> "
            f"Reset Token) and run the bot with {TOKEN_ENV}=<token> in its environment")
    return token


def _read_file(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{file} is not valid TOML ({err}); fix that line and start again") from None


def _check(s: BotSettings) -> None:
    if s.rate_limit and s.rate_window <= 0:
        raise SettingsError("rate_window must be more than 0 seconds when rate_limit is on")
    if s.llm is not None and s.llm.deadline > MAX_DEADLINE:
        raise SettingsError(f"deadline in [llm] must be at most {MAX_DEADLINE} seconds (Discord lets a bot answer an "
                            f"interaction for 15 minutes), not {s.llm.deadline}")
