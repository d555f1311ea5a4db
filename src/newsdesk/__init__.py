"""newsdesk: cited answers from a corpus of news articles."""

from newsdesk.answer import Answer, Citation
from newsdesk.chat import ChatSession
from newsdesk.chunk import Chunk
from newsdesk.desk import Desk
from newsdesk.load import Document
from newsdesk.retrieve import Passage

__all__ = ["Answer", "ChatSession", "Chunk", "Citation", "Desk", "Document", "Passage"]
