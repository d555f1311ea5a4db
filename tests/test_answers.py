"""The extractive answerer on fixture articles written for it: the fact first, no padding, true
offsets in every format, follow-ups as good as direct questions, chat commands never searched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import assert_quotes_verbatim

from newsdesk import Desk
from newsdesk.chat import is_command, rewrite, subject, Turn
from newsdesk.cli import app
from newsdesk.answer_model import Trees
from newsdesk.gazetteer import asked_class, members
from newsdesk.qtypes import Kind, dates, names, numbers, question_kind, sources

FIXTURES = Path(__file__).parent / "fixtures" / "answers"


@pytest.fixture(scope="module")
def kessel(embedder, tmp_path_factory) -> Desk:
    corpus = tmp_path_factory.mktemp("kessel") / "corpus"
    shutil.copytree(FIXTURES, corpus)
    return Desk.build(corpus, corpus.parent / "index")


# -- the fact first ----------------------------------------------------------------------------
@pytest.mark.parametrize("question,fact", [
    ("When did the fire at the Kessel grain warehouse happen?", "on Saturday, March 7, 2026"),
    ("How many firefighters fought the warehouse fire?", "43 firefighters"),
    ("How much wheat did the burned warehouse hold?", "12,000 tonnes of wheat"),
    ("Who is the fire chief in Kessel?", "Fire chief Annika Brandt"),
    ("Where will the new tram depot be built?", "in the Oster district"),
    ("How many crew members does the seafarers union represent?", "600 crew members"),
    ("How much will the Vinmark bridge toll be?", "6 euros"),
    ("Which union called the ferry strike?", "Nordic Seafarers Union"),
    # The sentence that repeats the question's words names no country; the one that answers does.
    ("Which country will host the next round of the grain talks?", "Portugal"),
])
def test_the_asked_for_fact_is_in_the_first_cited_sentence(kessel, question, fact):
    answer = kessel.ask(question)
    assert not answer.abstained, question
    assert fact in answer.citations[0].quote, (question, answer.text)
    assert_quotes_verbatim(kessel, answer)


def test_one_sentence_when_one_answers(kessel):
    answer = kessel.ask("How many firefighters fought the warehouse fire?")
    assert len(answer.citations) == 1, answer.text


def test_a_quotation_keeps_its_speaker(kessel):
    answer = kessel.ask("What did the dock worker say the fire was like?")
    assert not answer.abstained
    first = answer.citations[0].quote
    assert "It was like daylight" in first and first.startswith("Dock worker Lena Ort said"), first


def test_an_unrelated_question_abstains(kessel):
    answer = kessel.ask("Who won the 1998 World Cup final?")
    assert answer.abstained and answer.citations == () and answer.related
    assert answer.confidence < 0.5


# -- offsets a user can open --------------------------------------------------------------------
def test_offsets_index_the_file_the_record_or_the_extracted_text(kessel):
    root = kessel.settings.corpus_dir
    seen = set()
    for question in ["How many firefighters fought the warehouse fire?",  # Markdown with front matter
                     "How did the Kessel council vote on the tram depot?",  # text with CRLF line ends
                     "How many crew members does the seafarers union represent?",  # JSONL record
                     "How many pupils will the new Oster school teach?",  # JSON record
                     "How much did the maritime museum renovation cost?"]:  # HTML
        c = kessel.ask(question).citations[0]
        seen.add(c.offsets_in)
        if c.offsets_in == "file":
            assert (root / c.path).read_bytes().decode("utf-8-sig")[c.start:c.end] == c.quote
        elif c.offsets_in == "record":
            lines = (root / c.path).read_text(encoding="utf-8").splitlines()
            records = [json.loads(line) for line in lines if line.strip()] if c.path.endswith(".jsonl") else [
                json.loads((root / c.path).read_text(encoding="utf-8"))]
            record = next(r for r in records if r["id"] == c.doc_id)
            assert record["text"][c.start:c.end] == c.quote
        else:
            assert c.path.endswith(".html")
            with kessel.reader.generation() as gen:
                text = gen.conn.execute("SELECT text FROM docs WHERE doc_id = ?", (c.doc_id,)).fetchone()[0]
            assert text[c.start:c.end] == c.quote
    assert seen == {"file", "record", "extracted"}


def test_the_cli_says_what_the_offsets_mean(kessel):
    where = ["--index", str(kessel.settings.index_dir), "--corpus", str(kessel.settings.corpus_dir)]
    result = CliRunner().invoke(app, ["ask", "How many pupils will the new Oster school teach?", *where])
    assert result.exit_code == 0, result.output
    assert 'of the "text" of record wire-school in wire/school.json' in result.stdout
    result = CliRunner().invoke(app, ["ask", "How many firefighters fought the warehouse fire?", *where])
    assert "(kessel/warehouse-fire.md, characters " in result.stdout


def test_authors_stay_a_list_and_ap_style_dates_are_read(kessel):
    answer = kessel.ask("How many firefighters fought the warehouse fire?")
    c = answer.citations[0]
    assert c.authors == ("Jonas Veldt", "Maria Ekholm") and c.published == "2026-03-08"


# -- follow-ups --------------------------------------------------------------------------------
CHAINS = [
    # (first question, follow-up, the same follow-up asked directly)
    ("How many firefighters fought the warehouse fire in Kessel?", "and who led them?",
     "Who led the firefighters at the Kessel warehouse fire?"),
    ("Why did ferry crews go on strike?", "which union called it?", "Which union called the ferry strike?"),
    ("What will the new tram depot cost?", "and when will construction begin?",
     "When will construction of the Kessel tram depot begin?"),
]


@pytest.mark.parametrize("first,follow,direct", CHAINS)
def test_a_follow_up_answers_like_the_direct_question(kessel, first, follow, direct):
    chat = kessel.chat()
    chat.ask(first)
    answer = chat.ask(follow)
    expected = kessel.ask(direct)
    assert answer.query and answer.query.startswith(follow)
    assert (answer.citations[0].doc_id, answer.citations[0].quote) == (
        expected.citations[0].doc_id, expected.citations[0].quote), (answer.query, answer.text)


def test_a_follow_up_carries_the_subject_not_the_previous_questions_words(kessel):
    chat = kessel.chat()
    chat.ask("How many firefighters fought the warehouse fire in Kessel?")
    turn = chat.history[-1]
    carried = subject(turn)
    assert "Kessel" in carried and "fought" not in carried
    assert rewrite("and who led them?", turn).startswith("and who led them? Kessel")


def test_chat_commands_are_never_searched(kessel):
    assert is_command("/clear") == "clear" and is_command("clear") == "clear" and is_command(" /QUIT ") == "quit"
    assert is_command("clear the harbour") is None
    where = ["--index", str(kessel.settings.index_dir), "--corpus", str(kessel.settings.corpus_dir)]
    session = ("How many firefighters fought the warehouse fire?\nclear\n/clear\n"
               "How much wheat did the warehouse hold?\n/quit\nHow many pupils will the school teach?\n")
    result = CliRunner().invoke(app, ["chat", *where], input=session)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Sources") == 2  # two questions answered; the commands were not searched
    assert result.stderr.count("Cleared") == 2  # and /quit ended the chat before the last question
    chat = kessel.chat()
    chat.ask("How many firefighters fought the warehouse fire?")
    chat.clear()
    assert chat.ask("and who led them?").query is None  # after clearing, nothing is carried


# -- question types and entities -----------------------------------------------------------------
def test_question_kinds():
    assert question_kind("When did the raid take place?") is Kind.DATE
    assert question_kind("What date was the raid?") is Kind.DATE
    assert question_kind("How many were killed?") is Kind.NUMBER
    assert question_kind("How much did it cost?") is Kind.NUMBER
    assert question_kind("Who condemned the raid?") is Kind.PERSON
    assert question_kind("Where did it happen?") is Kind.PLACE
    assert question_kind("Which countries condemned it?") is Kind.PLACE
    assert question_kind("Which religious leader spoke?") is Kind.PERSON
    assert question_kind("Which union called the strike?") is Kind.PERSON
    assert question_kind("Why did they strike?") is Kind.OTHER


def test_dates_in_the_ways_news_writes_them():
    for text, found in [("It happened on January 3, 2026.", "January 3, 2026"), ("Talks resume Jan. 3.", "Jan. 3"),
                        ("the events of January 3rd, 2026, mark", "January 3rd, 2026"),
                        ("The vote was on Saturday.", "on Saturday"), ("Prices rose last week.", "last week"),
                        ("It opened in 2019.", "in 2019"), ("It starts at 2 a.m.", "2 a.m.")]:
        assert found in dates(text), (text, dates(text))
    assert dates("The council voted 27 to 14.") == []


def test_numbers_names_and_attributions():
    assert numbers("up to 80 personnel, on January 3, 2026") == ["80"]
    assert "4.2 million" in " ".join(numbers("a budget of 4.2 million euros"))
    found = names("Allies of Venezuela, including Cuba and Nicaragua, condemned it.")
    assert {"Cuba", "Nicaragua"} <= set(found)
    assert names("Rescue crews pulled 140 survivors.", "Rescue crews pulled 140 survivors.") == []
    assert sources("The toll rose, according to the regional coroner.") == ["the regional coroner"]
    assert sources("At least 12 people died, harbour officials said.") == ["harbour officials"]


def test_the_class_of_place_a_question_asks_for_and_its_members():
    assert asked_class("The prime minister of which country was suspended?") == "country"
    assert asked_class("In which US state was the memorial held?") == "state"
    assert asked_class("Which tech company cut 9,000 jobs?") is None
    assert members("country", "A ruling by the Constitutional Court of Thailand, welcomed by the U.S.") == ["Thailand", "U.S"]
    assert members("state", "He was shot in Utah; the memorial will be in Arizona, near New Mexico.") == [
        "Utah", "Arizona", "New Mexico"]
    assert members("country", "The Kessel council met the Vinmark delegation.") == []


def test_the_answer_models_trees_follow_their_tests():
    # One tree: x[1] <= 0.5 ? (x[0] <= 2 ? -1 : 1) : 3, with a padding node; and a second, a stump.
    trees = Trees(feature=np.array([[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]),
                  threshold=np.array([[0.5, 2.0, 0, 0, 0, 0], [10.0, 0, 0, 0, 0, 0]]),
                  left=np.array([[1, 3, 2, 3, 4, 5], [1, 1, 2, 3, 4, 5]]),
                  right=np.array([[2, 4, 2, 3, 4, 5], [2, 1, 2, 3, 4, 5]]),
                  value=np.array([[0, 0, 3.0, -1.0, 1.0, 0], [0, 0.5, -0.5, 0, 0, 0]]),
                  depth=2, baseline=0.25, share=0.5)
    x = np.array([[1.0, 0.0], [3.0, 0.0], [1.0, 1.0], [20.0, 1.0]])
    assert trees.log_odds(x).tolist() == [0.25 - 1 + 0.5, 0.25 + 1 + 0.5, 0.25 + 3 + 0.5, 0.25 + 3 - 0.5]


def test_a_restored_turn_carries_its_words_without_headlines():
    turn = Turn("When did the Riverside library reopen?", "When did the Riverside library reopen?")
    assert rewrite("And who paid for it?", turn) == "And who paid for it? Riverside library reopen"
