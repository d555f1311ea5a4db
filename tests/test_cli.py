"""The `newsdesk` command end to end, in a temporary working directory."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURE_CORPUS, SAMPLE_CORPUS
from click.testing import CliRunner

from newsdesk.cli import EXIT_SKIPPED, app


@pytest.fixture
def workdir(tmp_path, monkeypatch, embedder):  # embedder: the model is loaded once and reused
    shutil.copytree(SAMPLE_CORPUS, tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWSDESK_CORPUS", raising=False)
    monkeypatch.delenv("NEWSDESK_INDEX", raising=False)
    return tmp_path


def run(*args):
    result = CliRunner().invoke(app, list(args))
    return result


def test_ask_builds_the_index_on_first_use_then_answers_as_json(workdir):
    result = run("ask", "How many Venezuelan security personnel were killed?", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["question"] == "How many Venezuelan security personnel were killed?"
    assert not data["abstained"] and "up to 80" in data["answer"]
    assert (workdir / "index" / "CURRENT").exists()
    assert "Building the index in index/ from corpus/" in result.stderr


def test_search_json_shape_and_k(workdir):
    assert run("index").exit_code == 0
    result = run("search", "Pentagon official statement", "--json", "-k", "2")
    data = json.loads(result.stdout)
    assert list(data) == ["query", "results"] and len(data["results"]) == 2
    assert {"doc_id", "title", "url", "published", "text", "start", "end", "score"} <= set(data["results"][0])


def test_index_reports_skipped_files_and_exits_3(workdir):
    (workdir / "corpus" / "broken.jsonl").write_text('{"text": "A fine record about the harbour."}\n{oops\n')
    result = run("index")
    assert result.exit_code == EXIT_SKIPPED
    assert "broken.jsonl:2: malformed JSON" in result.stderr
    assert "2 added" in " ".join(result.stderr.split())
    assert run("index").exit_code == EXIT_SKIPPED  # still reported until the file is fixed
    (workdir / "corpus" / "broken.jsonl").write_text('{"text": "A fine record about the harbour."}\n')
    result = run("index")
    assert result.exit_code == 0
    assert "0 added, 0 updated, 0 removed, 2 unchanged" in " ".join(result.stderr.split())


def test_env_vars_choose_corpus_and_index(workdir, monkeypatch):
    shutil.copytree(FIXTURE_CORPUS, workdir / "news")
    monkeypatch.setenv("NEWSDESK_CORPUS", str(workdir / "news"))
    monkeypatch.setenv("NEWSDESK_INDEX", str(workdir / "news-index"))
    result = run("ask", "How many runners are expected at the marathon?", "--json", "--source", "gazette")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["citations"][0]["doc_id"] == "gazette/marathon.pdf"
    stats = json.loads(run("stats", "--json").stdout)
    assert stats["documents"] == 8 and stats["model"] == "all-MiniLM-L6-v2"
    assert not (workdir / "index").exists()


def test_chat_repl_rewrites_follow_ups(workdir):
    result = CliRunner().invoke(app, ["chat"], input="How many Venezuelan security personnel were killed?\nand who confirmed it?\n\n")
    assert result.exit_code == 0, result.output
    assert "(searched for: and who confirmed it? Venezuelan" in result.stdout
    assert result.stdout.count("Sources") == 2


def test_errors_are_one_line_with_what_to_do(workdir):
    result = run("stats")
    assert result.exit_code == 1 and "run `newsdesk index`" in result.stderr
    result = run("index", "--corpus", "missing")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    assert run("index").exit_code == 0
    result = run("ask", "anything", "--model", str(workdir))
    assert result.exit_code == 1 and "--rebuild" in result.stderr
    result = run("ask", "ferry", "--since", "yesterday")
    assert result.exit_code == 2 and "'yesterday' is not a date like 2026-01-31" in result.stderr


def test_readme_command_from_a_fresh_directory(tmp_path):
    """The installed console script, as a new user runs it (a separate process, no shared model)."""
    shutil.copytree(SAMPLE_CORPUS, tmp_path / "corpus")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("NEWSDESK_INDEX", None)
    env.pop("NEWSDESK_CORPUS", None)
    exe = shutil.which("newsdesk") or f"{sys.executable} -m newsdesk"
    proc = subprocess.run([*exe.split(), "ask", "How many Venezuelan security personnel were killed?"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "up to 80 Venezuelan security personnel were killed" in " ".join(proc.stdout.split())
    assert "Sources" in proc.stdout and "[1]" in proc.stdout


def test_every_setting_is_documented():
    """docs/settings.md lists every row of the settings table with its environment variable."""
    from newsdesk.settings import SETTINGS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "settings.md").read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    for s in SETTINGS:
        assert any(f"`{s.name}`" in r and f"`{s.env}`" in r for r in rows), f"{s.name} ({s.env}) is not documented"


def test_piped_output_keeps_titles_and_quotes_on_one_line(workdir):
    """Not a terminal: nothing is hard-wrapped, a title shows once per article, quotes are not
    doubled in quote marks, and no progress bar or library warning reaches the output."""
    assert run("index").exit_code == 0
    data = json.loads(run("ask", "How many Venezuelan security personnel were killed?", "--json").stdout)
    env = {k: v for k, v in os.environ.items() if k not in ("NEWSDESK_CORPUS", "NEWSDESK_INDEX")} | {"COLUMNS": "40"}
    done = subprocess.run([sys.executable, "-m", "newsdesk", "ask", "How many Venezuelan security personnel were killed?"],
                          cwd=workdir, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    cited = data["citations"][0]
    assert lines[0] == data["answer"]  # the answer is one line, however narrow the terminal would be
    assert any(line.endswith(f"> {' '.join(cited['quote'].split())}") for line in lines)
    sources = lines[lines.index("Sources"):lines.index("Related") if "Related" in lines else len(lines)]
    assert sum(cited["title"] in line for line in sources) == 1  # one heading for the article's citations
    assert "““" not in done.stdout and "%|" not in done.stderr and "audioop" not in done.stderr
