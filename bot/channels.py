"""Per-channel set-up chosen by a server's admins with /channel: when to answer, and what to search.

Kept in a small JSON file beside the feedback log (written whole, then renamed, so a crash
never leaves half a file). Threads and forum posts follow their parent channel.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

MENTIONS, EVERY_MESSAGE, OFF = "mentions", "every message", "off"
MODES = (MENTIONS, EVERY_MESSAGE, OFF)


@dataclass(frozen=True)
class ChannelSetup:
    # mentions: answer when mentioned (and follow-ups in its threads); every message: answer each
    # new message or forum post; off: answer nothing here.
    mode: str = MENTIONS
    source: str | None = None  # search only this source
    days: int | None = None  # search only articles from the last `days` days

    def scope(self, today: date | None = None) -> dict[str, Any]:
        """desk.ask options for this channel's default scope."""
        out: dict[str, Any] = {}
        if self.source:
            out["source"] = self.source
        if self.days:
            out["since"] = ((today or date.today()) - timedelta(days=self.days)).isoformat()
        return out

    def describe(self) -> str:
        parts = {MENTIONS: "I answer when mentioned", EVERY_MESSAGE: "I answer every new message or post",
                 OFF: "I don't answer here"}[self.mode]
        if self.mode != OFF and (self.source or self.days):
            scope = [f"source {self.source}" if self.source else "", f"the last {self.days} days" if self.days else ""]
            parts += ", searching only " + " and ".join(s for s in scope if s)
        return parts + "."


class ChannelSetups:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._setups: dict[int, ChannelSetup] | None = None

    def get(self, channel_id: int) -> ChannelSetup:
        return self._load().get(channel_id, ChannelSetup())

    def set(self, channel_id: int, setup: ChannelSetup | None) -> None:
        with self._lock:
            setups = dict(self._load())
            if setup is None or setup == ChannelSetup():
                setups.pop(channel_id, None)
            else:
                setups[channel_id] = setup
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({str(k): asdict(v) for k, v in setups.items()}, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
            self._setups = setups

    def _load(self) -> dict[int, ChannelSetup]:
        if self._setups is None:
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raw = {}
            self._setups = {int(k): ChannelSetup(**v) for k, v in raw.items()}
        return self._setups
