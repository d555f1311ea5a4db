"""Starting the bot: settings from TOML and the environment, and the one-line errors for a bad token."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsdesk_bot.ratelimit import RateLimiter
from newsdesk_bot.runner import run
from newsdesk_bot.settings import BotSettings, SettingsError, discord_token, load_settings
from discord_server import server_in_thread

ROOT = Path(__file__).resolve().parents[1]


# -- settings ----------------------------------------------------------------------------------
def test_example_settings_file_loads_and_paths_are_relative_to_it(tmp_path: Path) -> None:
    example = (ROOT / "bot" / "newsdesk-bot.example.toml").read_text(encoding="utf-8")
    config = tmp_path / "conf" / "newsdesk-bot.toml"
    config.parent.mkdir()
    config.write_text(example, encoding="utf-8")
    settings = load_settings(config, env={})
    assert settings.index == str(config.parent / "index") and settings.corpus == config.parent / "corpus"
    assert settings.feedback_log == config.parent / "feedback.jsonl"
    assert settings.allowed_channels == frozenset() and settings.rate_limit == 5


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('index_dir = "idx"\nallowed_channels = [111, 222]\nanswer_in_dms = false\n'
                      'rate_limit = 2\nadmin_roles = ["333"]\n', encoding="utf-8")
    env = {"NEWSDESK_BOT_CHANNELS": "444, 555", "NEWSDESK_BOT_DMS": "yes", "NEWSDESK_INDEX": "/srv/index",
           "NEWSDESK_BOT_RATE_WINDOW": "30"}
    s = load_settings(config, env=env)
    assert s.allowed_channels == {444, 555} and s.answer_in_dms is True
    assert s.index == "/srv/index" and s.rate_window == 30.0
    assert s.rate_limit == 2 and s.admin_roles == {333}


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}) == BotSettings()


@pytest.mark.parametrize("text, message", [
    ('token = "abc"', "holds a token: remove it from the file"),
    ('chanels = [1]', "unknown setting(s) chanels; the settings are"),
    ('allowed_channels = ["general"]', "must hold numeric ids"),
    ('answer_in_dms = "maybe"', "must be true or false"),
    ('rate_limit = -1', "rate_limit in"),
    ('k = 0', "must be at least 1, not 0"),
    ('k = 51', "must be at most 50, not 51"),
    ('index = "milvus-lite:///srv/x.db"\nwatch = "yes please"', "watch in"),
    ('index_dir = [', "is not valid TOML"),
])
def test_bad_settings_say_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=None) as err:
        load_settings(config, env={})
    assert message in str(err.value)


def test_a_named_settings_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no settings file at .*copy bot/newsdesk-bot.example.toml"):
        load_settings(tmp_path / "nope.toml", env={})


def test_token_comes_only_from_the_environment() -> None:
    assert discord_token({"DISCORD_TOKEN": "  abc.def  "}) == "abc.def"
    with pytest.raises(SettingsError, match="DISCORD_TOKEN is not set"):
        discord_token({"DISCORD_TOKEN": " "})


def test_rate_limiter_is_a_sliding_window_per_user() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0])
    assert limiter.acquire(1) == 0 and limiter.acquire(1) == 0
    assert limiter.acquire(1) == 60  # the oldest question leaves the window in 60 s
    assert limiter.acquire(2) == 0  # other users are not affected
    now[0] = 30
    assert limiter.acquire(1) == 30
    now[0] = 60
    assert limiter.acquire(1) == 0
    assert RateLimiter(0, 60).acquire(1) == 0  # 0 turns it off


# -- tokens ------------------------------------------------------------------------------------
def test_missing_token_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("NEWSDESK_BOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: DISCORD_TOKEN is not set: copy your bot's token")


def test_rejected_token_is_a_one_line_error_that_never_shows_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture) -> None:
    wrong = "MTE.this-token-was-revoked.xyz"
    monkeypatch.setenv("DISCORD_TOKEN", wrong)
    monkeypatch.delenv("NEWSDESK_BOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with server_in_thread() as server:
        assert run(index_dir=tmp_path / "no-index") == 1
        assert [r.path for r in server.requests] == ["/users/@me"]
        assert server.requests[0].headers["Authorization"] == f"Bot {wrong}"
    captured = capsys.readouterr()
    assert captured.err == ("error: Discord rejected the token in DISCORD_TOKEN: reset it at "
                            "https://discord.com/developers/applications (your application -> Bot -> Reset Token) "
                            "and set DISCORD_TOKEN to the new one\n")
    assert wrong not in captured.out + captured.err


def test_python_dash_m_newsdesk_bot_runs_the_bot_and_exits_non_zero_without_a_token(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "newsdesk_bot"], cwd=tmp_path, env=environment, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("error: DISCORD_TOKEN is not set")


def test_missing_index_is_a_one_line_error_after_a_good_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("NEWSDESK_BOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with server_in_thread() as server:
        monkeypatch.setenv("DISCORD_TOKEN", server.TOKEN)
        assert run(index_dir=tmp_path / "no-index") == 1
    err = capsys.readouterr().err
    assert err == f"error: no index in {tmp_path / 'no-index'}: run `newsdesk index` to build one from your corpus\n"
    assert server.TOKEN not in err


def test_no_voice_library_warnings_at_start(caplog: pytest.LogCaptureFixture) -> None:
    import discord

    from newsdesk_bot.client import NewsdeskBot

    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = True  # as in a fresh process without PyNaCl
    caplog.set_level(logging.WARNING, logger="discord")
    NewsdeskBot(BotSettings(), desk=None)
    assert not [r for r in caplog.records if "voice will NOT be supported" in r.getMessage()]


def test_the_bot_imports_only_the_public_newsdesk_api() -> None:
    """Issue 14: the core library can be restructured freely behind `newsdesk`'s exports."""
    import ast

    import newsdesk

    for module in sorted((ROOT / "bot").glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "newsdesk":
                assert node.module == "newsdesk", f"{module.name} imports {node.module}"
                assert {a.name for a in node.names} <= set(newsdesk.__all__), module.name
            elif isinstance(node, ast.Import):
                assert not [a.name for a in node.names if a.name.startswith("newsdesk.")], module.name


def test_recent_forgets_the_least_recently_used_and_stays_bounded() -> None:
    from newsdesk_bot.memory import Recent

    gone: list[int] = []
    recent: Recent[int, str] = Recent(2, on_evict=lambda k, v: gone.append(k))
    recent[1], recent[2] = "a", "b"
    assert recent[1] == "a"  # reading 1 makes 2 the least recently used
    recent[3] = "c"
    assert gone == [2] and sorted(recent) == [1, 3]
    assert 2 not in recent and recent.get(2) is None
    for i in range(100):
        recent[i] = "x"
    assert len(recent) == 2
