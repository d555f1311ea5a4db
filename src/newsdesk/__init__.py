"""newsdesk: cited answers from a corpus of news articles."""

from newsdesk.answer import Answer, Citation
from newsdesk.chat import ChatSession
from newsdesk.chunk import Chunk
from newsdesk.desk import Desk
from newsdesk.embed import ModelNotFound
from newsdesk.index import IndexMismatch, UpdateReport
from newsdesk.layout import IndexBusy
from newsdesk.llm import LLMSettings, LLMSettingsError
from newsdesk.load import Document
from newsdesk.reader import IndexMissing
from newsdesk.retrieve import Passage
from newsdesk.watch import Watcher

__all__ = ["Answer", "ChatSession", "Chunk", "Citation", "Desk", "Document", "IndexBusy", "IndexMismatch",
           "IndexMissing", "LLMSettings", "LLMSettingsError", "ModelNotFound", "Passage", "UpdateReport", "Watcher"]
