"""Cut documents into sentence-aligned passages that fit the encoder's window.

llama-index's `SentenceSplitter` does the packing (whole sentences up to a token budget, with
overlap), counting in the embedding model's own word pieces. We give it nltk's trained English
Punkt model instead of its untrained default, which splits after "Dr." and "U.S.". Each chunk
then gets its exact character span in the document and the spans of its sentences, which the
answerer quotes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from collections.abc import Callable
from typing import Any

from newsdesk.config import ChunkSettings
from newsdesk.errors import UsageError
from newsdesk.load import Document

Span = tuple[int, int]


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    seq: int
    start: int
    end: int
    text: str
    # Document offsets of the sentences inside this chunk, in order.
    sentences: tuple[Span, ...]


@cache
def _punkt() -> Any:
    # llama-index ships nltk's trained Punkt tables and puts them on nltk's path: no download.
    from llama_index.core.utils import globals_helper
    from nltk.tokenize import PunktTokenizer

    globals_helper.wait_for_nltk_check()
    return PunktTokenizer("english")


def sentence_spans(text: str) -> list[Span]:
    """Sentences never cross a line: lines are paragraphs, and a headline has no full stop."""
    punkt = _punkt()
    spans: list[Span] = []
    offset = 0
    for line in text.split("\n"):
        spans += [(offset + s, offset + e) for s, e in punkt.span_tokenize(line)]
        offset += len(line) + 1
    return spans


def _split_sentences(text: str) -> list[str]:
    """Sentences with their trailing whitespace, so that joining them gives the text back."""
    starts = [s for s, _ in sentence_spans(text)]
    if not starts:
        return [text]
    starts[0] = 0
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]


class Chunker:
    def __init__(self, tokens: Callable[[str], list[int]], settings: ChunkSettings, max_tokens: int):
        """`tokens` is the encoder's own tokenizer (word-piece ids without special tokens)."""
        from llama_index.core.node_parser import SentenceSplitter

        if settings.chunk_tokens > max_tokens:
            raise UsageError(
                f"chunk_tokens={settings.chunk_tokens} exceeds the model window of {max_tokens} "
                "word pieces: the encoder would silently drop the end of each chunk"
            )
        self.tokens = tokens
        self.max_tokens = max_tokens
        self._splitter = SentenceSplitter(
            chunk_size=settings.chunk_tokens,
            chunk_overlap=settings.overlap_tokens,
            separator=" ",
            # Never matches: the whole document goes to the sentence splitter, so that chunks
            # overlap by whole sentences across paragraph breaks as well.
            paragraph_separator="\x00",
            tokenizer=tokens,
            chunking_tokenizer_fn=_split_sentences,
        )

    def chunk(self, doc: Document) -> list[Chunk]:
        sentences = sentence_spans(doc.text)
        chunks: list[Chunk] = []
        cursor = 0
        for seq, piece in enumerate(self._splitter.split_text(doc.text)):
            start = doc.text.find(piece, cursor)
            if start < 0:  # SentenceSplitter only strips and joins, so this is a bug, not bad input
                raise RuntimeError(f"chunk {seq} of {doc.doc_id} is not a substring of the document")
            end = start + len(piece)
            # Whole sentences, even where the overlap cut one: quotes are taken from the document.
            inside = tuple((s, e) for s, e in sentences if s < end and e > start)
            chunks.append(Chunk(doc.doc_id, seq, start, end, piece, inside))
            cursor = start + 1
        return chunks
