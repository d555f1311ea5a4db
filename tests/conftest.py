"""Shared fixtures: the real model, loaded once per session, and small real indexes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest

from newsdesk.config import Settings
from newsdesk.desk import Desk, encoder_for_build

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CORPUS = ROOT / "corpus"
FIXTURE_CORPUS = Path(__file__).parent / "fixtures" / "corpus"


@pytest.fixture(scope="session")
def embedder():
    """The encoder every test index is built with (loaded once; later loads reuse it)."""
    return encoder_for_build(Settings(), rebuild=True)


@pytest.fixture(scope="session")
def sample_desk(embedder, tmp_path_factory) -> Desk:
    """The corpus newsdesk ships with (one article), indexed once."""
    return Desk.build(SAMPLE_CORPUS, tmp_path_factory.mktemp("sample") / "index")


@pytest.fixture(scope="session")
def news_desk(embedder, tmp_path_factory) -> Desk:
    """Seven short articles in every supported format, from two sources, with dates."""
    corpus = tmp_path_factory.mktemp("news") / "corpus"
    shutil.copytree(FIXTURE_CORPUS, corpus)
    return Desk.build(corpus, corpus.parent / "index")


def source_texts(path: Path) -> list[str]:
    """The article text as written in a source file (for JSON: each record's "text")."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line)["text"] for line in raw.splitlines() if line.strip()]
    if path.suffix == ".json":
        data = json.loads(raw)
        return [r["text"] for r in (data if isinstance(data, list) else [data])]
    return [raw]


def assert_quotes_verbatim(desk: Desk, answer) -> None:
    """Every quote is the document text at its span, and appears in the source file as written."""
    with desk.reader.generation() as gen:
        for c in answer.citations + answer.related:
            text, source_path = gen.conn.execute(
                "SELECT text, source_path FROM docs WHERE doc_id = ?", (c.doc_id,)).fetchone()
            assert c.quote in text
            assert c.path == source_path
            source = desk.settings.corpus_dir / source_path
            if c.offsets_in == "file":
                raw = source.read_bytes().decode("utf-8-sig")
                assert raw[c.start:c.end] == c.quote, (raw[c.start:c.end], c.quote)
            elif c.offsets_in == "record":
                assert any(t[c.start:c.end] == c.quote for t in source_texts(source)), c.quote
            else:
                assert text[c.start:c.end] == c.quote


@pytest.fixture(scope="session")
def llm_corpus_desk(embedder, tmp_path_factory) -> Desk:
    """Three short articles, one with a prompt-injection attempt, for the language-model tests (no model set)."""
    corpus = tmp_path_factory.mktemp("llm") / "corpus"
    shutil.copytree(Path(__file__).parent / "fixtures" / "llm_corpus", corpus)
    return Desk.build(corpus, corpus.parent / "index")
