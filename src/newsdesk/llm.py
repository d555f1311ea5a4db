"""Language-model clients for optional generated answers: settings, retries and deadlines.

The clients are llama-index's own integrations (`OpenAILike` for any OpenAI-compatible server:
OpenAI, vLLM, llama.cpp's server, LM Studio; `Ollama` for Ollama), installed with the `llm`
extra. newsdesk adds what a bot needs around them:

- bounded retries with exponential backoff for timeouts, connection errors, 429s, 5xx answers
  and malformed responses (the clients' own retries are off, so there is one policy);
- a deadline for the whole call, retries included: each attempt's HTTP timeout is cut to the
  time left, and a stream is abandoned when the time is up;
- `LLMUnavailable` with a sentence for the reader when the model cannot be used, so the caller
  can fall back to the extractive answer.

Settings are the "llm" group of the settings table (`newsdesk.settings`): the front ends read
them from `NEWSDESK_LLM_*` variables or the bot's `[llm]` table and build `LLMSettings` with
`LLMSettings.from_settings`; the API key only ever comes from the environment.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from newsdesk.errors import ServiceError, SettingsError

log = logging.getLogger("newsdesk.llm")

PROVIDERS = ("openai-compatible", "ollama")
DEFAULT_URLS = {"openai-compatible": "https://api.openai.com/v1", "ollama": "http://localhost:11434"}


class LLMSettingsError(SettingsError):
    """A setting of the language model is missing or wrong; the message names it and says how to fix it."""


class LLMUnavailable(ServiceError):
    """The model gave no usable answer in time; `note` says so in a sentence for the reader."""

    def __init__(self, note: str, detail: str = ""):
        super().__init__(detail or note)
        self.note = note


@dataclass(frozen=True)
class LLMSettings:
    provider: str
    model: str
    base_url: str = ""  # empty: the provider's usual address
    api_key: str | None = field(default=None, repr=False)
    # Seconds one HTTP request may take (a stream: between two pieces of it).
    timeout: float = 30.0
    # Seconds the whole answer may take, retries included, when the caller sets no deadline.
    deadline: float = 60.0
    retries: int = 2  # further attempts after the first
    backoff: float = 0.5  # seconds before the first retry; doubled each time
    temperature: float = 0.0
    max_tokens: int = 400
    context_window: int = 8192
    stream: bool = True
    # Rewrite chat follow-ups into standalone questions with the model (else: the rule-based rewrite).
    condense: bool = True

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise LLMSettingsError(
                f"LLM provider {self.provider!r} is not known: use one of {', '.join(PROVIDERS)}")
        if not self.model:
            raise LLMSettingsError(
                "no LLM model named: set NEWSDESK_LLM_MODEL (or model in the [llm] table) to the model's name, "
                "e.g. llama3.2:1b for Ollama")
        for name in ("timeout", "deadline"):
            if getattr(self, name) <= 0:
                raise LLMSettingsError(f"LLM {name} must be more than 0 seconds, not {getattr(self, name)}")
        if self.retries < 0 or self.backoff < 0 or self.max_tokens < 1:
            raise LLMSettingsError("LLM retries and backoff must be at least 0, max_tokens at least 1")

    @property
    def url(self) -> str:
        return (self.base_url or DEFAULT_URLS[self.provider]).rstrip("/")

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> LLMSettings | None:
        """From the "llm" group of the settings table (`newsdesk.settings.read_settings`); None when
        no provider is set, i.e. answers are extractive."""
        provider = str(values.get("provider") or "").strip().lower()
        if provider in {"", "none"}:
            return None
        known = {f.name for f in fields(cls)}
        chosen = {k: v for k, v in values.items() if k in known}
        chosen["provider"] = provider
        chosen["api_key"] = chosen.get("api_key") or None
        return cls(**chosen)


# -- deadlines -------------------------------------------------------------------------------
class Deadline:
    """A point in time (monotonic clock) that a call must finish by."""

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


class DeadlineExceeded(Exception):
    pass


# -- calling the model -----------------------------------------------------------------------
Message = tuple[str, str]  # (role, content)


class LLM:
    """One configured model; `chat` and `condense` retry, respect deadlines and raise LLMUnavailable."""

    def __init__(self, settings: LLMSettings, *, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self._sleep = sleep
        _import_client(settings.provider)  # fail now, with instructions, if the extra is missing

    @property
    def name(self) -> str:
        return self.settings.model

    def client(self, timeout: float) -> Any:
        """A llama-index LLM whose requests give up after `timeout` seconds (no retries of its own)."""
        s = self.settings
        if s.provider == "ollama":
            from llama_index.llms.ollama import Ollama

            return Ollama(model=s.model, base_url=s.url, request_timeout=timeout, temperature=s.temperature,
                          context_window=s.context_window, additional_kwargs={"num_predict": s.max_tokens})
        from llama_index.llms.openai_like import OpenAILike

        # Local servers want no key, but the OpenAI client insists on one: send a placeholder.
        return OpenAILike(model=s.model, api_base=s.url, api_key=s.api_key or "unused", is_chat_model=True,
                          context_window=s.context_window, max_tokens=s.max_tokens, temperature=s.temperature,
                          timeout=timeout, max_retries=0, reuse_client=False)

    def chat(self, messages: Sequence[Message], deadline: Deadline, *,
             on_text: Callable[[str], None] | None = None) -> str:
        """The model's reply to `messages`; `on_text` sees the reply so far as it streams ("" after a retry)."""
        def attempt(client: Any) -> str:
            chat_messages = _messages(messages)
            if not self.settings.stream:
                reply = client.chat(chat_messages).message.content
                if not isinstance(reply, str):
                    raise MalformedReply(f"the reply has no text content: {reply!r}")
                return reply
            text = ""
            started = False
            for piece in client.stream_chat(chat_messages):
                if deadline.expired():
                    raise DeadlineExceeded()
                text += piece.delta or ""
                if on_text is not None and piece.delta:
                    started = True
                    on_text(text)
            if on_text is not None and not started:
                on_text(text)
            return text

        return self._with_retries(attempt, deadline, restart=(lambda: on_text("")) if on_text else None)

    def condense(self, history: Sequence[Message], question: str, deadline: Deadline) -> str:
        """llama-index's condense-question step: the follow-up rewritten as a standalone question."""
        from llama_index.core.base.llms.generic_utils import messages_to_history_str
        from llama_index.core.chat_engine.condense_question import DEFAULT_PROMPT

        if not history:
            return question
        history_str = messages_to_history_str(_messages(history))
        prompt = DEFAULT_PROMPT.format(chat_history=history_str, question=question)

        def attempt(client: Any) -> str:
            reply = client.chat(_messages([("user", prompt)])).message.content
            if not isinstance(reply, str) or not reply.strip():
                raise MalformedReply("the model returned no standalone question")
            return " ".join(reply.split())

        return self._with_retries(attempt, deadline)

    def _with_retries(self, attempt: Callable[[Any], str], deadline: Deadline,
                      restart: Callable[[], None] | None = None) -> str:
        """One policy for every call (tenacity): retry what a client reports as a transport failure,
        a timeout, a 408/409/429/5xx or a reply it could not parse, at most `retries` times, never
        past the deadline; give up at once on anything else the client reports (a refused key, an
        unknown model). Any other exception is a bug and is raised as it is."""
        from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

        s = self.settings
        failures: list[str] = []

        def wait(state: RetryCallState) -> float:
            err = state.outcome.exception() if state.outcome else None
            asked = _retry_after(err) if err is not None else None
            n = state.attempt_number - 1
            delay = asked if asked is not None else s.backoff * (2 ** n) * (0.75 + random.random() / 2)
            return max(0.0, delay)

        def out_of_time(state: RetryCallState) -> bool:
            # Stop when the next wait would reach the deadline: a retry cannot finish in time.
            return wait(state) >= deadline.remaining() - 0.05

        def before_sleep(state: RetryCallState) -> None:
            if restart is not None:
                restart()

        retrying = Retrying(stop=stop_after_attempt(s.retries + 1) | out_of_time, wait=wait,
                            retry=retry_if_exception(_retryable), before_sleep=before_sleep, reraise=True,
                            sleep=self._sleep)
        try:
            for attempt_state in retrying:
                with attempt_state:
                    left = deadline.remaining()
                    if left <= 0.05:
                        raise DeadlineExceeded()
                    try:
                        return attempt(self.client(min(s.timeout, left)))
                    except DeadlineExceeded:
                        raise
                    except Exception as err:
                        if _known(err):
                            failures.append(_describe(err))
                            log.warning("LLM %s attempt %d/%d failed: %s", s.model, attempt_state.retry_state.attempt_number,
                                        s.retries + 1, failures[-1])
                        raise
        except DeadlineExceeded:
            raise LLMUnavailable(TIMED_OUT, "the deadline passed while the model was answering") from None
        except Exception as err:
            if not _known(err):
                raise  # a bug in newsdesk or a client: not the model's fault, keep the traceback
            last = failures[-1] if failures else _describe(err)
            if not _retryable(err):
                raise LLMUnavailable(_note_for(err), last) from err
            timed_out = isinstance(err, _timeouts()) or "timed out" in last.lower()
            raise LLMUnavailable(TIMED_OUT if timed_out else UNUSABLE, last) from err
        raise LLMUnavailable(TIMED_OUT, "no attempt could start before the deadline")


