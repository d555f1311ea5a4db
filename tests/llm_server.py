"""A language-model server on 127.0.0.1 that speaks OpenAI's chat completions and Ollama's /api/chat.

Each test scripts what the next requests get, in order (`server.script(...)`): a reply (sent
whole, or streamed as server-sent events / NDJSON when the client asks for a stream), an HTTP
error (e.g. 429 with Retry-After), garbage instead of JSON, or a stall longer than the client's
timeout. A request with nothing left in the script gets a 500, so an unexpected extra call fails
loudly. Every request is recorded (`server.requests`) so tests can assert on what newsdesk sent.

The server runs on its own thread and event loop, so synchronous code (`Desk.ask`) and the
Discord bot's event loop can both talk to it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """A normal answer; streamed in `pieces` (default: word by word) when the client streams."""

    text: str
    pieces: list[str] | None = None
    delay: float = 0.0  # seconds between streamed pieces

    def chunks(self) -> list[str]:
        if self.pieces is not None:
            return self.pieces
        words = self.text.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


@dataclass
class Status:
    """An HTTP error, e.g. Status(429, headers={"Retry-After": "0"})."""

    code: int
    message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Garbage:
    """A 200 whose body is not the protocol's JSON (for a stream: broken event lines)."""

    body: str = "<html>502 Bad Gateway</html>{not json"


@dataclass
class Stall:
    """Answer nothing for `seconds` (longer than the client waits), then close."""

    seconds: float


Step = Reply | Status | Garbage | Stall


@dataclass
class Seen:
    path: str
    body: Any
    headers: dict[str, str]
    at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []

    @property
    def streamed(self) -> bool:
        # OpenAI streams only when asked; Ollama streams unless told not to.
        default = self.path == "/api/chat"
        return bool(self.body.get("stream", default)) if isinstance(self.body, dict) else False


class FakeLLM:
    MODEL = "tiny-test-model"

    def __init__(self) -> None:
        self.steps: deque[Step] = deque()
        self.requests: list[Seen] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- scripting ---------------------------------------------------------------------------
    def script(self, *steps: Step) -> FakeLLM:
        """Replace what the next requests get (and forget the requests seen so far)."""
        with self._lock:
            self.steps = deque(steps)
            self.requests = []
        return self

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def ollama_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _next(self) -> Step | None:
        with self._lock:
            return self.steps.popleft() if self.steps else None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeLLM:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-llm", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake LLM server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/api/chat", self._ollama)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    # -- handlers ----------------------------------------------------------------------------
    async def _seen(self, request: web.Request) -> Seen:
        raw = await request.text()
        try:
            body: Any = json.loads(raw)
        except json.JSONDecodeError:
            body = raw
        seen = Seen(request.path, body, dict(request.headers), time.monotonic())
        with self._lock:
            self.requests.append(seen)
        return seen

    async def _common(self, seen: Seen) -> web.StreamResponse | Step:
        step = self._next()
        if step is None:
            return web.json_response({"error": {"message": "nothing scripted for this request"}}, status=500)
        if isinstance(step, Stall):
            await asyncio.sleep(step.seconds)
            return web.Response(status=504, text="stalled")
        if isinstance(step, Status):
            error = ({"error": {"message": step.message, "type": "error", "code": step.code}}
                     if seen.path.startswith("/v1") else {"error": step.message})
            return web.json_response(error, status=step.code, headers=step.headers)
        return step

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        seen = await self._seen(request)
        step = await self._common(seen)
        if isinstance(step, web.StreamResponse):
            return step
        model = seen.body.get("model", self.MODEL)
        if not seen.streamed:
            if isinstance(step, Garbage):
                return web.Response(text=step.body, content_type="application/json")
            return web.json_response({
                "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": step.text},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            })
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(data)}\n\n".encode()

        if isinstance(step, Garbage):
            await response.write(chunk({"role": "assistant", "content": ""}))
            await response.write(f"data: {step.body}\n\n".encode())
            return response
        await response.write(chunk({"role": "assistant", "content": ""}))
        for piece in step.chunks():
            if step.delay:
                await asyncio.sleep(step.delay)
            await response.write(chunk({"content": piece}))
        await response.write(chunk({}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _ollama(self, request: web.Request) -> web.StreamResponse:
        seen = await self._seen(request)
        step = await self._common(seen)
        if isinstance(step, web.StreamResponse):
            return step
        model = seen.body.get("model", self.MODEL)
        now = datetime.now(timezone.utc).isoformat()

        def line(content: str, done: bool) -> dict[str, Any]:
            data: dict[str, Any] = {"model": model, "created_at": now,
                                    "message": {"role": "assistant", "content": content}, "done": done}
            if done:
                data |= {"done_reason": "stop", "total_duration": 1000, "load_duration": 10,
                         "prompt_eval_count": 100, "prompt_eval_duration": 100, "eval_count": 20,
                         "eval_duration": 500}
            return data

        if not seen.streamed:
            if isinstance(step, Garbage):
                return web.Response(text=step.body, content_type="application/json")
            return web.json_response(line(step.text, True))
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        if isinstance(step, Garbage):
            await response.write(f"{step.body}\n".encode())
            return response
        for piece in step.chunks():
            if step.delay:
                await asyncio.sleep(step.delay)
            await response.write((json.dumps(line(piece, False)) + "\n").encode())
        await response.write((json.dumps(line("", True)) + "\n").encode())
        await response.write_eof()
        return response

    async def _unknown(self, request: web.Request) -> web.Response:
        await self._seen(request)
        return web.json_response({"error": f"no route {request.method} {request.path}"}, status=404)


@contextmanager
def fake_llm() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    try:
        yield server
    finally:
        server.stop()
