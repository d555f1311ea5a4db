"""Follow-up questions without a language model.

A question is a follow-up when it opens with a connective ("and", "what about", ...), leans on
a pronoun ("it", "they", "that", ...), or has at most two content words. A follow-up carries the
subject of the conversation, not the previous question's every word: the names and numbers the
previous turn asked about, and those of its words that name the story its answer cited (words
of the cited articles' headlines) -- "the raid", not "condemned". It is searched with those
added, and the articles the previous answer cited are preferred.

With a language model configured, a follow-up is instead condensed into a standalone question by
the model (llama-index's condense-question prompt, `newsdesk.llm.LLM.condense`); if the model
fails, the rule above is used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from newsdesk.keywords import stopwords, terms, words
from newsdesk.llm import Deadline, LLMUnavailable
from newsdesk.results import Answer
from newsdesk.support import MARKER

if TYPE_CHECKING:
    from newsdesk.desk import Desk

_CONNECTIVE = re.compile(r"^\s*(and|but|also|so|then|what about|how about|and what about|what else|why|how come)\b",
                         re.IGNORECASE)
_PRONOUN = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|he|him|his|she|her|hers|this|that|these|those|there|"
    r"the same|the other|the former|the latter)\b", re.IGNORECASE)
_NAME_OR_NUMBER = re.compile(r"\b(?:[A-Z][\w’'\-]*\.?)(?:\s+[A-Z][\w’'\-]*\.?)*|\b\d[\d,.]*\b")
_QUESTION_WORDS = {"who", "what", "when", "where", "why", "how", "which", "whom", "whose", "and", "did",
                   "does", "do", "is", "are", "was", "were", "can", "could", "will", "would", "the", "a"}
# Carried terms are capped so the follow-up's own words stay what is searched for.
MAX_CARRIED = 6
# Turns of the conversation the model sees when it condenses a follow-up.
CONDENSE_TURNS = 4
COMMANDS = {"/clear": "clear", "/new": "clear", "clear": "clear", "new": "clear", "/reset": "clear",
            "/quit": "quit", "/exit": "quit", "quit": "quit", "exit": "quit", "/help": "help", "help": "help"}


def is_command(text: str) -> str | None:
    """"clear", "quit" or "help" when `text` is a chat command rather than a question."""
    return COMMANDS.get(" ".join(text.lower().split()))


def is_follow_up(question: str) -> bool:
    return bool(_CONNECTIVE.search(question) or _PRONOUN.search(question) or len(words(question)) <= 2)


def names_and_numbers(text: str) -> list[str]:
    found = [m.group(0).strip() for m in _NAME_OR_NUMBER.finditer(text)]
    out = []
    for item in found:
        parts = item.split()
        while parts and parts[0].lower().strip(".") in _QUESTION_WORDS | stopwords():
            parts = parts[1:]
        if parts:
            out.append(" ".join(parts))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Turn:
    asked: str
    searched: str
    cited: tuple[str, ...] = ()  # doc ids the answer cited
    titles: tuple[str, ...] = ()  # their headlines: what the story is called
    quotes: tuple[str, ...] = ()  # what the answer said
    answer: Answer | None = None  # None for turns rebuilt by `restore`


def subject(turn: Turn) -> list[str]:
    """What a follow-up to `turn` is about: its names and numbers, then its words that the cited
    headlines share (the story), in the order the question gave them.

    Names and numbers cannot be stemmed away ("Port Halden"), so they come whole; the headline test
    keeps "raid" from "Who condemned the raid?" and drops "condemned".
    """
    names = names_and_numbers(turn.searched)
    named = {w for n in names for w in words(n)}
    rest = [w for w in words(turn.searched) if w not in named]
    if turn.titles:  # without them (a turn restored from its question alone) every content word counts
        story = set(terms(" ".join(turn.titles)))
        rest = [w for w in rest if terms(w) and terms(w)[0] in story]
    return list(dict.fromkeys(names + rest))


def carried(question: str, previous: Turn | None) -> list[str]:
    """What a follow-up takes from the previous turn (nothing when it stands alone)."""
    if previous is None or not is_follow_up(question):
        return []
    present = set(words(question))
    return [t for t in subject(previous) if not set(words(t)) <= present][:MAX_CARRIED]


def rewrite(question: str, previous: Turn | None) -> str:
    """The standalone question to search for, given the previous turn."""
    extra = carried(question, previous)
    return f"{question.rstrip()} {' '.join(extra)}".strip() if extra else question


@dataclass
class ChatSession:
    desk: Desk
    history: list[Turn] = field(default_factory=list)

    @property
    def last(self) -> Turn | None:
        return self.history[-1] if self.history else None

    @property
    def last_query(self) -> str | None:
        return self.history[-1].searched if self.history else None

    @classmethod
    def restore(cls, desk: Desk, turns: Sequence[str | tuple[str, Sequence[str], Sequence[str]]]) -> ChatSession:
        """Rebuild a session from the questions asked so far (e.g. a Discord thread after a restart).

        Each turn is a question, or (question, cited doc ids, their titles). Only the standalone
        queries are recomputed; nothing is searched or answered again.
        """
        session = cls(desk)
        for turn in turns:
            question, cited, titles = (turn, (), ()) if isinstance(turn, str) else turn
            query = rewrite(question, session.last)
            session.history.append(Turn(question, query, tuple(cited), tuple(titles)))
        return session

    def clear(self) -> None:
        """Forget the conversation: the next question stands alone."""
        self.history.clear()

    def ask(self, question: str, **options: Any) -> Answer:
        question = " ".join(question.split())
        if self.desk.llm is not None and self.desk.llm.settings.condense and self.history:
            query = self.standalone(question, options)  # condensed by the model into a standalone question
            result = self.desk.ask(query, **options)
        else:
            extra = carried(question, self.last)
            query = f"{question} {' '.join(extra)}".strip() if extra else question
            if extra and self.last is not None and self.last.cited:
                options.setdefault("prefer", self.last.cited)
            result = self.desk.ask(question, context=" ".join(extra), **options)
        result = replace(result, question=question, query=query if query != question else None)
        self.history.append(Turn(question, query, tuple(dict.fromkeys(c.doc_id for c in result.citations)),
                                 tuple(dict.fromkeys(c.title for c in result.citations)),
                                 tuple(c.quote for c in result.citations), result))
        return result

    def standalone(self, question: str, options: dict[str, Any]) -> str:
        """The question to search for; with a model, condensed by it within half the deadline."""
        llm = self.desk.llm
        if llm is None or not llm.settings.condense or not self.history:
            return rewrite(question, self.last)
        limit = Deadline(options.get("deadline") or llm.settings.deadline)
        try:
            query = llm.condense(self.transcript(), question, Deadline(limit.remaining() / 2))
        except LLMUnavailable:
            query = rewrite(question, self.last)
        options["deadline"] = max(limit.remaining(), 0.0)
        return query

    def transcript(self) -> list[tuple[str, str]]:
        """The last turns as (role, text) messages, without citation markers (they are per answer)."""
        messages: list[tuple[str, str]] = []
        for turn in self.history[-CONDENSE_TURNS:]:
            messages.append(("user", turn.asked))
            if turn.answer is not None and not turn.answer.abstained:
                messages.append(("assistant", " ".join(MARKER.sub("", turn.answer.text).split())))
        return messages
