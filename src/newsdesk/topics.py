"""Standing questions: which newly indexed articles match a followed topic, and what they say.

An article matches a topic when one of its passages is close enough to the topic in meaning:
the cosine of the topic's vector and the passage's, at least `MATCH_THRESHOLD`. The value and
its precision and recall come from `bench/topics.py` (docs/benchmarks.md, "Topic matching"):
topics are RealTime QA questions, the articles that match are those its search results
returned, the stream is every article of the weeks around it.

The summary of what is new is the extractive answer to the topic drawn only from the matching
articles, never abstaining (they were matched already): one to three of their own sentences,
each cited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from newsdesk.results import Answer, Report

# Chosen on the tune half of bench/topics.py; see docs/benchmarks.md.
MATCH_THRESHOLD = 0.55


@dataclass(frozen=True)
class TopicNews:
    """The new articles that match a topic after an update, best first, and what they say."""

    topic: str
    articles: tuple[Report, ...]
    scores: tuple[float, ...]
    summary: Answer

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "articles": [a.to_dict() for a in self.articles],
                "scores": [round(s, 4) for s in self.scores], "summary": self.summary.to_dict()}


@dataclass
class TopicWatch:
    """A followed topic: `news(report)` after each update gives what is new on it, or None.

    Made by `Desk.watch_topic`. Only articles the update added or changed are looked at, so an
    article is reported once, when it lands (and again only if it is rewritten).
    """

    desk: Any
    topic: str
    threshold: float = MATCH_THRESHOLD
    reported: set[str] = field(default_factory=set)

    def news(self, report: Any) -> TopicNews | None:
        fresh = [d for d in (*report.added, *report.updated)]
        found = self.desk.topic_news(self.topic, fresh, threshold=self.threshold)
        if found is not None:
            self.reported.update(a.doc_id for a in found.articles)
        return found


def best_per_article(hits: list[tuple[int, float]], doc_of: dict[int, str]) -> dict[str, float]:
    """The best passage cosine of each article among (chunk id, cosine) hits."""
    best: dict[str, float] = {}
    for chunk_id, cosine in hits:
        doc_id = doc_of.get(chunk_id)
        if doc_id is not None and cosine > best.get(doc_id, -1.0):
            best[doc_id] = cosine
    return best
