"""The topics each channel follows (/follow), whose news the bot posts after an index update.

Kept in a small JSON file beside the feedback log, `{"<channel id>": ["topic", ...]}` (written
whole, then renamed, so a crash never leaves half a file), so they survive restarts.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

MAX_TOPICS = 25  # per channel: each topic is matched against every update
# A topic is a few words; 100 characters is also the most a choice /unfollow offers may hold.
TOPIC_CHARS = 100


def topic_key(topic: str) -> str:
    """Two spellings of a topic that differ only in case or spacing are one topic."""
    return " ".join(topic.split()).casefold()


class FollowedTopics:
    """channel id -> the topics it follows, in the order they were followed."""

    ADDED, ALREADY, FULL = "added", "already", "full"

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._topics: dict[int, list[str]] | None = None

    def of(self, channel_id: int) -> list[str]:
        return list(self._load().get(channel_id, []))

    def add(self, channel_id: int, topic: str) -> tuple[str, int]:
        """ADDED, ALREADY (the channel follows it) or FULL (it follows MAX_TOPICS already), and how
        many topics the channel follows now."""
        with self._lock:
            topics = self._load().get(channel_id, [])
            if any(topic_key(t) == topic_key(topic) for t in topics):
                return self.ALREADY, len(topics)
            if len(topics) >= MAX_TOPICS:
                return self.FULL, len(topics)
            self._save(channel_id, [*topics, topic])
            return self.ADDED, len(topics) + 1

    def remove(self, channel_id: int, topic: str) -> str | None:
        """The topic as the channel followed it, now removed; None if it did not follow it."""
        with self._lock:
            topics = self._load().get(channel_id, [])
            gone = next((t for t in topics if topic_key(t) == topic_key(topic)), None)
            if gone is not None:
                self._save(channel_id, [t for t in topics if t != gone])
            return gone

    def forget(self, channel_id: int) -> None:
        """Every topic of a channel that no longer exists."""
        with self._lock:
            self._save(channel_id, [])

    def followers(self) -> dict[str, list[tuple[int, str]]]:
        """topic key -> (channel id, the topic as that channel wrote it) of every channel following it."""
        out: dict[str, list[tuple[int, str]]] = {}
        for channel_id, topics in self._load().items():
            for topic in topics:
                out.setdefault(topic_key(topic), []).append((channel_id, topic))
        return out

    def _save(self, channel_id: int, topics: list[str]) -> None:
        every = dict(self._load())
        if topics:
            every[channel_id] = topics
        else:
            every.pop(channel_id, None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({str(k): v for k, v in every.items()}, indent=1, ensure_ascii=False),
                       encoding="utf-8")
        os.replace(tmp, self.path)
        self._topics = every

    def _load(self) -> dict[int, list[str]]:
        if self._topics is None:
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raw = {}
            self._topics = {int(k): [str(t) for t in v] for k, v in raw.items() if v}
        return self._topics
