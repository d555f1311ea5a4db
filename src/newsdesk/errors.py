"""Every error newsdesk raises for a problem the user can fix, under one base class.

Front ends (the CLI, the Discord bot) catch `NewsdeskError`, show its message as one line and
exit with its `exit_code`; any other exception is a bug and keeps its traceback. Each message
says what to do next.

    NewsdeskError
    ├── UsageError          a call or command used wrongly (exit 2)
    │   └── SettingsError   a setting is unknown, missing or of the wrong type
    ├── CorpusError         the corpus folder is missing or unreadable
    ├── ModelError          the embedding model cannot be loaded
    ├── QueryError          the question cannot be searched as asked (filters exclude everything)
    ├── IndexProblem        the index cannot be used as asked
    │   ├── IndexMissing    there is no index yet
    │   ├── IndexEmpty      the index holds no articles
    │   ├── IndexMismatch   built with another model, chunking or format
    │   ├── IndexBusy       another process is writing it
    │   ├── IndexCorrupt    its files disagree (`newsdesk check` says how)
    │   ├── IndexWriteFailed  the disk is full or read-only; nothing was lost
    │   └── IndexUnreachable  a remote index (Milvus) cannot be reached or refused us
    └── ServiceError        an outside service (a language model) gave no usable answer
"""

from __future__ import annotations


class NewsdeskError(Exception):
    """Base class: a problem the user can fix; the message says how."""

    exit_code = 1


class UsageError(NewsdeskError):
    """A call or command was used wrongly: an empty question, a bad date, k out of range."""

    exit_code = 2


class SettingsError(UsageError):
    """A setting is unknown, missing or has a value of the wrong type."""


class CorpusError(NewsdeskError):
    """The corpus folder is missing or cannot be read."""


class ModelError(NewsdeskError):
    """The embedding model cannot be found or loaded."""


class QueryError(NewsdeskError):
    """The question cannot be searched as asked, e.g. the filters exclude every article."""


class IndexProblem(NewsdeskError):
    """The index cannot be used as asked."""


class IndexMissing(IndexProblem):
    """There is no index at the given location yet."""


class IndexEmpty(IndexProblem):
    """The index exists but holds no articles."""


class IndexMismatch(IndexProblem):
    """The index was built with another model, chunking or storage format."""


class IndexBusy(IndexProblem):
    """Another process holds the writer lock."""


class IndexCorrupt(IndexProblem):
    """The parts of the index disagree or cannot be read."""


class IndexWriteFailed(IndexProblem):
    """An update could not be written (disk full, read-only); the last good index is intact."""


class IndexUnreachable(IndexProblem):
    """A remote index cannot be reached, or it refused the credentials."""


class ServiceError(NewsdeskError):
    """An outside service (a language model server) gave no usable answer."""


__all__ = [
    "CorpusError", "IndexBusy", "IndexCorrupt", "IndexEmpty", "IndexMismatch", "IndexMissing", "IndexProblem",
    "IndexUnreachable", "IndexWriteFailed", "ModelError", "NewsdeskError", "QueryError", "ServiceError",
    "SettingsError", "UsageError",
]
