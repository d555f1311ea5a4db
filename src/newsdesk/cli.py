"""The `newsdesk` command: every command is a thin layer over `newsdesk.Desk`.

Options, their environment variables and help come from the settings table
(`newsdesk.settings`). Nothing heavy is imported until a command needs it, and arguments are
checked before anything is loaded, so `--help`, `stats` and `check` answer at once.

Exit codes: 0 success; 1 an error (the message says what to do); 2 a usage error (a bad
argument or setting); 3 the index was updated but some files were skipped (each is listed).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from newsdesk.errors import NewsdeskError
from newsdesk.settings import read_settings, setting

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SKIPPED = 3


# -- output -------------------------------------------------------------------------------------
class Out:
    """stdout for results, stderr for progress and messages; colour only on a terminal, never wrapped
    when piped (a pipe gets whole lines)."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.err_tty = sys.stderr.isatty()

    def line(self, text: str = "", *, style: str | None = None) -> None:
        click.echo(click.style(text, **_STYLES[style]) if style and self.tty else text)

    def note(self, text: str, *, style: str | None = None) -> None:
        click.echo(click.style(text, **_STYLES[style]) if style and self.err_tty else text, err=True)


_STYLES: dict[str, dict[str, Any]] = {
    "answer": {"bold": True}, "abstain": {"fg": "yellow"}, "dim": {"dim": True}, "head": {"bold": True},
    "error": {"fg": "red", "bold": True}, "warn": {"fg": "yellow"},
}
out = Out()


def fail(err: NewsdeskError) -> None:
    out.note(f"error: {err}", style="error")
    raise SystemExit(err.exit_code)


def run_safely(fn: Callable[[], int | None]) -> None:
    """Run a command: a NewsdeskError is one line and its exit code; a closed pipe is not an error."""
    try:
        code = fn() or 0
    except NewsdeskError as err:
        fail(err)
    except BrokenPipeError:
        _quiet_stdout()
        code = 0
    except KeyboardInterrupt:
        out.note("interrupted")
        code = 130
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
    raise SystemExit(code)


def _quiet_stdout() -> None:
    """`newsdesk ask ... | head`: the reader left; drop what is still buffered."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


# -- options from the settings table --------------------------------------------------------
def option(name: str, *flags: str, **kwargs: Any) -> Callable:
    s = setting(name)
    kwargs.setdefault("help", s.help)
    kwargs.setdefault("show_envvar", bool(s.env))
    if s.kind == "choice":
        kwargs.setdefault("type", click.Choice([c for c in s.choices if c]))
    elif s.kind == "int":
        kwargs.setdefault("type", click.IntRange(int(s.low) if s.low is not None else None,
                                                 int(s.high) if s.high is not None else None))
    elif s.kind == "bool":
        kwargs.setdefault("is_flag", True)
    elif s.kind == "path":
        kwargs.setdefault("type", click.Path(path_type=Path))
    kwargs.setdefault("default", s.default)
    kwargs.setdefault("show_default", s.kind not in ("bool",) and s.default not in ("", None))
    return click.option(*(flags or (f"--{name.replace('_', '-')}",)), name, envvar=s.env, **kwargs)


def corpus_option(f: Callable) -> Callable:
    return option("corpus", "--corpus", metavar="DIR")(f)


def index_option(f: Callable) -> Callable:
    return option("index", "--index", metavar="DIR")(f)


def model_option(f: Callable) -> Callable:
    return option("model", "--model", metavar="DIR")(f)


def k_option(f: Callable) -> Callable:
    return option("k", "-k", metavar="N")(f)


def filter_options(f: Callable) -> Callable:
    f = click.option("--source", metavar="NAME", help="Only articles from this source (case-insensitive).")(f)
    f = click.option("--until", metavar="DATE", callback=_date, help="Only articles published on or before this "
                     "date (YYYY-MM-DD).")(f)
    return click.option("--since", metavar="DATE", callback=_date, help="Only articles published on or after this "
                        "date (YYYY-MM-DD).")(f)


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-01-31") from None


def _text(ctx: click.Context, param: click.Parameter, value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise click.BadParameter("it is empty: put your text in quotes, e.g. newsdesk ask \"Who won?\"")
    return value


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (the same shape as the Python "
                        "API's to_dict()) instead of text.")(f)


def _explicit(ctx: click.Context, name: str) -> bool:
    """Given on the command line (not a default, not from the environment)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


# -- the commands -----------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="newsdesk", message="newsdesk %(version)s")
def app() -> None:
    """Ask questions about a folder of news articles; get short answers in which every sentence is
    quoted from an article and cites it.

    \b
    First run:   newsdesk ask "How many Venezuelan security personnel were killed?"
                 (builds index/ from corpus/ on first use)
    Keep current: newsdesk index   (or newsdesk watch)
    """
    _set_up_logging()


