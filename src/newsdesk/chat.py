"""Follow-up questions without a language model.

The rule: a question is a follow-up when it opens with a connective ("and", "what about", ...),
leans on a pronoun ("it", "they", "that", ...), or has at most two content words. A follow-up
is searched as itself plus the key terms of the previous turn's standalone question (names,
numbers, then other content words) that it does not already contain. Since that previous
question carried its own context, the thread's topic survives several follow-ups.

With a language model configured, a follow-up is instead condensed into a standalone question by
the model (llama-index's condense-question prompt, `newsdesk.llm.LLM.condense`); if the model
fails, the rule above is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from newsdesk.answer import Answer
from newsdesk.keywords import words
from newsdesk.llm import Deadline, LLMUnavailable
from newsdesk.support import MARKER

if TYPE_CHECKING:
    from newsdesk.desk import Desk

_CONNECTIVE = re.compile(r"^\s*(and|but|also|so|then|what about|how about|and what about|what else|why)\b",
                         re.IGNORECASE)
_PRONOUN = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|he|him|his|she|her|hers|this|that|these|those|there|"
    r"the same|the other|the former|the latter)\b", re.IGNORECASE)
# Carried terms are capped so a long first question does not drown the follow-up.
MAX_CARRIED = 8
# Turns of the conversation the model sees when it condenses a follow-up.
CONDENSE_TURNS = 4


def is_follow_up(question: str) -> bool:
    return bool(_CONNECTIVE.search(question) or _PRONOUN.search(question) or len(words(question)) <= 2)


def key_terms(question: str) -> list[str]:
    """Names and numbers first (they identify the story), then the other content words."""
    names = re.findall(r"\b(?:[A-Z][\w’'\-]*\.?\s?)+|\b\d[\d,.]*\b", question)
    names = [n.strip() for n in names if n.strip() and n.strip().lower() not in _QUESTION_WORDS]
    rest = [w for w in words(question) if w not in " ".join(names).lower()]
    return list(dict.fromkeys(names + rest))


_QUESTION_WORDS = {"who", "what", "when", "where", "why", "how", "which", "whom", "whose", "and", "did",
                   "does", "do", "is", "are", "was", "were", "can", "could", "will", "would", "the", "a"}


def rewrite(question: str, previous: str | None) -> str:
    """The standalone question to search for, given the previous turn's standalone question."""
    if not previous or not is_follow_up(question):
        return question
    present = set(words(question))
    carried = [t for t in key_terms(previous) if not set(words(t)) <= present][:MAX_CARRIED]
    return f"{question.rstrip()} {' '.join(carried)}".strip() if carried else question


@dataclass
class ChatSession:
    desk: Desk
    # (asked, searched, answer); the answer is None for turns rebuilt by `restore`.
    history: list[tuple[str, str, Answer | None]] = field(default_factory=list)

    @property
    def last_query(self) -> str | None:
        return self.history[-1][1] if self.history else None

    @classmethod
    def restore(cls, desk: Desk, questions: list[str]) -> ChatSession:
        """Rebuild a session from the questions asked so far (e.g. a Discord thread after a restart).

        Only the standalone queries are recomputed; nothing is searched or answered again.
        """
        session = cls(desk)
        for question in questions:
            query = rewrite(question, session.last_query)
            session.history.append((question, query, None))
        return session

    def ask(self, question: str, **options: Any) -> Answer:
        query = self.standalone(question, options)
        result = self.desk.ask(query, **options)
        result.question = question
        result.query = query
        self.history.append((question, query, result))
        return result

    def standalone(self, question: str, options: dict[str, Any]) -> str:
        """The question to search for; with a model, condensed by it within half the deadline."""
        llm = self.desk.llm
        if llm is None or not llm.settings.condense or not self.history:
            return rewrite(question, self.last_query)
        limit = Deadline(options.get("deadline") or llm.settings.deadline)
        try:
            query = llm.condense(self.transcript(), question, Deadline(limit.remaining() / 2))
        except LLMUnavailable:
            query = rewrite(question, self.last_query)
        options["deadline"] = max(limit.remaining(), 0.0)
        return query

    def transcript(self) -> list[tuple[str, str]]:
        """The last turns as (role, text) messages, without citation markers (they are per answer)."""
        messages: list[tuple[str, str]] = []
        for asked, _, result in self.history[-CONDENSE_TURNS:]:
            messages.append(("user", asked))
            if result is not None and not result.abstained:
                messages.append(("assistant", " ".join(MARKER.sub("", result.text).split())))
        return messages
