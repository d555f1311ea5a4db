"""The feedback log: one JSON object per line, only ever appended to.

Two kinds of record:
  {"kind": "answer", "answer_id", "time", "question", "query", "answer", "abstained", "citations", "related"}
      written when an answer is posted (no user id), so a vote can be tied to what was shown;
  {"kind": "vote", "answer_id", "time", "vote": "up"|"down", "user", "question", "answer", "citations"}
      written on a 👍/👎 click; "user" is a keyed hash of the Discord user id.

The hash key is a random secret kept beside the log (`<log>.key`, created on first use): without
it a hash of a user id could be reversed by hashing every plausible id. Keep the key private;
delete it to make older hashes unlinkable to newer ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from newsdesk import Answer


def new_answer_id() -> str:
    return secrets.token_hex(8)


class FeedbackLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._offsets: dict[str, int] | None = None  # answer id -> byte offset of its record
        self._key: bytes | None = None
        self._key_lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------------
    def record_answer(self, answer_id: str, answer: Answer) -> None:
        data = answer.to_dict()
        self._append({
            "kind": "answer", "answer_id": answer_id, "time": _now(), "question": data["question"],
            "query": answer.query or data["question"], "answer": data["answer"], "abstained": data["abstained"],
            "citations": data["citations"], "related": data["related"],
        })

    def record_vote(self, answer_id: str, vote: str, user_id: int) -> dict[str, Any]:
        """Append a vote with what was voted on; an answer the log no longer has is recorded by id only."""
        if vote not in ("up", "down"):
            raise ValueError(f"vote must be 'up' or 'down', not {vote!r}")
        shown = self.answer(answer_id) or {}
        record = {
            "kind": "vote", "answer_id": answer_id, "time": _now(), "vote": vote, "user": self.hash_user(user_id),
            "question": shown.get("question"), "answer": shown.get("answer"), "citations": shown.get("citations"),
        }
        self._append(record)
        return record

    def _append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            offsets = self._index()
            with open(self.path, "ab") as f:
                offset = f.tell()
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            if record["kind"] == "answer":
                offsets[record["answer_id"]] = offset

    # -- reading -------------------------------------------------------------------------------
    def answer(self, answer_id: str) -> dict[str, Any] | None:
        """The answer record with this id, also from before a restart."""
        with self._lock:
            offset = self._index().get(answer_id)
            if offset is None:
                return None
            with open(self.path, "rb") as f:
                f.seek(offset)
                return json.loads(f.readline())

    def _index(self) -> dict[str, int]:
        if self._offsets is None:
            self._offsets = {}
            if self.path.exists():
                with open(self.path, "rb") as f:
                    offset = 0
                    for line in f:
                        try:
                            record = json.loads(line)
                        except ValueError:
                            record = {}  # a line cut short by a crash: skip it
                        if isinstance(record, dict) and record.get("kind") == "answer":
                            self._offsets[str(record.get("answer_id"))] = offset
                        offset += len(line)
        return self._offsets

    # -- hashing -------------------------------------------------------------------------------
    def hash_user(self, user_id: int) -> str:
        return hmac.new(self._secret(), str(user_id).encode(), hashlib.sha256).hexdigest()[:32]

    def _secret(self) -> bytes:
        with self._key_lock:
            if self._key is None:
                key_file = self.path.with_name(self.path.name + ".key")
                key_file.parent.mkdir(parents=True, exist_ok=True)
                try:
                    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "w") as f:
                        f.write(secrets.token_hex(32))
                self._key = bytes.fromhex(key_file.read_text().strip())
            return self._key


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
