"""The one table of settings: name, type, default, environment variable and help for each.

The front ends read settings here, at the edge: the CLI builds its options from this table
and the bot reads its TOML file through `read_settings`. The library itself never reads the
environment; it receives values. `docs/settings.md` documents every row (a test checks it).

Precedence: an environment variable beats a settings file, which beats the default. Secrets
(API keys, the Discord token) are only ever read from the environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsdesk.errors import SettingsError

# Groups: "newsdesk" (the CLI and the bot alike), "llm" (optional generated answers, a [llm]
# table in the bot's file) and "bot" (the Discord front end).
GROUPS = ("newsdesk", "llm", "bot")


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # path | location (a path or a URI) | str | int | float | bool | ids | choice
    default: Any
    help: str
    env: str | None = None
    group: str = "newsdesk"
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    secret: bool = False  # environment only: never accepted from a file
    aliases: tuple[str, ...] = ()  # older names accepted in a settings file


SETTINGS: tuple[Setting, ...] = (
    # -- newsdesk: the CLI and the bot ------------------------------------------------------
    Setting("corpus", "path", "corpus", "Folder of articles (sub-folders allowed; the first folder names the source).",
            "NEWSDESK_CORPUS", aliases=("corpus_dir",)),
    Setting("index", "location", "index", "Where the index lives: a folder, `milvus-lite:///path/file.db` or "
            "`milvus://host:19530/collection`.", "NEWSDESK_INDEX", aliases=("index_dir",)),
    Setting("model", "str", "all-MiniLM-L6-v2", "A sentence-transformers model folder; the default is the bundled "
            "all-MiniLM-L6-v2.", "NEWSDESK_MODEL"),
    Setting("encoder", "choice", "auto", "How the model runs: `auto` (ONNX int8 on a CPU, torch on a GPU), "
            "`onnx-int8`, `onnx` (fp32) or `torch`.", "NEWSDESK_ENCODER", choices=("auto", "onnx-int8", "onnx", "torch")),
    Setting("device", "choice", "auto", "Where torch runs the model: `auto` (CUDA when torch sees a GPU), `cpu` or "
            "`cuda`.", "NEWSDESK_DEVICE", choices=("auto", "cpu", "cuda")),
    Setting("k", "int", 5, "Passages retrieved per question.", "NEWSDESK_K", low=1, high=50),
    Setting("follow_symlinks", "bool", False, "Index files that symbolic links in the corpus point to outside it.",
            "NEWSDESK_FOLLOW_SYMLINKS"),
    Setting("milvus_token", "str", "", "Credentials for a Milvus server (`user:password` or an API key).",
            "NEWSDESK_MILVUS_TOKEN", secret=True),
    # -- bot: the Discord front end (top-level keys of its TOML file, besides the newsdesk ones) --
    Setting("token", "str", "", "The bot's token, from the Discord developer portal (Bot -> Reset Token).",
            "DISCORD_TOKEN", "bot", secret=True),
    Setting("config", "path", "newsdesk-bot.toml", "The bot's settings file (TOML); only from the environment or "
            "--config.", "NEWSDESK_BOT_CONFIG", "bot", secret=True),
    Setting("allowed_channels", "ids", frozenset(), "Channel ids the bot answers in (threads count as their parent); "
            "empty: every channel it can see.", "NEWSDESK_BOT_CHANNELS", "bot"),
    Setting("admin_roles", "ids", frozenset(), "Role ids whose members may run /reindex and /channel; empty: the "
            "server owner only.", "NEWSDESK_BOT_ADMIN_ROLES", "bot"),
    Setting("rate_limit", "int", 5, "Questions per user per rate_window seconds; 0 turns the limit off.",
            "NEWSDESK_BOT_RATE_LIMIT", "bot", low=0),
    Setting("rate_window", "float", 60.0, "The rate limit's window, in seconds.", "NEWSDESK_BOT_RATE_WINDOW", "bot",
            low=0),
    Setting("answer_in_dms", "bool", False, "Answer direct messages too.", "NEWSDESK_BOT_DMS", "bot"),
    Setting("watch", "bool", False, "Keep the index current in the background while articles land in the corpus.",
            "NEWSDESK_BOT_WATCH", "bot"),
    Setting("feedback_log", "path", "feedback.jsonl", "Where votes and the answers they are about are appended.",
            "NEWSDESK_BOT_FEEDBACK_LOG", "bot"),
    Setting("message_content", "bool", True, "Ask Discord for the Message Content intent (follow-ups without a "
            "mention).", "NEWSDESK_BOT_MESSAGE_CONTENT", "bot"),
    Setting("sync_commands", "bool", True, "Register the slash commands at start when they changed.",
            "NEWSDESK_BOT_SYNC_COMMANDS", "bot"),
    Setting("command_guilds", "ids", frozenset(), "Register the commands in these servers only (instant); empty: "
            "globally.", "NEWSDESK_BOT_COMMAND_GUILDS", "bot"),
    Setting("max_question_chars", "int", 500, "Longer questions are cut to this many characters.",
            "NEWSDESK_BOT_MAX_QUESTION_CHARS", "bot", low=20),
    Setting("workers", "int", 2, "Questions answered at the same time (each keeps a core busy).",
            "NEWSDESK_BOT_WORKERS", "bot", low=1),
    Setting("max_queue", "int", 20, "Questions that may wait for a worker; more are asked to try again.",
            "NEWSDESK_BOT_MAX_QUEUE", "bot", low=0),
    Setting("max_conversations", "int", 2000, "Conversations kept in memory; older ones are rebuilt from Discord.",
            "NEWSDESK_BOT_MAX_CONVERSATIONS", "bot", low=1),
    Setting("shard_count", "int", 0, "Gateway shards; 0 lets Discord recommend a count (needed past 2,500 servers).",
            "NEWSDESK_BOT_SHARDS", "bot", low=0),
    Setting("health_port", "int", 0, "Serve /health and /metrics on this port; 0: off.", "NEWSDESK_BOT_HEALTH_PORT",
            "bot", low=0, high=65535),
    Setting("health_host", "str", "127.0.0.1", "The address /health and /metrics listen on.",
            "NEWSDESK_BOT_HEALTH_HOST", "bot"),
    # -- llm: optional generated answers ----------------------------------------------------
    Setting("provider", "choice", "", "`openai-compatible` (OpenAI, vLLM, llama.cpp's server, LM Studio) or "
            "`ollama`; empty: extractive answers only.", "NEWSDESK_LLM_PROVIDER", "llm",
            choices=("", "none", "openai-compatible", "ollama")),
    Setting("model", "str", "", "The model's name on that server, e.g. `llama3.2:1b`.", "NEWSDESK_LLM_MODEL", "llm"),
    Setting("base_url", "str", "", "The server's address, e.g. `http://localhost:8080/v1` (llama.cpp) or "
            "`http://localhost:11434` (Ollama); empty: the provider's usual one.", "NEWSDESK_LLM_BASE_URL", "llm"),
    Setting("api_key", "str", "", "The API key; local servers need none.", "NEWSDESK_LLM_API_KEY", "llm", secret=True),
    Setting("timeout", "float", 30.0, "Seconds one request may take (a stream: between two pieces).",
            "NEWSDESK_LLM_TIMEOUT", "llm", low=0.001),
    Setting("deadline", "float", 60.0, "Seconds a whole answer may take, retries included.", "NEWSDESK_LLM_DEADLINE",
            "llm", low=0.001, high=600),
    Setting("retries", "int", 2, "Further attempts after the first.", "NEWSDESK_LLM_RETRIES", "llm", low=0),
    Setting("backoff", "float", 0.5, "Seconds before the first retry; doubled each time.", "NEWSDESK_LLM_BACKOFF",
            "llm", low=0),
    Setting("temperature", "float", 0.0, "Sampling temperature.", "NEWSDESK_LLM_TEMPERATURE", "llm", low=0),
    Setting("max_tokens", "int", 400, "Longest reply, in tokens.", "NEWSDESK_LLM_MAX_TOKENS", "llm", low=1),
    Setting("context_window", "int", 8192, "The model's context window, in tokens.", "NEWSDESK_LLM_CONTEXT_WINDOW",
            "llm", low=256),
    Setting("stream", "bool", True, "Stream the reply (the bot shows checked sentences as they arrive).",
            "NEWSDESK_LLM_STREAM", "llm"),
    Setting("condense", "bool", True, "Rewrite chat follow-ups into standalone questions with the model.",
            "NEWSDESK_LLM_CONDENSE", "llm"),
)


def settings_in(*groups: str) -> dict[str, Setting]:
    return {s.name: s for s in SETTINGS if s.group in groups}


def setting(name: str, group: str = "newsdesk") -> Setting:
    return settings_in(group)[name]


def read_settings(group: str | tuple[str, ...], table: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None, *, where: str = "settings", base: Path | None = None,
                  extra: Iterable[str] = ()) -> dict[str, Any]:
    """Every setting of `group`, from `env` over `table` over the defaults, parsed and checked.

    `where` names the table in messages (e.g. "[llm] in newsdesk-bot.toml"); relative paths
    from the table are taken relative to `base` (the file's folder), those from the
    environment relative to the current folder. Keys of `table` in `extra` are left for the
    caller (sub-tables); any other unknown key is an error.
    """
    groups = (group,) if isinstance(group, str) else tuple(group)
    if any(g not in GROUPS for g in groups):
        raise ValueError(f"unknown settings group {group!r}")
    known = settings_in(*groups)
    table = dict(table or {})
    env = env or {}
    for s in known.values():
        for alias in s.aliases:
            if alias in table and s.name not in table:
                table[s.name] = table.pop(alias)
    for key in table:
        if key in known and known[key].secret:
            raise SettingsError(
                f"{where} holds {key}: remove it (settings files get shared and committed) and set "
                f"{known[key].env} in the environment instead")
    unknown = sorted(set(table) - set(known) - set(extra))
    if unknown:
        raise SettingsError(f"{where}: unknown setting(s) {', '.join(unknown)}; the settings are "
                            f"{', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for name, s in known.items():
        raw = env.get(s.env) if s.env else None
        if raw is not None and raw.strip():
            values[name] = parse(s, raw.strip(), s.env or name, base=Path.cwd())
        elif name in table:
            values[name] = parse(s, table[name], f"{name} in {where}", base=base or Path.cwd())
        else:
            values[name] = Path(s.default) if s.kind == "path" else s.default
    return values


def parse(s: Setting, value: Any, where: str, *, base: Path) -> Any:
    """One value, converted to the setting's type; a clear SettingsError when it cannot be."""
    if s.kind in ("path", "location"):
        if not isinstance(value, (str, Path)) or not str(value):
            raise SettingsError(f"{where} must be a path, not {value!r}")
        if s.kind == "location" and "://" in str(value):
            return str(value)
        p = Path(value).expanduser()
        p = p if p.is_absolute() else base / p
        return str(p) if s.kind == "location" else p
    if s.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.lower() in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{where} must be true or false, not {value!r}")
    if s.kind in ("int", "float"):
        if isinstance(value, bool):
            raise SettingsError(f"{where} must be a number, not {value!r}")
        try:
            number = int(value) if s.kind == "int" else float(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{where} must be a number, not {value!r}") from None
        if s.low is not None and number < s.low:
            raise SettingsError(f"{where} must be at least {s.low:g}, not {value!r}")
        if s.high is not None and number > s.high:
            raise SettingsError(f"{where} must be at most {s.high:g}, not {value!r}")
        return number
    if s.kind == "ids":
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise SettingsError(f"{where} must be a list of ids, like [123456789012345678]")
        try:
            return frozenset(int(str(i).strip()) for i in items)
        except ValueError:
            raise SettingsError(
                f"{where} must hold numeric ids (right-click -> Copy ID with Developer Mode on), not {value!r}"
            ) from None
    if not isinstance(value, str):
        raise SettingsError(f"{where} must be text, not {value!r}")
    if s.kind == "choice":
        value = value.strip().lower()
        if value not in s.choices:
            shown = ", ".join(c for c in s.choices if c)
            raise SettingsError(f"{where} must be one of {shown}, not {value!r}")
    return value
