"""Prometheus metrics for hosts who run the bot as a service (served at /metrics by the health server)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """One registry per bot, so several bots in one process (tests) do not share counts."""

    def __init__(self, queue_waiting: Callable[[], float], queue_running: Callable[[], float]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.questions = Counter("newsdesk_questions", "Questions received, by how they were asked",
                                 ["via"], registry=r)
        self.answers = Counter("newsdesk_answers", "Answers posted", registry=r)
        self.abstentions = Counter("newsdesk_abstentions", "Answers that found nothing in the corpus", registry=r)
        self.latency = Histogram("newsdesk_answer_seconds", "Seconds from question to posted answer", registry=r,
                                 buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
        self.votes = Counter("newsdesk_votes", "Votes on answers", ["vote"], registry=r)
        self.refused = Counter("newsdesk_busy_refusals", "Questions turned away because the queue was full",
                               registry=r)
        self.too_late = Counter("newsdesk_expired_questions",
                                "Questions dropped because they waited until their interaction was about to expire",
                                registry=r)
        self.errors = Counter("newsdesk_errors", "Errors logged with an error id", registry=r)
        waiting = Gauge("newsdesk_queue_waiting", "Questions waiting for a worker", registry=r)
        waiting.set_function(queue_waiting)
        running = Gauge("newsdesk_queue_running", "Questions being answered", registry=r)
        running.set_function(queue_running)