def _set_up_logging() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for noisy in ("pypdf", "trafilatura", "httpx", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@app.command()
@corpus_option
@index_option
@model_option
@option("encoder", "--encoder")
@option("device", "--device")
@option("follow_symlinks", "--follow-symlinks")
@click.option("--rebuild", is_flag=True, help="Build from scratch beside the live index and switch to it when done.")
def index(corpus: Path, index: str, model: str, encoder: str, device: str, follow_symlinks: bool,
          rebuild: bool) -> None:
    """Build or update the index from the corpus folder.

    Only new and changed articles are read and embedded; removed ones are dropped. A build that
    was interrupted is continued where it stopped.
    """
    def run() -> int:
        report = _build(Path(corpus), index, model, encoder=encoder, device=device,
                        follow_symlinks=follow_symlinks, rebuild=rebuild)[1]
        return EXIT_SKIPPED if report.skipped else 0

    run_safely(run)


@app.command()
@click.argument("question", callback=_text)
@corpus_option
@index_option
@model_option
@json_option
@k_option
@filter_options
@click.option("--timeline/--no-timeline", default=None,
              help="Answer as a dated timeline, one cited sentence per date (default: when the question asks how "
                   "something changed).")
@click.pass_context
def ask(ctx: click.Context, question: str, corpus: Path, index: str, model: str, as_json: bool, k: int,
        since: str | None, until: str | None, source: str | None, timeline: bool | None) -> None:
    """Answer QUESTION from the articles, citing the sentences the answer is made of."""
    def run() -> int:
        desk, report = _open(ctx, Path(corpus), index, model)
        result = desk.ask(question, k=k, since=since, until=until, source=source, timeline=timeline)
        if as_json:
            out.line(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        else:
            print_answer(result)
        return EXIT_SKIPPED if report is not None and report.skipped else 0

    run_safely(run)


@app.command()
@click.argument("query", callback=_text)
@corpus_option
@index_option
@model_option
@json_option
@k_option
@filter_options
@click.option("--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid", show_default=True,
              help="Rank by both dense and keyword search (fused), or by one of them.")
@click.pass_context
def search(ctx: click.Context, query: str, corpus: Path, index: str, model: str, as_json: bool, k: int,
           since: str | None, until: str | None, source: str | None, mode: str) -> None:
    """Show the passages that best match QUERY."""
    def run() -> int:
        desk, report = _open(ctx, Path(corpus), index, model)
        passages = desk.search(query, k=k, since=since, until=until, source=source, mode=mode)
        if as_json:
            out.line(json.dumps({"query": query, "results": [p.to_dict() for p in passages]}, ensure_ascii=False,
                                indent=2))
        elif not passages:
            out.line("No passage matches.")
        for i, p in enumerate(passages if not as_json else [], start=1):
            out.line(f"{i}. {p.title}", style="head")
            out.line(f"   {_meta(p.source, p.published, p.url)}  score {p.score:.4f}", style="dim")
            out.line(f"   {' '.join(p.text.split())}")
            out.line()
        return EXIT_SKIPPED if report is not None and report.skipped else 0

    run_safely(run)


@app.command()
@corpus_option
@index_option
@model_option
@k_option
@click.pass_context
def chat(ctx: click.Context, corpus: Path, index: str, model: str, k: int) -> None:
    """Ask questions one after another; follow-ups ("and who confirmed it?") build on earlier turns.

    Type /clear to start a new conversation, /quit (or an empty line, or Ctrl-D) to stop.
    """
    def run() -> int:
        from newsdesk.chat import is_command

        session = _open(ctx, Path(corpus), index, model)[0].chat()
        out.note("Ask a question. /clear starts over; /quit, an empty line or Ctrl-D ends the chat.")
        while True:
            try:
                question = input("> ").strip()
            except EOFError:
                break
            if not question:
                break
            command = is_command(question)
            if command == "quit":
                break
            if command == "clear":
                session.clear()
                out.note("Cleared: the next question starts a new conversation.")
                continue
            if command == "help":
                out.note("Ask anything about the articles. Follow-ups use the conversation so far. "
                         "/clear starts over; /quit ends the chat.")
                continue
            try:
                result = session.ask(question, k=k)
            except NewsdeskError as err:
                out.note(f"error: {err}", style="error")
                continue
            if result.query:
                out.line(f"(searched for: {result.query})", style="dim")
            print_answer(result)
        return 0

    run_safely(run)


@app.command()
@corpus_option
@index_option
@model_option
@click.option("--debounce", type=float, default=1.0, show_default=True, help="Seconds of quiet before an update.")
@click.option("--settle", type=float, default=1.0, show_default=True,
              help="A file changed less than this many seconds ago waits for the next update.")
@click.option("--poll", is_flag=True, help="Poll the folder instead of using filesystem events.")
def watch(corpus: Path, index: str, model: str, debounce: float, settle: float, poll: bool) -> None:
    """Keep the index current while articles are added, changed or deleted (Ctrl-C stops)."""
    def run() -> int:
        import logging
        import time

        from newsdesk.watch import Watcher

        logging.getLogger("newsdesk").setLevel(logging.INFO)
        desk = _build(Path(corpus), index, model)[0]
        out.note(f"Watching {corpus} for changes (Ctrl-C stops).")
        with Watcher(desk, debounce=debounce, settle=settle, poll=poll):
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0

    run_safely(run)


@app.command("discord")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Bot settings file (default: $NEWSDESK_BOT_CONFIG or ./newsdesk-bot.toml).")
@click.option("--index", metavar="DIR", help="Index folder (overrides the settings file).")
@click.option("--corpus", type=click.Path(path_type=Path), metavar="DIR",
              help="Corpus folder (overrides the settings file).")
def discord_bot(config: Path | None, index: str | None, corpus: Path | None) -> None:
    """Run the Discord bot (the token comes from $DISCORD_TOKEN; see docs/discord.md)."""
    import importlib

    try:
        runner = importlib.import_module("newsdesk_bot.runner")
    except ModuleNotFoundError as err:
        if err.name not in ("newsdesk_bot", "newsdesk_bot.runner"):
            raise
        out.note("error: the Discord front end is not installed: run pip install -e . from the newsdesk folder",
                 style="error")
        raise SystemExit(EXIT_ERROR) from None
    raise SystemExit(runner.run(config, index_dir=index, corpus_dir=corpus))


@app.command()
@index_option
@json_option
@click.pass_context
def stats(ctx: click.Context, index: str, as_json: bool) -> None:
    """What the index holds: articles, chunks, model, sources, last update."""
    def run() -> int:
        from newsdesk.backend import open_backend
        from newsdesk.desk import index_stats

        info = index_stats(_existing(open_backend(index, token=_token(), hint=_index_hint(ctx, index)), ctx, index))
        if as_json:
            out.line(json.dumps(info.to_dict(), indent=2, ensure_ascii=False))
            return 0
        chunking = info.chunking
        rows = [
            ("Index", f"{info.index} (generation {info.generation})"),
            ("Articles", f"{info.documents:,} in {info.chunks:,} chunks ({info.segments} segment"
                         f"{'s' if info.segments != 1 else ''})"),
            ("Model", f"{info.model}, {info.encoder}, {info.dimension} dimensions; chunks of "
                      f"{chunking['chunk_tokens']} word pieces, {chunking['overlap_tokens']} overlapping"),
            ("Created", info.created),
            ("Updated", info.updated),
            ("Sources", ", ".join(f"{name} {n:,}" for name, n in info.sources.items()) or "none"),
        ]
        for label, value in rows:
            out.line(f"{label:<9} {value}")
        return 0

    run_safely(run)


@app.command()
@index_option
@click.pass_context
def check(ctx: click.Context, index: str) -> None:
    """Verify that the index is whole: manifest, vectors, keyword index and chunks agree."""
    def run() -> int:
        from newsdesk.backend import open_backend

        problems = _existing(open_backend(index, token=_token(), hint=_index_hint(ctx, index)), ctx, index).check()
        for problem in problems:
            out.note(f"problem: {problem}", style="error")
        if problems:
            out.note(f"error: {index} is inconsistent: run `newsdesk index --rebuild{_index_flag(ctx, index)}` to "
                     "rebuild it", style="error")
            return EXIT_ERROR
        out.line(f"{index} is consistent.")
        return 0

    run_safely(run)


# -- helpers ------------------------------------------------------------------------------------
def _index_flag(ctx: click.Context, index: str) -> str:
    return f" --index {index}" if _explicit(ctx, "index") else ""


def _index_hint(ctx: click.Context, index: str) -> str:
    return f"run `newsdesk index{_index_flag(ctx, index)}` to build one from your corpus"


def _existing(backend: Any, ctx: click.Context, index: str) -> Any:
    if not backend.exists():
        from newsdesk.errors import IndexMissing

        raise IndexMissing(f"no index in {index}: {_index_hint(ctx, index)}")
    return backend


def _token() -> str:
    return str(read_settings("newsdesk", env=os.environ)["milvus_token"])


def _llm() -> Any:
    from newsdesk.llm import LLMSettings

    return LLMSettings.from_settings(read_settings("llm", env=os.environ))


def _build(corpus: Path, index: str, model: str, *, encoder: str = "auto", device: str = "auto",
           follow_symlinks: bool = False, rebuild: bool = False) -> tuple[Any, Any]:
    from newsdesk.desk import Desk

    desk = Desk.build(corpus, index, model=model, encoder=encoder, device=device, rebuild=rebuild,
                      follow_symlinks=follow_symlinks, progress=out.err_tty, llm=_llm(), milvus_token=_token())
    report = desk.last_update
    print_report(report, index)
    return desk, report


def _open(ctx: click.Context, corpus: Path, index: str, model: str) -> tuple[Any, Any]:
    """The desk for a question; the default index is built on first use, an index named explicitly never is."""
    from newsdesk.backend import open_backend
    from newsdesk.desk import Desk
    from newsdesk.errors import IndexMissing

    if not open_backend(index, token=_token()).exists():
        if _explicit(ctx, "index"):
            raise IndexMissing(f"no index in {index}: {_index_hint(ctx, index)}")
        out.note(f"Building the index in {index}/ from {corpus}/ (first run only)...")
        return _build(corpus, index, model)
    model_arg = model if _explicit(ctx, "model") else None
    return Desk.open(index, corpus=corpus, model=model_arg, llm=_llm(), milvus_token=_token()), None


def print_report(report: Any, index: str) -> None:
    for skipped in report.skipped:
        out.note(f"skipped {skipped}", style="warn")
    for warning in report.warnings:
        out.note(f"warning {warning}", style="warn")
    if report.ignored:
        out.note(f"ignored {len(report.ignored)} file(s) newsdesk does not read (e.g. {report.ignored[0]})")
    what = "Resumed and finished building" if report.resumed else "Built" if report.rebuilt else "Updated"
    out.note(f"{what} {index}: {len(report.added)} added, {len(report.updated)} updated, "
             f"{len(report.removed)} removed, {report.unchanged} unchanged; {_count(report.chunks_embedded, 'chunk')} "
             f"embedded in {report.seconds:.1f} s. Now {_count(report.documents, 'article')}, "
             f"{_count(report.chunks, 'chunk')}.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _meta(*parts: str | None) -> str:
    return " · ".join(p for p in parts if p)


def where(c: Any) -> str:
    """Where a quote sits, in words: the file, a record's text, or the text extracted from a page."""
    span = f"characters {c.start}–{c.end}"
    if c.offsets_in == "record":
        return f"{span} of the \"text\" of record {c.doc_id} in {c.path}"
    if c.offsets_in == "extracted":
        return f"{span} of the text extracted from {c.path}"
    return f"{c.path}, {span}"


def print_answer(result: Any) -> None:
    from newsdesk.story import human_date

    out.line(result.text, style="abstain" if result.abstained else "answer")
    out.line()
    for note in result.notes:
        out.line(note, style="dim")
    if result.as_of:
        out.line(f"As of {human_date(result.as_of)}.", style="dim")
    for newer in result.newer:
        out.line(f"A newer article on this story exists: {newer.title} ({_meta(newer.source, newer.published)})",
                 style="dim")
    if result.notes or result.as_of or result.newer:
        out.line()
    _print_sources("Sources", result.citations, quotes=True)
    _print_sources("Related", result.related, quotes=True)


def _print_sources(heading: str, citations: Any, *, quotes: bool) -> None:
    if not citations:
        return
    out.line(heading, style="head")
    groups: list[list[Any]] = []
    for c in citations:  # consecutive citations of one article share its heading
        if groups and groups[-1][0].doc_id == c.doc_id:
            groups[-1].append(c)
        else:
            groups.append([c])
    for group in groups:
        first = group[0]
        numbers = "".join(f"[{c.n}]" for c in group)
        out.line(f"  {numbers} {first.title}")
        meta = _meta(first.source, first.published, first.url)
        extra = []
        if first.also_reported_by:
            extra.append("also reported by " + ", ".join(_meta(r.source or r.title, r.published)
                                                        for r in first.also_reported_by))
        if first.sources_count > 1:
            extra.append(f"reported by {first.sources_count} sources")
        if meta or extra:
            out.line(f"      {'; '.join([meta, *extra]) if meta else '; '.join(extra)}", style="dim")
        for c in group:
            label = f"[{c.n}] " if len(group) > 1 else ""
            out.line(f"      {label}> {' '.join(c.quote.split())}")
            out.line(f"        ({where(c)})", style="dim")
    out.line()


def main() -> None:
    app(prog_name="newsdesk")


if __name__ == "__main__":
    main()