class MalformedReply(ValueError):
    """The server answered, but not with what the protocol promises (no text, no question)."""


TIMED_OUT = "The language model did not answer in time, so this answer is made of the articles' own sentences."
UNUSABLE = "The language model could not be used just now, so this answer is made of the articles' own sentences."
UNSUPPORTED = ("The language model's answer was not supported by the passages it cited, so this answer is made "
               "of the articles' own sentences.")


def _messages(messages: Sequence[Message]) -> list[Any]:
    from llama_index.core.llms import ChatMessage

    return [ChatMessage(role=role, content=content) for role, content in messages]


def _status(err: BaseException) -> int | None:
    status = getattr(err, "status_code", None)
    response = getattr(err, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _client_errors() -> tuple[type[BaseException], ...]:
    """The errors the two clients (and their HTTP layer) raise for a failed exchange."""
    import httpx

    errors: list[type[BaseException]] = [httpx.HTTPError, MalformedReply, json.JSONDecodeError]
    try:
        import openai

        errors.append(openai.APIError)
    except ImportError:
        pass
    try:
        import ollama

        errors += [ollama.ResponseError, ollama.RequestError]
    except ImportError:
        pass
    try:
        import pydantic_core

        errors.append(pydantic_core.ValidationError)  # a reply the client could not parse
    except ImportError:
        pass
    return tuple(errors)


def _timeouts() -> tuple[type[BaseException], ...]:
    import httpx

    out: list[type[BaseException]] = [httpx.TimeoutException, TimeoutError]
    try:
        import openai

        out.append(openai.APITimeoutError)
    except ImportError:
        pass
    return tuple(out)


def _known(err: BaseException) -> bool:
    return isinstance(err, _client_errors()) or isinstance(err, (ConnectionError, TimeoutError))


def _retryable(err: BaseException) -> bool:
    """Worth another attempt: the exchange failed, not the request itself."""
    if not _known(err):
        return False
    status = _status(err)
    if status == -1:  # Ollama reported an error in the middle of a stream
        return True
    if status is not None:
        return status in (408, 409, 429) or status >= 500
    import httpx

    try:
        import openai

        if isinstance(err, openai.APIStatusError):
            return False  # a status we did not read: not retried
    except ImportError:
        pass
    if isinstance(err, httpx.HTTPStatusError):
        return False
    return True  # transport failures, timeouts and replies that could not be parsed


def _describe(err: BaseException) -> str:
    status = _status(err)
    described = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
    return f"HTTP {status} ({described})" if status is not None and status >= 0 else described


def _retry_after(err: BaseException) -> float | None:
    """The seconds a 429 asks to wait (Retry-After), if it says."""
    if _status(err) != 429:
        return None
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return max(0.0, float(headers.get("retry-after") or headers.get("Retry-After") or ""))
    except (TypeError, ValueError):
        return None


def _note_for(err: Exception) -> str:
    status = getattr(err, "status_code", None)
    if status in (401, 403):
        log.error("The LLM server refused the API key: check NEWSDESK_LLM_API_KEY")
    elif status == 404:
        log.error("The LLM server does not know the model or the address: check NEWSDESK_LLM_MODEL and "
                  "NEWSDESK_LLM_BASE_URL")
    return UNUSABLE


def _import_client(provider: str) -> None:
    module = "llama_index.llms.ollama" if provider == "ollama" else "llama_index.llms.openai_like"
    try:
        __import__(module)
    except ImportError:
        raise LLMSettingsError(
            f"the {provider} client is not installed: run pip install 'newsdesk[llm]' "
            "(it adds llama-index-llms-openai-like and llama-index-llms-ollama)") from None
