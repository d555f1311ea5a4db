import json
import shutil

from conftest import FIXTURE_CORPUS, SAMPLE_CORPUS

from newsdesk.clean import clean_lines, is_furniture
from newsdesk.load import load_corpus, normalize_date


def _by_id(result):
    return {d.doc_id: d for d in result.documents}


def test_sample_article_title_is_headline_not_section_label():
    (doc,) = load_corpus(SAMPLE_CORPUS).documents
    assert doc.title.startswith("EXCLUSIVE: Dozens of Venezuelan Security Personnel Killed")
    assert doc.doc_id == "000_4637bb9b228ceb5d.txt"
    assert doc.source_path == "000_4637bb9b228ceb5d.txt"


def test_sample_article_page_furniture_is_dropped_and_text_kept_verbatim():
    (doc,) = load_corpus(SAMPLE_CORPUS).documents
    raw = (SAMPLE_CORPUS / doc.source_path).read_text(encoding="utf-8")
    lines = doc.text.split("\n")
    assert lines[0] == doc.title  # "News" label gone, headline first
    assert "Related Articles" not in doc.text
    assert "Back to top" not in doc.text
    assert lines[-1].startswith("The U.N. Secretary-General has appealed for maximum restraint")
    assert all(line in raw for line in lines)
    assert len(lines) == 9  # headline + 8 paragraphs


def test_every_fixture_format_loads_with_metadata():
    result = load_corpus(FIXTURE_CORPUS)
    assert result.skipped == [] and result.ignored == []
    docs = _by_id(result)
    assert set(docs) == {
        "gazette/budget.md", "gazette/festival.html", "gazette/marathon.pdf", "gazette/notes.txt",
        "wire/briefs.jsonl#1", "wire/briefs.jsonl#2", "wire-ferry-1", "wire-ferry-2",
    }
    md = docs["gazette/budget.md"]
    assert (md.title, md.published, md.authors) == ("Council approves harbour budget", "2026-02-10", ("Mara Quint",))
    assert md.url == "https://example.org/gazette/harbour-budget"
    assert "Home | Politics" not in md.text  # repeated navigation line
    html = docs["gazette/festival.html"]
    assert html.title == "Lantern festival draws record crowds"
    assert html.published == "2026-01-20"
    assert "30,000 visitors" in html.text
    assert "cookies" not in html.text and "All rights reserved" not in html.text
    pdf = docs["gazette/marathon.pdf"]
    assert pdf.title == "Marathon date set" and "4,000 runners" in pdf.text
    txt = docs["gazette/notes.txt"]
    assert txt.title == "Library extends opening hours for exam season"
    assert "Back to top" not in txt.text and not txt.text.startswith("Local")
    ferry = docs["wire-ferry-1"]
    assert (ferry.published, ferry.source, ferry.url) == ("2026-03-01", "wire", "https://example.org/wire/ferry-capsizes")
    assert "Share this article" not in ferry.text and "Advertisement" not in ferry.text
    brief = docs["wire/briefs.jsonl#2"]
    assert brief.title == "Halden rail line reopens"
    assert brief.published == "2026-03-05T10:00:00+00:00"
    assert brief.source == "wire"  # from the folder


def test_broken_files_are_reported_with_reason_and_the_rest_indexed(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, corpus)
    (corpus / "junk.txt").write_bytes(bytes(range(256)) * 4)
    (corpus / "latin1.txt").write_bytes("Caf\xe9 owners protest new rent rules in the old town".encode("latin-1"))
    (corpus / "empty.md").write_text("  \n\n")
    (corpus / "broken.json").write_text('{"text": "unterminated')
    (corpus / "mixed.jsonl").write_text(
        json.dumps({"id": "ok-1", "text": "The bridge reopened on Friday after repairs."}) + "\n"
        + "{not json}\n"
        + json.dumps({"id": "no-text", "title": "Only a title"}) + "\n"
        + json.dumps({"id": "ok-2", "text": "The mayor resigned on Monday, aides said."}) + "\n"
    )
    (corpus / "only-furniture.txt").write_text("Related Articles\nBack to top button\n")
    (corpus / "bad.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (corpus / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    result = load_corpus(corpus)
    reasons = {(s.path, s.line): s.reason for s in result.skipped}
    assert "binary" in reasons[("junk.txt", None)]
    assert "not UTF-8" in reasons[("latin1.txt", None)]
    assert reasons[("empty.md", None)] == "empty file"
    assert "malformed JSON" in reasons[("broken.json", 1)]
    assert "malformed JSON" in reasons[("mixed.jsonl", 2)]
    assert 'no "text"' in reasons[("mixed.jsonl", 3)]
    assert "page furniture" in reasons[("only-furniture.txt", None)]
    assert "PDF" in reasons[("bad.pdf", None)]
    assert len(result.skipped) == 8
    assert result.ignored == ["photo.jpg"]
    ids = set(_by_id(result))
    assert {"ok-1", "ok-2", "wire-ferry-1", "gazette/festival.html"} <= ids
    assert len(ids) == 10
    assert "mixed.jsonl:2: malformed JSON" in str(next(s for s in result.skipped if s.line == 2))


def test_hidden_files_are_not_articles(tmp_path):
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.txt").write_text("not an article at all, just git internals here")
    (tmp_path / "a.txt").write_text("Storm closes schools\nSchools closed on Monday because of the storm.")
    result = load_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["a.txt"]
    assert result.skipped == [] and result.ignored == []


def test_furniture_lines_are_matched_whole():
    for line in ["Related Articles", "Back to top button", "Share this article", "Share on Facebook",
                 "Advertisement", "We use cookies to improve your experience.", "Accept all cookies",
                 "Home | World | Business | Sport", "© 2026 Halden Gazette. All rights reserved.",
                 "Skip to main content", "Sign up for our newsletter", "Read more"]:
        assert is_furniture(line), line
    for line in ["Officials said the bakery stopped using cookies made with palm oil.",
                 "Share prices fell 4% on Monday.", "Related reports suggested the talks had stalled.",
                 "Back to top form, the striker scored twice."]:
        assert not is_furniture(line), line


def test_short_line_repeated_on_a_page_is_navigation_but_long_repeated_text_is_kept():
    lines = ["World | Sport", "Storm hits the coast", "A storm hit the coast.", "Menu",
             "Power was cut in three towns, the utility said on Monday morning.", "Menu",
             "Power was cut in three towns, the utility said on Monday morning."]
    kept = clean_lines(lines)
    assert "Menu" not in kept
    assert kept.count("Power was cut in three towns, the utility said on Monday morning.") == 2


def test_dates_are_normalized_to_iso():
    assert normalize_date("2026-01-03") == "2026-01-03"
    assert normalize_date("2026-01-03T00:00:00") == "2026-01-03"
    assert normalize_date("2026-01-03T14:05:00Z") == "2026-01-03T14:05:00+00:00"
    assert normalize_date("Sat, 03 Jan 2026 14:05:00 +0000") == "2026-01-03T14:05:00+00:00"
    assert normalize_date("January 3, 2026") == "2026-01-03"
    assert normalize_date("3 January 2026") == "2026-01-03"
    assert normalize_date("sometime last week") is None
    assert normalize_date(None) is None


def test_long_menu_lines_are_dropped_quickly():
    states = " | ".join(["Alabama", "Alaska", "Arizona", "District of Columbia", "New Hampshire"] * 12) + " | More >"
    assert is_furniture(states)  # this line once took minutes in a backtracking regex
    assert not is_furniture("Profits rose 4% | shares fell")
