"""The `newsdesk` command: every command is a thin layer over `newsdesk.Desk`.

Exit codes: 0 success; 1 an error (the message says what to do); 2 a usage error;
3 the index was updated but some files were skipped (each is listed with its reason).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    help="Ask questions about a folder of news articles and get short answers that cite their sources.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

EXIT_SKIPPED = 3

CorpusOpt = Annotated[Path, typer.Option("--corpus", envvar="NEWSDESK_CORPUS", help="Folder of articles.")]
IndexOpt = Annotated[Path, typer.Option("--index", envvar="NEWSDESK_INDEX", help="Folder the index lives in.")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", envvar="NEWSDESK_MODEL",
    help="A sentence-transformers model folder (default: the bundled all-MiniLM-L6-v2).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of formatted text.")]
KOpt = Annotated[int, typer.Option("-k", min=1, max=50, help="How many passages to retrieve.")]
SinceOpt = Annotated[Optional[str], typer.Option(help="Only articles published on or after this date (YYYY-MM-DD).")]
UntilOpt = Annotated[Optional[str], typer.Option(help="Only articles published on or before this date (YYYY-MM-DD).")]
SourceOpt = Annotated[Optional[str], typer.Option(help="Only articles from this source.")]


@app.callback()
def _main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s")


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)


def _known_errors() -> tuple[type[Exception], ...]:
    from newsdesk.embed import ModelNotFound
    from newsdesk.index import IndexMismatch
    from newsdesk.layout import IndexBusy
    from newsdesk.reader import IndexMissing

    return (IndexMismatch, IndexMissing, IndexBusy, ModelNotFound, FileNotFoundError, ValueError)


def _open_desk(corpus: Path, index: Path, model: Optional[str], *, build_if_missing: bool = True):
    """Open the index, building it from the corpus first when there is none yet."""
    from newsdesk.desk import Desk
    from newsdesk.layout import current_store

    from newsdesk.llm import LLMSettings

    llm = LLMSettings.from_env()  # NEWSDESK_LLM_*: generated answers; unset: extractive
    if current_store(index) is None and build_if_missing:
        err.print(f"No index in {index} yet: building it from {corpus} (once).")
        desk = _run_index(corpus, index, model, rebuild=False)[0]
        return Desk(desk.settings, desk.embedder, llm=llm) if llm else desk
    return Desk.open(index, model=model, corpus_dir=corpus, llm=llm)


def _run_index(corpus: Path, index: Path, model: Optional[str], *, rebuild: bool):
    from newsdesk.desk import Desk

    err.print("Loading the embedding model...")
    desk = Desk.build(corpus, index, model=model, rebuild=rebuild, progress=True)
    report = desk.last_update
    for skipped in report.skipped:
        err.print(f"[yellow]skipped[/yellow] {escape(str(skipped))}")
    if report.ignored:
        err.print(f"ignored {len(report.ignored)} file(s) with unsupported extensions "
                  f"(e.g. {escape(report.ignored[0])})")
    err.print(
        f"{'Rebuilt' if report.rebuilt else 'Updated'} {index}: {len(report.added)} added, "
        f"{len(report.updated)} updated, {len(report.removed)} removed, {report.unchanged} unchanged; "
        f"{report.chunks_embedded} chunks embedded in {report.seconds:.1f} s. "
        f"Now {report.documents} documents, {report.chunks} chunks."
    )
    return desk, report


@app.command()
def index(corpus: CorpusOpt = Path("corpus"), index: IndexOpt = Path("index"), model: ModelOpt = None,
          rebuild: Annotated[bool, typer.Option("--rebuild", help="Build from scratch instead of updating.")] = False) -> None:
    """Build or update the index from the corpus folder (only new and changed articles are embedded)."""
    try:
        _, report = _run_index(corpus, index, model, rebuild=rebuild)
    except _known_errors() as e:
        raise _fail(str(e))
    if report.skipped:
        raise typer.Exit(EXIT_SKIPPED)


@app.command()
def ask(question: Annotated[str, typer.Argument(help="Your question, in quotes.")],
        corpus: CorpusOpt = Path("corpus"), index: IndexOpt = Path("index"), model: ModelOpt = None,
        as_json: JsonOpt = False, k: KOpt = 5, since: SinceOpt = None, until: UntilOpt = None,
        source: SourceOpt = None) -> None:
    """Answer a question from the corpus, citing the sentences the answer is made of."""
    try:
        desk = _open_desk(corpus, index, model)
        result = desk.ask(question, k=k, since=since, until=until, source=source)
    except _known_errors() as e:
        raise _fail(str(e))
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_answer(result)


@app.command()
def search(query: Annotated[str, typer.Argument(help="What to look for.")],
           corpus: CorpusOpt = Path("corpus"), index: IndexOpt = Path("index"), model: ModelOpt = None,
           as_json: JsonOpt = False, k: KOpt = 5, since: SinceOpt = None, until: UntilOpt = None,
           source: SourceOpt = None) -> None:
    """Show the passages that best match a query (hybrid dense + keyword retrieval)."""
    try:
        desk = _open_desk(corpus, index, model)
        passages = desk.search(query, k=k, since=since, until=until, source=source)
    except _known_errors() as e:
        raise _fail(str(e))
    if as_json:
        print(json.dumps({"query": query, "results": [p.to_dict() for p in passages]}, ensure_ascii=False, indent=2))
        return
    if not passages:
        out.print("No passages match.")
    for i, p in enumerate(passages, start=1):
        out.print(f"[bold]{i}. {escape(p.title)}[/bold]  [dim]{_meta(p.published, p.url)} score {p.score:.4f}[/dim]")
        out.print(escape(p.text), "\n")


@app.command()
def chat(corpus: CorpusOpt = Path("corpus"), index: IndexOpt = Path("index"), model: ModelOpt = None,
         k: KOpt = 5) -> None:
    """Ask questions one after another; follow-ups ("and who confirmed it?") use the earlier turns."""
    try:
        session = _open_desk(corpus, index, model).chat()
    except _known_errors() as e:
        raise _fail(str(e))
    out.print("Ask a question (an empty line or Ctrl-D ends the chat).")
    while True:
        try:
            question = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not question:
            break
        result = session.ask(question, k=k)
        if result.query and result.query != question:
            out.print(f"[dim](searched for: {escape(result.query)})[/dim]")
        print_answer(result)


@app.command()
def watch(corpus: CorpusOpt = Path("corpus"), index: IndexOpt = Path("index"), model: ModelOpt = None,
          debounce: Annotated[float, typer.Option(help="Seconds of quiet before an update.")] = 1.0,
          settle: Annotated[float, typer.Option(help="A file changed less than this many seconds ago waits.")] = 1.0,
          poll: Annotated[bool, typer.Option("--poll", help="Poll instead of filesystem events.")] = False) -> None:
    """Keep the index current while articles are added, changed or deleted (Ctrl-C stops)."""
    import logging
    import time

    from newsdesk.watch import Watcher

    logging.getLogger("newsdesk").setLevel(logging.INFO)
    try:
        desk = _run_index(corpus, index, model, rebuild=False)[0]
    except _known_errors() as e:
        raise _fail(str(e))
    err.print(f"Watching {corpus} for changes (Ctrl-C stops).")
    with Watcher(desk, debounce=debounce, settle=settle, poll=poll):
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@app.command("discord")
def discord_bot(
    config: Annotated[Optional[Path], typer.Option(help="Bot settings file (default: ./newsdesk-bot.toml).")] = None,
    index: Annotated[Optional[Path], typer.Option(help="Index folder (overrides the settings file).")] = None,
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus folder (overrides the settings file).")] = None,
) -> None:
    """Run the Discord bot (token from $DISCORD_TOKEN; see docs/discord.md)."""
    from newsdesk_bot.runner import run

    raise typer.Exit(run(config, index_dir=index, corpus_dir=corpus))


@app.command()
def stats(index: IndexOpt = Path("index"), as_json: JsonOpt = False) -> None:
    """What the index holds: documents, chunks, model, last update."""
    from newsdesk.reader import IndexReader
    from newsdesk.desk import index_stats

    try:
        info = index_stats(IndexReader(index))
    except _known_errors() as e:
        raise _fail(str(e))
    if as_json:
        print(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        out.print(f"[bold]{key}[/bold]: {escape(str(value))}")


@app.command()
def check(index: IndexOpt = Path("index")) -> None:
    """Verify that the index is consistent (manifest, vectors, keyword index and chunks agree)."""
    from newsdesk.check import check_index
    from newsdesk.reader import IndexReader

    try:
        problems = check_index(IndexReader(index))
    except _known_errors() as e:
        raise _fail(str(e))
    for problem in problems:
        err.print(f"[red]problem:[/red] {escape(problem)}")
    if problems:
        raise _fail(f"{index} is inconsistent: run `newsdesk index --rebuild` to rebuild it")
    out.print(f"{index} is consistent.")


def _meta(published: Optional[str], url: Optional[str]) -> str:
    return " · ".join(x for x in (published, url and f"<{url}>") if x)


def print_answer(result) -> None:
    style = "yellow" if result.abstained else "green"
    out.print(f"[{style}]{escape(result.text)}[/{style}]\n")
    for note in getattr(result, "notes", []):
        out.print(f"[dim]{escape(note)}[/dim]\n")
    if result.citations:
        out.print("[bold]Sources[/bold]")
        for c in result.citations:
            out.print(f"  [{c.n}] {escape(c.title)} [dim]{escape(_meta(c.published, c.url))}[/dim]")
            out.print(f"      [dim]“{escape(c.quote)}” (chars {c.start}-{c.end} of {escape(c.doc_id)})[/dim]")
    if result.related:
        out.print("[bold]Related[/bold]")
        for c in result.related:
            out.print(f"  [{c.n}] {escape(c.title)} [dim]{escape(_meta(c.published, c.url))}[/dim]")
            out.print(f"      [dim]“{escape(c.quote)}”[/dim]")


if __name__ == "__main__":
    app()
