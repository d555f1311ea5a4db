"""The public evaluation sets in ../shared/data, turned into newsdesk corpora and question lists.

Nothing here is committed data: the corpora are written under bench/work/ (git-ignored).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "bench" / "work"


@dataclass
class Question:
    id: str
    text: str
    answers: list[str]  # empty: unanswerable
    group: str = ""  # SQuAD article title: used to split calibration / test halves
    doc_ids: list[str] = field(default_factory=list)


@dataclass
class Dataset:
    name: str
    corpus: Path
    questions: list[Question]


def squad() -> Dataset:
    """SQuAD 2.0 dev subset: one document per paragraph, titled by its Wikipedia article."""
    data = json.loads((DATA / "squad" / "dev-v2.0.json").read_text())["data"]
    corpus = WORK / "squad" / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    questions: list[Question] = []
    with open(corpus / "paragraphs.jsonl", "w") as out:
        for article in data:
            title = article["title"].replace("_", " ")
            for i, paragraph in enumerate(article["paragraphs"]):
                doc_id = f"{article['title']}#{i}"
                out.write(json.dumps({"id": doc_id, "title": title, "text": paragraph["context"]}) + "\n")
                for qa in paragraph["qas"]:
                    answers = [] if qa.get("is_impossible") else sorted({a["text"] for a in qa["answers"]})
                    questions.append(Question(qa["id"], qa["question"], answers, article["title"], [doc_id]))
    return Dataset("squad", corpus, questions)


def newsqa() -> Dataset:
    """RealTime QA news quizzes (2025-H2) over 1,324 full-length articles."""
    corpus = WORK / "newsqa" / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    target = corpus / "articles.jsonl"
    source = DATA / "newsqa-like" / "articles.jsonl"
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        target.write_bytes(source.read_bytes())
    questions = []
    for line in (DATA / "newsqa-like" / "questions.jsonl").read_text().splitlines():
        row = json.loads(line)
        answers = [row["answer"]] if row["answer_in_articles"] else []
        questions.append(Question(row["id"], row["question"], answers, row["date"], row["article_ids"]))
    return Dataset("newsqa", corpus, questions)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[\u2018\u2019\u201c\u201d]", "'", text)
    return " ".join(re.findall(r"\w+|[^\w\s]", text))


def contains_answer(text: str, answers: list[str]) -> bool:
    norm = f" {normalize(text)} "
    return any(f" {normalize(a)} " in norm for a in answers if a.strip())


def index_dir(dataset: Dataset, encoder: str = "onnx-int8") -> Path:
    """Where the benchmarks keep `dataset`'s index built with `encoder` (git-ignored)."""
    return WORK / dataset.name / f"index-{encoder}"


def open_or_build(dataset: Dataset, encoder: str = "onnx-int8", **options):
    """The dataset's newsdesk index, built (or brought up to date) with `encoder`."""
    from newsdesk import Desk

    return Desk.build(dataset.corpus, index_dir(dataset, encoder), encoder=encoder, progress=True, **options)


def split_news(questions: list[Question]) -> tuple[list[Question], list[Question]]:
    """RealTime QA by date: July-September 2025 may be used for tuning, October-December is held out."""
    return ([q for q in questions if q.group < "2025-10"], [q for q in questions if q.group >= "2025-10"])


def split_squad(questions: list[Question]) -> tuple[list[Question], list[Question]]:
    """SQuAD by article: alternate titles form the calibration half, the others the test half."""
    groups = sorted({q.group for q in questions})
    calibration = set(groups[::2])
    return ([q for q in questions if q.group in calibration], [q for q in questions if q.group not in calibration])


def bbc() -> Dataset:
    """The 2,225 BBC articles (no questions): filler text for the scale benchmarks."""
    corpus = WORK / "bbc" / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    target = corpus / "bbc.jsonl"
    source = DATA / "news-corpus" / "bbc-news-2225.jsonl"
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        target.write_bytes(source.read_bytes())
    return Dataset("bbc", corpus, [])
