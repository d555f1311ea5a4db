from conftest import FIXTURE_CORPUS, SAMPLE_CORPUS

from newsdesk.errors import UsageError
from newsdesk.chunk import Chunker, sentence_spans
from newsdesk.config import ChunkSettings
from newsdesk.load import Document, load_corpus


def _docs():
    return load_corpus(SAMPLE_CORPUS).documents + load_corpus(FIXTURE_CORPUS).documents


def _chunker(embedder, chunk_tokens=200, overlap=48):
    return Chunker(embedder.tokens, ChunkSettings(chunk_tokens, overlap), embedder.max_tokens - 2)


def test_every_chunk_fits_the_encoder_window_in_model_tokens(embedder):
    chunker = _chunker(embedder)
    for doc in _docs():
        for chunk in chunker.chunk(doc):
            with_specials = len(embedder.tokens(chunk.text)) + 2
            assert with_specials <= embedder.max_tokens == 256
            assert len(chunker.tokens(chunk.text)) <= 200


def test_chunk_offsets_point_at_the_chunk_text(embedder):
    chunker = _chunker(embedder, 60, 20)
    for doc in _docs():
        chunks = chunker.chunk(doc)
        assert [c.seq for c in chunks] == list(range(len(chunks)))
        for chunk in chunks:
            assert doc.text[chunk.start:chunk.end] == chunk.text
            assert chunk.sentences and all(s < chunk.end and e > chunk.start for s, e in chunk.sentences)
        # Together the chunks cover the whole document.
        assert chunks[0].start == 0 and chunks[-1].end == len(doc.text.rstrip())


def test_chunks_overlap_by_whole_sentences(embedder):
    (doc,) = load_corpus(SAMPLE_CORPUS).documents
    chunks = _chunker(embedder, 120, 48).chunk(doc)
    assert len(chunks) > 3
    overlapping = [(a, b) for a, b in zip(chunks, chunks[1:]) if b.start < a.end]
    assert overlapping
    starts = {s for s, _ in sentence_spans(doc.text)}
    for _, b in overlapping:
        assert b.start in starts  # the overlap begins at a sentence, not mid-word


def test_a_sentence_longer_than_a_chunk_is_split_within_the_window(embedder):
    long_sentence = "The minister listed " + ", ".join(f"item number {i}" for i in range(200)) + "."
    doc = Document("long", "Long list\n" + long_sentence, "Long list", "long.txt")
    chunker = _chunker(embedder)
    chunks = chunker.chunk(doc)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunker.tokens(chunk.text)) <= 200
        assert doc.text[chunk.start:chunk.end] == chunk.text


def test_sentences_do_not_break_at_abbreviations_or_cross_lines():
    text = "Storm Warning\nDr. Smith of the U.S. Navy said 3.5 million people were affected. They left on Jan. 3."
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == [
        "Storm Warning",
        "Dr. Smith of the U.S. Navy said 3.5 million people were affected.",
        "They left on Jan. 3.",
    ]


def test_chunk_size_larger_than_the_model_window_is_refused(embedder):
    import pytest

    with pytest.raises(UsageError, match="exceeds the model window"):
        _chunker(embedder, 400, 20)
