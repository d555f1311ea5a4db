"""newsdesk: cited answers from a corpus of news articles.

    from newsdesk import Desk
    desk = Desk.build("corpus", "index")
    print(desk.ask("How many people died?").text)

Every public name is importable from here; they load on first use, so `import newsdesk` (and
the `newsdesk` command) starts without loading the model, FAISS or the sentence splitter.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from newsdesk.errors import (CorpusError, IndexBusy, IndexCorrupt, IndexEmpty, IndexMismatch, IndexMissing,
                             IndexProblem, IndexUnreachable, IndexWriteFailed, ModelError, NewsdeskError, QueryError,
                             ServiceError, SettingsError, UsageError)

_LAZY = {
    "Desk": "newsdesk.desk",
    "IndexStats": "newsdesk.desk",
    "TopicNews": "newsdesk.topics",
    "TopicWatch": "newsdesk.topics",
    "story_notes": "newsdesk.story",
    "human_date": "newsdesk.story",
    "ChatSession": "newsdesk.chat",
    "is_command": "newsdesk.chat",
    "Answer": "newsdesk.results",
    "Citation": "newsdesk.results",
    "Generated": "newsdesk.results",
    "Removed": "newsdesk.results",
    "Report": "newsdesk.results",
    "Sentence": "newsdesk.results",
    "TimelineEntry": "newsdesk.results",
    "Passage": "newsdesk.retrieve",
    "SearchMode": "newsdesk.retrieve",
    "Chunk": "newsdesk.chunk",
    "Document": "newsdesk.load",
    "Skipped": "newsdesk.load",
    "UpdateReport": "newsdesk.index",
    "ChunkSettings": "newsdesk.config",
    "LLMSettings": "newsdesk.llm",
    "LLMSettingsError": "newsdesk.llm",
    "Watcher": "newsdesk.watch",
    "SETTINGS": "newsdesk.settings",
    "Setting": "newsdesk.settings",
    "read_settings": "newsdesk.settings",
}

__all__ = sorted([
    *_LAZY, "CorpusError", "IndexBusy", "IndexCorrupt", "IndexEmpty", "IndexMismatch", "IndexMissing", "IndexProblem",
    "IndexUnreachable", "IndexWriteFailed", "ModelError", "NewsdeskError", "QueryError", "ServiceError",
    "SettingsError", "UsageError",
])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'newsdesk' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from newsdesk.chat import ChatSession, is_command
    from newsdesk.chunk import Chunk
    from newsdesk.config import ChunkSettings
    from newsdesk.desk import Desk, IndexStats
    from newsdesk.story import human_date, story_notes
    from newsdesk.topics import TopicNews, TopicWatch
    from newsdesk.index import UpdateReport
    from newsdesk.llm import LLMSettings, LLMSettingsError
    from newsdesk.load import Document, Skipped
    from newsdesk.results import Answer, Citation, Generated, Removed, Report, Sentence, TimelineEntry
    from newsdesk.retrieve import Passage, SearchMode
    from newsdesk.settings import SETTINGS, Setting, read_settings
    from newsdesk.watch import Watcher
