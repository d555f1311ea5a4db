"""A small HTTP server on localhost for service managers and Prometheus: /health and /metrics.

/health answers 200 with JSON while every shard is connected, 503 otherwise:
  {"connected": true, "shards": {"0": {"connected": true, "latency_ms": 41.0}}, "guilds": 3,
   "index_generation": 7, "queue": {"waiting": 0, "running": 1}}
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from newsdesk_bot.client import NewsdeskBot

log = logging.getLogger("newsdesk.bot")


class HealthServer:
    def __init__(self, bot: NewsdeskBot, host: str, port: int):
        self.bot = bot
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("Health and metrics at http://%s:%d/health and /metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def health(self, request: web.Request) -> web.Response:
        bot = self.bot
        shards = {str(sid): {"connected": not info.is_closed() and bot.is_ready(),
                             "latency_ms": None if math.isnan(info.latency) or math.isinf(info.latency)
                             else round(info.latency * 1000, 1)}
                  for sid, info in sorted(bot.shards.items())}
        generation: Any = None
        try:
            generation = await asyncio.wait_for(asyncio.to_thread(lambda: bot.desk.generation), 5)
        except Exception as err:  # the health answer says what is wrong instead of failing
            log.warning("Health check could not read the index: %s", err)
        connected = bool(shards) and all(s["connected"] for s in shards.values())
        body = {"connected": connected, "shards": shards, "guilds": len(bot.guilds),
                "index_generation": generation,
                "queue": {"waiting": bot.queue.waiting, "running": bot.queue.running}}
        return web.json_response(body, status=200 if connected and generation is not None else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.bot.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
