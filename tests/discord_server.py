"""A small Discord on 127.0.0.1: the gateway websocket and the REST routes a bot uses, as strict as Discord.

It speaks the real protocol (API v10 payload shapes, checked against discord.py 2.7's parsers
and Discord's API reference) so the real bot can be pointed at it (`pointed_at`), and it
records every request so tests can assert on exactly what the bot sent. It enforces what
Discord enforces, so that what would break on Discord breaks here:

- auth: REST needs `Authorization: Bot <token>` (401); IDENTIFY with a wrong token is closed
  with 4004, a privileged intent the application lacks with 4014, a bad shard with 4010/4011;
- the gateway: heartbeats, sequence numbers, sessions that can be resumed (op 6 -> replay ->
  RESUMED) after the server asks for a reconnect (op 7, `request_reconnect`); events go to the
  shard that owns the guild, `(guild_id >> 22) % shard_count`, DMs to shard 0;
- interactions: the first response must come within 3 seconds (else 404, 10062 "Unknown
  interaction", which the user sees as "This interaction failed"), the token works for 15
  minutes (then 401, 50027), both on `clock`, which tests move with `advance`; the first
  followup after a deferred "thinking" response edits the loading message (keeping the defer's
  ephemerality); autocomplete answers are checked (at most 25 choices of 1-100 characters);
- commands: global and per-guild registrations are kept apart, as on Discord, so stale or
  duplicate commands stay visible (`visible_commands`); a member sees a command only if they
  have its `default_member_permissions` and it allows the context (guild, bot DM), unless a
  server admin allowed or denied it to them or a role of theirs under Integrations (`permit`);
  string options longer or shorter than their `max_length`/`min_length` cannot be sent;
- rate limits: per-route buckets with Discord's headers (X-RateLimit-*, Retry-After, Via) and
  429 bodies with `retry_after`;
- permissions of the bot's own role and channel overwrites: View Channel, Send Messages, Send
  Messages in Threads, Read Message History (replies, history, fetching a message), Embed Links
  (embeds are silently dropped without it), Create Public Threads;
- replies to a deleted message fail (400, 50035) unless `fail_if_not_exists` is false;
  archived threads unarchive when the bot posts, locked ones refuse (400, 50083);
- messages over Discord's limits are refused (400, 50035), empty ones with 50006;
- `refuse` makes Discord refuse chosen requests once, for causes a test cannot set up otherwise
  (an outage of one route, a webhook Discord stopped accepting), with the error a bot would get.

What users *see* differs from what was sent in one way a bot can get wrong: the Discord client
merges embeds that share a `url` into the first one (an image gallery) and drops the text of
the others (discord-api-docs issues 1418 and 4129). `seen_embeds` shows a message as users see
it; `markdown_spans` finds the links, mentions and formatting Discord's markdown would render.

Tests drive it with `user_message`, `slash`, `context_menu`, `autocomplete`, `click`,
`forum_post` and friends, and wait with `wait_for`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import discord
import yarl
from aiohttp import WSMsgType, web

API = "/api/v10"
DISCORD_EPOCH = 1420070400000
MESSAGE_CONTENT = 1 << 15  # the privileged gateway intent
EPHEMERAL = 1 << 6
LOADING = 1 << 7
FIRST_RESPONSE_SECONDS = 3.0
TOKEN_SECONDS = 15 * 60

P = discord.Permissions
MEMBER_PERMISSIONS = P(
    view_channel=True, send_messages=True, embed_links=True, read_message_history=True,
    create_public_threads=True, send_messages_in_threads=True, use_application_commands=True, add_reactions=True,
).value
# What the invite link in docs/discord.md asks for.
BOT_PERMISSIONS = P(view_channel=True, send_messages=True, send_messages_in_threads=True, create_public_threads=True,
                    embed_links=True, read_message_history=True).value
ADMINISTRATOR = P(administrator=True).value
EMBED_LINKS = P(embed_links=True).value
CREATE_PUBLIC_THREADS = P(create_public_threads=True).value
VIEW_CHANNEL = P(view_channel=True).value
SEND_MESSAGES = P(send_messages=True).value
SEND_IN_THREADS = P(send_messages_in_threads=True).value
READ_HISTORY = P(read_message_history=True).value
MANAGE_THREADS = P(manage_threads=True).value
MANAGE_GUILD = P(manage_guild=True).value
MANAGE_CHANNELS = P(manage_channels=True).value
ALL_PERMISSIONS = P.all().value
BODY = web.RequestKey("json", object)  # the parsed request body

# Per-route buckets: (limit, seconds). Message creation is 5 per 5 s per channel on Discord.
RATE_LIMITS: dict[str, tuple[int, float]] = {
    "POST /channels/{channel}/messages": (5, 5.0),
    "PATCH /channels/{channel}/messages/{message}": (5, 5.0),
    "POST /channels/{channel}/messages/{message}/threads": (5, 5.0),
    "PATCH /webhooks/{app}/{token}/messages/@original": (5, 2.0),
    "POST /webhooks/{app}/{token}": (5, 2.0),
}


class CommandHidden(AssertionError):
    """Discord would not offer this command to this member here, so no interaction can happen."""


class OptionRefused(AssertionError):
    """Discord's client would not send the command with this option value (too long or too short)."""


@dataclass
class Request:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    status: int = 0
    response: Any = None  # the JSON the server answered with


@dataclass
class Session:
    """One gateway session: it outlives its websocket, so it can be resumed."""

    id: str
    shard: tuple[int, int]
    intents: int
    ws: web.WebSocketResponse | None = None
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)  # every dispatch, for replay on resume
    resumes: int = 0


def _now(clock: float | None = None) -> str:
    return datetime.fromtimestamp(clock if clock is not None else time.time(), timezone.utc).isoformat()


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name.title(),
            "avatar": None, "bot": bot, "public_flags": 0, "flags": 0, "banner": None, "accent_color": None,
            "avatar_decoration_data": None, "collectibles": None, "primary_guild": None}


def role_payload(role_id: int, name: str, permissions: int, position: int, *, managed: bool = False) -> dict[str, Any]:
    return {"id": str(role_id), "name": name, "permissions": str(permissions), "position": position, "color": 0,
            "colors": {"primary_color": 0}, "hoist": False, "managed": managed, "mentionable": False, "flags": 0}


def snowflake_time(snowflake: int | str) -> float:
    return ((int(snowflake) >> 22) + DISCORD_EPOCH) / 1000


def _error(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> web.HTTPException:
    body = {"message": message, "code": code, **({"errors": errors} if errors else {})}
    cls = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound}[status]
    return cls(text=json.dumps(body), content_type="application/json")


class FakeDiscord:
    TOKEN = "MTA.fake-token.for-the-local-test-server"

    def __init__(self, *, message_content_allowed: bool = True, recommended_shards: int = 1, max_concurrency: int = 1,
                 rate_limits: dict[str, tuple[int, float]] | None = None,
                 hidden_limits: dict[str, tuple[int, float]] | None = None):
        self.message_content_allowed = message_content_allowed
        self.recommended_shards = recommended_shards
        self.max_concurrency = max_concurrency  # shards that may identify within the same 5 seconds
        self.rate_limits = dict(RATE_LIMITS if rate_limits is None else rate_limits)
        # Sub-limits Discord enforces without announcing them in headers: only a 429 tells.
        self.hidden_limits = dict(hidden_limits or {})
        self._offset = 0.0
        self._next = 0
        self.app_id = self.bot_id = self.snowflake()
        self.bot_user = user_payload(self.bot_id, "newsdesk", bot=True)
        self.users: dict[int, dict[str, Any]] = {}
        self.owner = self.user("owner")
        self.owner_id = int(self.owner["id"])
        self.guilds: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[int, dict[str, Any]]] = {}
        self.deleted: set[int] = set()
        self.guild_id = self.add_guild("Port Halden newsroom")
        guild = self.guilds[self.guild_id]
        self.admin_role_id = self.snowflake()
        guild["roles"].append(role_payload(self.admin_role_id, "newsroom editors", MEMBER_PERMISSIONS | MANAGE_GUILD, 2))
        self.news_channel_id = self.add_channel("news")  # where questions are allowed
        self.other_channel_id = self.add_channel("random")
        # @everyone may neither embed links nor open threads here
        self.plain_channel_id = self.add_channel("no-embeds", deny={self.guild_id: EMBED_LINKS | CREATE_PUBLIC_THREADS})
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self._command_ids: dict[tuple[int | None, int, str], str] = {}
        # (guild, command name) -> user or role id -> allowed: Server Settings -> Integrations
        self.command_overrides: dict[tuple[int, str], dict[int, bool]] = {}
        self.interactions: dict[str, dict[str, Any]] = {}  # token -> interaction record
        self.requests: list[Request] = []
        self._refusals: list[tuple[Callable[[str, str], bool], int, int, str]] = []
        self.identifies: list[dict[str, Any]] = []
        self.identified_at: list[float] = []  # time.monotonic() of each IDENTIFY
        self.resumes: list[dict[str, Any]] = []
        self.gateway_closes: list[int] = []
        self.sessions: dict[str, Session] = {}
        self._buckets: dict[str, deque[float]] = {}
        self._changed: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- time --------------------------------------------------------------------------------
    def clock(self) -> float:
        """Discord's idea of the time (epoch seconds): the wall clock plus whatever tests advanced."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    # -- ids, guilds, channels, payloads -------------------------------------------------------
    def snowflake(self) -> int:
        self._next += 1
        return ((int(self.clock() * 1000) - DISCORD_EPOCH) << 22) | (self._next & 0x3FFFFF)

    def user(self, name: str, *, bot: bool = False) -> dict[str, Any]:
        """A new member of every guild (a human unless `bot`)."""
        uid = self.snowflake()
        self.users[uid] = user_payload(uid, name, bot=bot)
        return self.users[uid]

    def add_guild(self, name: str, *, shard: tuple[int, int] | None = None) -> int:
        """A guild the bot is in, with an @everyone role and the bot's own managed role.

        With `shard` = (i, n) the id is chosen so that the guild belongs to shard i of n.
        """
        gid = self.snowflake()
        while shard is not None and (gid >> 22) % shard[1] != shard[0]:
            gid += 1 << 22
        bot_role = self.snowflake()
        self.guilds[gid] = {
            "id": gid, "name": name, "owner_id": self.owner_id, "bot_role_id": bot_role,
            "roles": [role_payload(gid, "@everyone", MEMBER_PERMISSIONS, 0),
                      role_payload(bot_role, "newsdesk", BOT_PERMISSIONS, 1, managed=True)],
        }
        return gid

    def add_channel(self, name: str, *, guild_id: int | None = None, kind: int = 0,
                    deny: dict[int, int] | None = None, allow: dict[int, int] | None = None) -> int:
        """A text (0) or forum (15) channel; `deny`/`allow` map role or user ids to permission bits."""
        guild_id = guild_id or self.guild_id
        cid = self.snowflake()
        overwrites = [{"id": str(target), "type": 0 if target in self._role_ids(guild_id) else 1,
                       "allow": str((allow or {}).get(target, 0)), "deny": str((deny or {}).get(target, 0))}
                      for target in sorted({*(deny or {}), *(allow or {})})]
        self.channels[cid] = {
            "id": str(cid), "type": kind, "guild_id": str(guild_id), "name": name,
            "position": len(self.channels), "permission_overwrites": overwrites, "parent_id": None,
            "topic": None, "nsfw": False, "last_message_id": None, "rate_limit_per_user": 0, "flags": 0,
        }
        if kind == 15:
            self.channels[cid].update(available_tags=[], default_reaction_emoji=None, default_sort_order=None,
                                      default_forum_layout=0, default_thread_rate_limit_per_user=0)
        self.messages[cid] = {}
        return cid

    def _role_ids(self, guild_id: int) -> set[int]:
        return {int(r["id"]) for r in self.guilds[guild_id]["roles"]}

    def bot_role(self, guild_id: int | None = None) -> dict[str, Any]:
        guild = self.guilds[guild_id or self.guild_id]
        return next(r for r in guild["roles"] if int(r["id"]) == guild["bot_role_id"])

    def set_bot_permissions(self, permissions: int, *, guild_id: int | None = None) -> None:
        """What the bot's role may do in the whole guild (a host who unticked some at invite time)."""
        self.bot_role(guild_id)["permissions"] = str(permissions)

    async def set_overwrite(self, channel_id: int, target: int, *, allow: int = 0, deny: int = 0) -> None:
        """Change a channel's permission overwrite for a role or member; the bot is told (CHANNEL_UPDATE)."""
        channel = self.channels[channel_id]
        gid = int(channel["guild_id"])
        kept = [o for o in channel["permission_overwrites"] if int(o["id"]) != target]
        kept.append({"id": str(target), "type": 0 if target in self._role_ids(gid) else 1,
                     "allow": str(allow), "deny": str(deny)})
        channel["permission_overwrites"] = kept
        await self.dispatch("CHANNEL_UPDATE", channel, guild_id=gid)

    def member_payload(self, user: dict[str, Any], roles: list[int] = (), *, with_user: bool = True) -> dict[str, Any]:
        member = {"roles": [str(r) for r in roles], "joined_at": _now(self.clock()), "deaf": False, "mute": False,
                  "flags": 0, "pending": False, "nick": None, "avatar": None, "banner": None, "premium_since": None,
                  "communication_disabled_until": None}
        return {"user": user, **member} if with_user else member

    def _bot_member(self, guild_id: int, *, with_user: bool = True) -> dict[str, Any]:
        return self.member_payload(self.bot_user, [self.guilds[guild_id]["bot_role_id"]], with_user=with_user)

    def guild_payload(self, guild_id: int | None = None) -> dict[str, Any]:
        gid = guild_id or self.guild_id
        guild = self.guilds[gid]
        mine = [c for c in self.channels.values() if c.get("guild_id") == str(gid)]
        threads = [c for c in mine if c["type"] == 11 and not c["thread_metadata"]["archived"]]
        return {
            "id": str(gid), "name": guild["name"], "icon": None, "splash": None,
            "discovery_splash": None, "owner_id": str(guild["owner_id"]), "afk_channel_id": None, "afk_timeout": 300,
            "verification_level": 0, "default_message_notifications": 1, "explicit_content_filter": 0,
            "roles": guild["roles"], "emojis": [], "stickers": [], "features": [], "mfa_level": 0,
            "application_id": None, "system_channel_id": None, "system_channel_flags": 0, "rules_channel_id": None,
            "vanity_url_code": None, "description": None, "banner": None, "premium_tier": 0,
            "premium_subscription_count": 0, "preferred_locale": "en-US", "public_updates_channel_id": None,
            "nsfw_level": 0, "premium_progress_bar_enabled": False, "safety_alerts_channel_id": None,
            "joined_at": _now(self.clock()), "large": False, "unavailable": False, "member_count": 3,
            "voice_states": [], "members": [self._bot_member(gid)], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [],
            "channels": [c for c in mine if c["type"] in (0, 15)],
            "threads": threads,
        }

    def permissions(self, channel_id: int, user_id: int | None = None, roles: list[int] = ()) -> int:
        """Discord's permission computation for a member (the bot by default) in a channel."""
        channel = self.channels[channel_id]
        if channel["type"] == 1:
            return ALL_PERMISSIONS & ~ADMINISTRATOR
        if channel["type"] == 11:
            channel = self.channels[int(channel["parent_id"])]
        gid = int(channel["guild_id"])
        guild = self.guilds[gid]
        if user_id is None or user_id == self.bot_id:
            user_id, roles = self.bot_id, [guild["bot_role_id"]]
        if user_id == guild["owner_id"]:
            return ALL_PERMISSIONS
        perms = 0
        for role in guild["roles"]:
            if int(role["id"]) == gid or int(role["id"]) in roles:
                perms |= int(role["permissions"])
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        overwrites = {int(o["id"]): o for o in channel["permission_overwrites"]}
        if gid in overwrites:
            perms = (perms & ~int(overwrites[gid]["deny"])) | int(overwrites[gid]["allow"])
        allow = deny = 0
        for rid in roles:
            if rid in overwrites:
                allow |= int(overwrites[rid]["allow"])
                deny |= int(overwrites[rid]["deny"])
        perms = (perms & ~deny) | allow
        if user_id in overwrites:
            perms = (perms & ~int(overwrites[user_id]["deny"])) | int(overwrites[user_id]["allow"])
        return perms

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._changed = asyncio.Condition()
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/", self._gateway)
        app.router.add_get("/resume", self._gateway)
        r = app.router
        r.add_get(API + "/gateway", self._get_gateway)
        r.add_get(API + "/gateway/bot", self._get_gateway_bot)
        r.add_get(API + "/users/@me", self._me)
        r.add_post(API + "/users/@me/channels", self._open_dm)
        r.add_get(API + "/oauth2/applications/@me", self._application)
        r.add_get(API + "/applications/{app}/commands", self._get_commands)
        r.add_get(API + "/applications/{app}/guilds/{guild}/commands", self._get_commands)
        r.add_put(API + "/applications/{app}/commands", self._sync_commands)
        r.add_put(API + "/applications/{app}/guilds/{guild}/commands", self._sync_commands)
        r.add_get(API + "/channels/{channel}", self._get_channel)
        r.add_get(API + "/channels/{channel}/messages", self._history)
        r.add_get(API + "/channels/{channel}/messages/{message}", self._get_message)
        r.add_post(API + "/channels/{channel}/messages", self._create_message)
        r.add_patch(API + "/channels/{channel}/messages/{message}", self._edit_message)
        r.add_post(API + "/channels/{channel}/typing", self._typing)
        r.add_post(API + "/channels/{channel}/messages/{message}/threads", self._create_thread)
        r.add_post(API + "/interactions/{interaction}/{token}/callback", self._callback)
        r.add_get(API + "/webhooks/{app}/{token}/messages/@original", self._get_original)
        r.add_patch(API + "/webhooks/{app}/{token}/messages/@original", self._edit_original)
        r.add_post(API + "/webhooks/{app}/{token}", self._followup)
        r.add_route("*", API + "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for session in list(self.sessions.values()):
            if session.ws is not None:
                await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def resume_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/resume"

    @property
    def ws(self) -> web.WebSocketResponse | None:
        """A live gateway connection, if there is one."""
        return next((s.ws for s in self.sessions.values() if s.ws is not None), None)

    @property
    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.ws is not None]

    # -- waiting -----------------------------------------------------------------------------
    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[Request], bool], *, since: int = 0, timeout: float = 20.0,
                       what: str = "a request") -> Request:
        """The first request after index `since` that matches."""
        async def find() -> Request:
            async with self._changed:
                while True:
                    for req in self.requests[since:]:
                        if predicate(req):
                            return req
                    await self._changed.wait()
        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            seen = "\n".join(f"  {r.method} {r.path} -> {r.status}" for r in self.requests[since:])
            raise AssertionError(f"the bot never sent {what}; it sent:\n{seen or '  nothing'}") from None

    async def wait_connected(self, count: int = 1, timeout: float = 30.0, shards: int = 1) -> None:
        """Until the bot has identified `count` times in all and `shards` sessions are live."""
        async def ready() -> None:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: len(self.identifies) >= count and len(self.live_sessions) >= shards)
        await asyncio.wait_for(ready(), timeout)

    def since(self, mark: int, method: str | None = None, path: str | None = None) -> list[Request]:
        return [r for r in self.requests[mark:] if (method is None or r.method == method)
                and (path is None or r.path == path)]

    # -- the gateway -------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        session: Session | None = None
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            op, data = payload.get("op"), payload.get("d")
            if op == 1:  # heartbeat
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif op == 2:  # identify
                self.identifies.append(data)
                self.identified_at.append(time.monotonic())
                session = await self._identify(ws, data)
                await self._notify()
            elif op == 6:  # resume
                self.resumes.append({**data, "path": request.path})
                session = await self._resume(ws, data)
                await self._notify()
        if session is not None and session.ws is ws:
            session.ws = None
            await self._notify()
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        shard_id, shard_count = data.get("shard") or (0, 1)
        if data.get("token") != self.TOKEN:
            await self._close(ws, 4004, "Authentication failed.")
        elif data.get("intents", 0) & MESSAGE_CONTENT and not self.message_content_allowed:
            await self._close(ws, 4014, "Disallowed intent(s).")
        elif not 0 <= shard_id < shard_count:
            await self._close(ws, 4010, "Invalid shard.")
        elif shard_count < self.recommended_shards and len(self.guilds) > 2500 * shard_count:
            await self._close(ws, 4011, "Sharding required.")
        else:
            for old in [s for s in self.sessions.values() if s.shard == (shard_id, shard_count) or
                        s.shard[1] != shard_count]:
                if old.ws is None:
                    del self.sessions[old.id]
            session = Session(f"session-{self.snowflake()}", (shard_id, shard_count), data.get("intents", 0), ws)
            self.sessions[session.id] = session
            await self._ready(session)
            return session
        return None

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        session = self.sessions.get(data.get("session_id"))
        if data.get("token") != self.TOKEN:
            await self._close(ws, 4004, "Authentication failed.")
            return None
        if session is None or session.ws is not None or data.get("seq") is None or data["seq"] > session.seq:
            await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return None
        session.ws = ws
        session.resumes += 1
        for payload in session.sent:
            if payload["s"] > data["seq"]:
                await ws.send_str(json.dumps(payload))
        await self._send(session, "RESUMED", {})
        return session

    async def request_reconnect(self, session: Session | None = None) -> Session:
        """Ask the bot to reconnect and resume (op 7), as Discord does before moving a session."""
        session = session or self.live_sessions[0]
        ws, session.ws = session.ws, None  # that connection is done: later events wait for the resume
        await ws.send_str(json.dumps({"op": 7, "d": None, "s": None, "t": None}))
        return session

    async def _close(self, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        self.gateway_closes.append(code)
        await ws.close(code=code, message=reason.encode())

    async def _ready(self, session: Session) -> None:
        flags = (1 << 19) if self.message_content_allowed else 0  # GATEWAY_MESSAGE_CONTENT_LIMITED
        mine = [gid for gid in self.guilds if self._shard_of(gid, session.shard[1]) == session.shard[0]]
        await self._send(session, "READY", {
            "v": 10, "user": {**self.bot_user, "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(gid), "unavailable": True} for gid in mine],
            "session_id": session.id, "resume_gateway_url": self.resume_url, "shard": list(session.shard),
            "application": {"id": str(self.app_id), "flags": flags}, "private_channels": [],
            "relationships": [], "presences": [], "guild_join_requests": [], "geo_ordered_rtc_regions": [],
        })
        for gid in mine:
            await self._send(session, "GUILD_CREATE", self.guild_payload(gid))

    @staticmethod
    def _shard_of(guild_id: int, shard_count: int) -> int:
        return (guild_id >> 22) % shard_count

    async def _send(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        payload = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.sent.append(payload)
        if session.ws is not None:
            try:
                await session.ws.send_str(json.dumps(payload))
            except ConnectionError:  # the bot is going away; a resume replays it
                session.ws = None

    async def dispatch(self, event: str, data: dict[str, Any], *, guild_id: int | None = None) -> None:
        """Send an event to the session of the shard that owns `guild_id` (DMs: shard 0).

        A session between a reconnect request and its resume gets it on resume.
        """
        if guild_id is None and data.get("guild_id"):
            guild_id = int(data["guild_id"])
        targets = [s for s in self.sessions.values()
                   if (self._shard_of(guild_id, s.shard[1]) if guild_id else 0) == s.shard[0]]
        if not targets:
            raise AssertionError("the bot is not connected to the gateway")
        for session in targets:
            await self._send(session, event, data)

    # -- what the tests do -------------------------------------------------------------------
    async def user_message(self, content: str, *, author: dict[str, Any], channel_id: int | None = None,
                           mentions: list[dict[str, Any]] = (), mention_everyone: bool = False,
                           roles: list[int] = ()) -> dict[str, Any]:
        """A user posts a message; the bot gets MESSAGE_CREATE as Discord would send it."""
        channel_id = channel_id or self.news_channel_id
        channel = self.channels[channel_id]
        if channel["type"] == 11 and channel["thread_metadata"]["archived"]:
            if channel["thread_metadata"]["locked"] and not self.permissions(
                    channel_id, int(author["id"]), roles) & MANAGE_THREADS:
                raise AssertionError("members cannot post in a locked thread")
            await self._unarchive(channel)
        mentions = [{**u, "member": self.member_payload(u, with_user=False)} for u in mentions]
        message = self._message(channel_id, author, content=content, mentions=mentions,
                                mention_everyone=mention_everyone)
        await self.dispatch("MESSAGE_CREATE", self._for_gateway(message, member=self.member_payload(
            author, roles, with_user=False)))
        return message

    async def delete_message(self, message: dict[str, Any]) -> None:
        """Someone deletes a message (MESSAGE_DELETE); replying to it then fails like on Discord."""
        cid, mid = int(message["channel_id"]), int(message["id"])
        del self.messages[cid][mid]
        self.deleted.add(mid)
        data = {"id": str(mid), "channel_id": str(cid)}
        if self.channels[cid].get("guild_id"):
            data["guild_id"] = self.channels[cid]["guild_id"]
        await self.dispatch("MESSAGE_DELETE", data)

    async def archive_thread(self, thread_id: int, *, locked: bool = False) -> None:
        """A thread goes quiet (auto-archive) or a moderator locks it; the bot gets THREAD_UPDATE."""
        thread = self.channels[thread_id]
        thread["thread_metadata"].update(archived=True, locked=locked,
                                         archive_timestamp=_now(self.clock()))
        await self.dispatch("THREAD_UPDATE", thread)

    async def _unarchive(self, thread: dict[str, Any]) -> None:
        thread["thread_metadata"].update(archived=False, archive_timestamp=_now(self.clock()))
        await self.dispatch("THREAD_UPDATE", thread)

    async def forum_post(self, title: str, content: str, *, author: dict[str, Any], forum_id: int) -> dict[str, Any]:
        """A member opens a post in a forum channel: THREAD_CREATE, then the starter message in it."""
        forum = self.channels[forum_id]
        tid = self.snowflake()
        now = _now(self.clock())
        thread = {
            "id": str(tid), "type": 11, "guild_id": forum["guild_id"], "parent_id": str(forum_id),
            "owner_id": author["id"], "name": title, "last_message_id": None, "rate_limit_per_user": 0,
            "message_count": 0, "member_count": 1, "total_message_sent": 0, "flags": 0, "applied_tags": [],
            "thread_metadata": {"archived": False, "auto_archive_duration": 4320, "archive_timestamp": now,
                                "locked": False, "create_timestamp": now},
        }
        self.channels[tid] = thread
        self.messages[tid] = {}
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        message = self._message(tid, author, content=content, message_id=tid)
        await self.dispatch("MESSAGE_CREATE", self._for_gateway(message, member=self.member_payload(
            author, with_user=False)))
        return message

    def open_dm(self, user: dict[str, Any]) -> int:
        """The direct-message channel between `user` and the bot."""
        for cid, channel in self.channels.items():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == user["id"]:
                return cid
        cid = self.snowflake()
        self.channels[cid] = {"id": str(cid), "type": 1, "recipients": [user], "last_message_id": None, "flags": 0}
        self.messages[cid] = {}
        return cid

    def visible_commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """What a member's command picker lists in a guild (or in a DM with the bot): global, then guild ones."""
        return self.global_commands + (self.guild_commands.get(guild_id, []) if guild_id else [])

    @property
    def commands(self) -> list[dict[str, Any]]:
        return self.visible_commands(self.guild_id)

    def permit(self, name: str, target: int, *, allow: bool = True, guild_id: int | None = None) -> None:
        """A server admin allows (or denies) /name to a member or role (the guild id: @everyone) under
        Server Settings -> Integrations; Discord then ignores the command's default_member_permissions
        for them."""
        self.command_overrides.setdefault((guild_id or self.guild_id, name), {})[target] = allow

    def _override(self, guild_id: int, name: str, user_id: int, roles: list[int]) -> bool | None:
        """Discord's order: the member's own override, else any of their roles' (allow wins), else @everyone's."""
        overrides = self.command_overrides.get((guild_id, name), {})
        if user_id in overrides:
            return overrides[user_id]
        mine = [overrides[r] for r in roles if r in overrides]
        if mine:
            return any(mine)
        return overrides.get(guild_id)

    def _command(self, name: str, kind: int, *, user: dict[str, Any], channel_id: int, roles: list[int],
                 permissions: int | None) -> dict[str, Any]:
        """The command as Discord would let this member use it here; CommandHidden if it would not."""
        channel = self.channels[channel_id]
        guild_id = int(channel["guild_id"]) if channel.get("guild_id") else None
        found = [c for c in self.visible_commands(guild_id) if c["name"] == name and c.get("type", 1) == kind]
        if not found:
            raise CommandHidden(f"no /{name} is registered where {user['username']} could use it; registered: "
                                f"{[c['name'] for c in self.visible_commands(guild_id)]}")
        command = found[-1]
        context = 0 if guild_id else 1
        if command.get("contexts") is not None and context not in command["contexts"]:
            raise CommandHidden(f"/{name} is not offered in {'servers' if guild_id else 'DMs'}")
        if not guild_id or user["id"] == str(self.guilds[guild_id]["owner_id"]):
            return command
        required = command.get("default_member_permissions")
        have = permissions if permissions is not None else self.permissions(channel_id, int(user["id"]), roles)
        if have & ADMINISTRATOR:
            return command
        override = self._override(guild_id, name, int(user["id"]), list(roles))
        if override is not None:
            if not override:
                raise CommandHidden(f"a server admin took /{name} away from {user['username']} under Integrations")
            return command
        if required == "0":
            raise CommandHidden(f"/{name} is disabled for everyone but admins")
        if required is not None and int(required) & ~have:
            raise CommandHidden(f"Discord hides /{name} from members without permissions {required}")
        return command

    async def slash(self, name: str, options: dict[str, Any] | None = None, *, user: dict[str, Any],
                    channel_id: int | None = None, roles: list[int] = (), permissions: int | None = None,
                    subcommand: str | None = None) -> dict[str, Any]:
        channel_id = channel_id or self.news_channel_id
        command = self._command(name, 1, user=user, channel_id=channel_id, roles=roles, permissions=permissions)
        opts = [{"name": k, "type": _option_type(command, k, subcommand, v), "value": v}
                for k, v in (options or {}).items()]
        for k, v in (options or {}).items():
            declared = _declared(command, k, subcommand)
            if isinstance(v, str) and not declared.get("min_length", 0) <= len(v) <= declared.get("max_length", 6000):
                raise OptionRefused(f"Discord's client does not send /{name} with a {k} of {len(v)} characters "
                                    f"({declared.get('min_length', 0)}-{declared.get('max_length', 6000)} allowed)")
        if subcommand:
            opts = [{"name": subcommand, "type": 1, "options": opts}]
        data = {"id": command["id"], "name": name, "type": 1, "options": opts}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self.interact(2, data, user=user, channel_id=channel_id, roles=roles, permissions=permissions)

    async def autocomplete(self, name: str, options: dict[str, Any], focused: str, *, user: dict[str, Any],
                           channel_id: int | None = None) -> dict[str, Any]:
        """The member is typing option `focused` of /name; the bot must suggest within 3 seconds."""
        channel_id = channel_id or self.news_channel_id
        command = self._command(name, 1, user=user, channel_id=channel_id, roles=[], permissions=None)
        opts = [{"name": k, "type": 3, "value": v, **({"focused": True} if k == focused else {})}
                for k, v in options.items()]
        data = {"id": command["id"], "name": name, "type": 1, "options": opts}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self.interact(4, data, user=user, channel_id=channel_id)

    async def context_menu(self, name: str, message: dict[str, Any], *, user: dict[str, Any],
                           roles: list[int] = ()) -> dict[str, Any]:
        """Right-click a message -> Apps -> `name`. The target message comes with its content."""
        channel_id = int(message["channel_id"])
        command = self._command(name, 3, user=user, channel_id=channel_id, roles=roles, permissions=None)
        target = self._stored(channel_id, int(message["id"]))
        data = {"id": command["id"], "name": name, "type": 3, "target_id": target["id"],
                "resolved": {"messages": {target["id"]: target}}}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self.interact(2, data, user=user, channel_id=channel_id, roles=roles)

    async def click(self, message: dict[str, Any], custom_id: str, *, user: dict[str, Any]) -> dict[str, Any]:
        """A user clicks a button on a message the bot sent."""
        channel_id = int(message["channel_id"])
        stored = self._stored(channel_id, int(message["id"]))
        data = {"custom_id": custom_id, "component_type": 2}
        return await self.interact(3, data, user=user, channel_id=channel_id, message=stored)

    async def interact(self, kind: int, data: dict[str, Any], *, user: dict[str, Any], channel_id: int,
                       roles: list[int] = (), permissions: int | None = None,
                       message: dict[str, Any] | None = None) -> dict[str, Any]:
        iid = self.snowflake()
        token = f"interaction-token-{iid}"
        channel = self.channels[channel_id]
        payload = {
            "id": str(iid), "application_id": str(self.app_id), "type": kind, "data": data,
            "channel_id": str(channel_id), "channel": channel, "token": token, "version": 1,
            "app_permissions": str(self.permissions(channel_id)), "locale": "en-US", "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if channel.get("guild_id"):
            gid = int(channel["guild_id"])
            member = self.member_payload(user, roles)
            member["permissions"] = str(permissions if permissions is not None
                                        else self.permissions(channel_id, int(user["id"]), roles))
            payload.update(guild_id=str(gid), guild={"id": str(gid), "locale": "en-US", "features": []},
                           member=member, guild_locale="en-US", context=0,
                           authorizing_integration_owners={"0": str(gid)})
        else:
            payload.update(user=user, context=1, authorizing_integration_owners={"0": str(user["id"])})
        if message is not None:
            payload["message"] = message
        self.interactions[token] = {"payload": payload, "original": None, "responded": None,
                                    "created": snowflake_time(iid), "deferred": False}
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=int(channel["guild_id"])
                            if channel.get("guild_id") else None)
        return payload

    def original(self, interaction: dict[str, Any]) -> dict[str, Any] | None:
        """The interaction's original response message, as it stands now."""
        return self.interactions[interaction["token"]]["original"]

    # -- what users see ------------------------------------------------------------------------
    def stored(self, channel_id: int | str, message_id: int | str) -> dict[str, Any]:
        return self.messages[int(channel_id)][int(message_id)]

    @staticmethod
    def seen_embeds(message: dict[str, Any]) -> list[dict[str, Any]]:
        """The embeds the Discord client shows: a later embed with an earlier one's `url` is merged into it.

        The client uses a shared url to build an image gallery: the first embed with a url is the
        card, later ones only lend it their image (up to 4) and their own text is not shown.
        """
        shown: list[dict[str, Any]] = []
        by_url: dict[str, dict[str, Any]] = {}
        for embed in message.get("embeds") or []:
            url = embed.get("url")
            if url and url in by_url:
                parent = by_url[url]
                if embed.get("image") and len(parent.setdefault("images", [])) < 4:
                    parent["images"].append(embed["image"])
                continue
            card = dict(embed)
            shown.append(card)
            if url:
                by_url[url] = card
        return shown

    # -- messages ----------------------------------------------------------------------------
    def _message(self, channel_id: int, author: dict[str, Any], *, content: str = "", embeds: list | None = None,
                 components: list | None = None, flags: int = 0, kind: int = 0, mentions: list | None = None,
                 mention_everyone: bool = False, reference: dict | None = None, store: bool = True,
                 message_id: int | None = None, **extra: Any) -> dict[str, Any]:
        if channel_id not in self.channels:
            raise _error(404, 10003, "Unknown Channel")
        message = {
            "id": str(message_id or self.snowflake()), "channel_id": str(channel_id), "author": author,
            "content": content, "timestamp": _now(self.clock()), "edited_timestamp": None, "tts": False,
            "mention_everyone": mention_everyone, "mentions": mentions or [], "mention_roles": [], "attachments": [],
            "embeds": [{"type": "rich", **e} for e in embeds or []], "reactions": [], "pinned": False,
            "type": kind, "flags": flags, "components": _numbered(components or []), **extra,
        }
        if reference is not None:
            ref_channel = int(reference.get("channel_id") or channel_id)
            message["type"] = 19
            message["message_reference"] = {"type": 0, "channel_id": str(ref_channel),
                                            "message_id": str(reference["message_id"])}
            if not self._is_dm(ref_channel):
                message["message_reference"]["guild_id"] = self.channels[ref_channel]["guild_id"]
            message["referenced_message"] = self._stored(ref_channel, int(reference["message_id"]))
        if store:
            self.messages[channel_id][int(message["id"])] = message
            self.channels[channel_id]["last_message_id"] = message["id"]
        return message

    def _stored(self, channel_id: int, message_id: int) -> dict[str, Any]:
        try:
            return self.messages[channel_id][message_id]
        except KeyError:
            raise _error(404, 10008, "Unknown Message") from None

    def _is_dm(self, channel_id: int | str) -> bool:
        return self.channels[int(channel_id)]["type"] == 1

    def _intents_for(self, channel_id: int | str) -> int:
        channel = self.channels[int(channel_id)]
        gid = int(channel["guild_id"]) if channel.get("guild_id") else None
        for s in self.sessions.values():
            if (self._shard_of(gid, s.shard[1]) if gid else 0) == s.shard[0]:
                return s.intents
        return 0

    def _visible(self, message: dict[str, Any]) -> dict[str, Any]:
        """What the bot may see of a message: content only with the intent, in DMs, or when it wrote or is mentioned."""
        if (self._intents_for(message["channel_id"]) & MESSAGE_CONTENT or self._is_dm(message["channel_id"])
                or message["author"]["id"] == str(self.bot_id)
                or any(u["id"] == str(self.bot_id) for u in message["mentions"])):
            return message
        return {**message, "content": "", "embeds": [], "attachments": [], "components": []}

    def _for_gateway(self, message: dict[str, Any], *, member: dict[str, Any]) -> dict[str, Any]:
        if self._is_dm(message["channel_id"]):  # no guild, no member
            return self._visible(message)
        return {**self._visible(message), "guild_id": self.channels[int(message["channel_id"])]["guild_id"],
                "member": member}

    def _require(self, channel_id: int, *bits: int) -> None:
        """403 like Discord's when the bot lacks a permission in the channel."""
        perms = self.permissions(channel_id)
        if not perms & VIEW_CHANNEL:
            raise _error(403, 50001, "Missing Access")
        for bit in bits:
            if not perms & bit:
                raise _error(403, 50013, "Missing Permissions")

    # -- REST --------------------------------------------------------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path in ("/", "/resume"):
            return await handler(request)
        body: Any = None
        if request.can_read_body:
            if request.content_type.startswith("multipart/"):
                form = await request.post()
                body = json.loads(form["payload_json"]) if "payload_json" in form else dict(form)
            else:
                raw = await request.read()
                body = json.loads(raw) if raw else None
        path = request.path[len(API):] if request.path.startswith(API) else request.path
        recorded = Request(request.method, path, dict(request.query), body, dict(request.headers))
        self.requests.append(recorded)
        request[BODY] = body
        try:
            bot_route = not path.startswith(("/interactions/", "/webhooks/"))
            limited = self._rate_limit(request)
            if bot_route and request.headers.get("Authorization") != f"Bot {self.TOKEN}":
                response = _json({"message": "401: Unauthorized", "code": 0}, status=401)
            elif limited is not None:
                response = limited
            elif refused := self._refused(request.method, path):
                response = refused
            else:
                try:
                    response = await handler(request)
                except web.HTTPException as err:  # raised by a lookup: answer in Discord's JSON shape
                    response = _json(json.loads(err.text), status=err.status)
                self._rate_headers(request, response)
            recorded.status = response.status
            if isinstance(response, web.Response) and response.body:
                recorded.response = json.loads(response.body)
            return response
        finally:
            await self._notify()

    def refuse(self, matches: Callable[[str, str], bool], status: int = 403, code: int = 50001,
               message: str = "Missing Access") -> None:
        """Refuse the next request for which `matches(method, path)` holds, once, with a Discord error."""
        self._refusals.append((matches, status, code, message))

    def _refused(self, method: str, path: str) -> web.Response | None:
        for n, (matches, status, code, message) in enumerate(self._refusals):
            if matches(method, path):
                del self._refusals[n]
                return _json({"message": message, "code": code}, status=status)
        return None

    def _bucket(self, request: web.Request, *, hidden: bool = False) -> tuple[str, tuple[int, float]] | None:
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else ""
        template = f"{request.method} {route[len(API):]}"
        limits = self.hidden_limits if hidden else self.rate_limits
        if template not in limits:
            return None
        major = request.match_info.get("channel") or request.match_info.get("token") or ""
        return f"{'hidden:' if hidden else ''}{template}:{major}", limits[template]

    def _rate_limit(self, request: web.Request) -> web.Response | None:
        return self._limit(request, hidden=True) or self._limit(request, hidden=False)

    def _limit(self, request: web.Request, *, hidden: bool) -> web.Response | None:
        bucket = self._bucket(request, hidden=hidden)
        if bucket is None:
            return None
        key, (limit, window) = bucket
        now = time.monotonic()
        hits = self._buckets.setdefault(key, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) < limit:
            hits.append(now)
            return None
        retry = round(hits[0] + window - now, 3)
        response = _json({"message": "You are being rate limited.", "retry_after": retry, "global": False},
                         status=429)
        response.headers.update(self._limit_headers(key, limit, 0, retry))
        response.headers.update({"Retry-After": str(math.ceil(retry)), "X-RateLimit-Scope": "user"})
        return response

    def _rate_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        bucket = self._bucket(request)
        if bucket is None:
            return
        key, (limit, window) = bucket
        hits = self._buckets[key]
        reset_after = round(hits[0] + window - time.monotonic(), 3) if hits else window
        response.headers.update(self._limit_headers(key, limit, max(limit - len(hits), 0), max(reset_after, 0.001)))

    def _limit_headers(self, key: str, limit: int, remaining: int, reset_after: float) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}", "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": hashlib.sha1(key.split(":")[0].encode()).hexdigest()[:16],
                "Via": "1.1 google"}

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url.rstrip("/")})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url.rstrip("/"), "shards": self.recommended_shards,
                      "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14400000,
                                              "max_concurrency": self.max_concurrency}})

    async def _me(self, request: web.Request) -> web.Response:
        return _json({**self.bot_user, "verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def _open_dm(self, request: web.Request) -> web.Response:
        uid = int(request[BODY]["recipient_id"])
        if uid not in self.users:
            raise _error(400, 50035, "Invalid Form Body")
        return _json(self.channels[self.open_dm(self.users[uid])])

    async def _application(self, request: web.Request) -> web.Response:
        flags = (1 << 19) if self.message_content_allowed else 0
        return _json({
            "id": str(self.app_id), "name": "newsdesk", "icon": None, "description": "", "rpc_origins": [],
            "bot_public": True, "bot_require_code_grant": False, "owner": self.owner,
            "verify_key": "0" * 64, "team": None, "flags": flags, "summary": "", "bot": self.bot_user,
            "redirect_uris": [], "interactions_endpoint_url": None, "tags": [],
            "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
            "integration_types_config": {"0": {}}, "approximate_guild_count": len(self.guilds),
        })

    async def _get_commands(self, request: web.Request) -> web.Response:
        guild = request.match_info.get("guild")
        return _json(self.guild_commands.get(int(guild), []) if guild else self.global_commands)

    async def _sync_commands(self, request: web.Request) -> web.Response:
        guild = int(request.match_info["guild"]) if "guild" in request.match_info else None
        body = request[BODY]
        if guild is not None and guild not in self.guilds:
            raise _error(403, 50001, "Missing Access")
        if errors := validate_commands(body):
            raise _error(400, 50035, "Invalid Form Body", errors)
        out = []
        for cmd in body:
            kind = cmd.get("type", 1)
            cid = self._command_ids.setdefault((guild, kind, cmd["name"]), str(self.snowflake()))
            out.append({"id": cid, "application_id": str(self.app_id), "version": str(self.snowflake()),
                        "type": kind, "default_member_permissions": None, "nsfw": False, "contexts": None,
                        "description": "", "integration_types": [0], **cmd, **({"guild_id": str(guild)} if guild else {})})
        if guild is None:
            self.global_commands = out
        else:
            self.guild_commands[guild] = out
        return _json(out)

    async def _get_channel(self, request: web.Request) -> web.Response:
        cid = int(request.match_info["channel"])
        if cid not in self.channels:
            raise _error(404, 10003, "Unknown Channel")
        if not self._is_dm(cid):
            self._require(cid)
        return _json(self.channels[cid])

    async def _history(self, request: web.Request) -> web.Response:
        cid = int(request.match_info["channel"])
        if cid not in self.channels:
            raise _error(404, 10003, "Unknown Channel")
        if not self._is_dm(cid):
            self._require(cid)
            if not self.permissions(cid) & READ_HISTORY:
                return _json([])  # Discord returns no messages without Read Message History
        limit = min(int(request.query.get("limit", 50)), 100)
        ordered = sorted(self.messages[cid].values(), key=lambda m: int(m["id"]))
        if "after" in request.query:  # the oldest ones after it, newest first
            ordered = [m for m in ordered if int(m["id"]) > int(request.query["after"])][:limit]
        else:
            if "before" in request.query:
                ordered = [m for m in ordered if int(m["id"]) < int(request.query["before"])]
            ordered = ordered[-limit:]
        return _json([self._visible(m) for m in reversed(ordered)])

    async def _get_message(self, request: web.Request) -> web.Response:
        cid = int(request.match_info["channel"])
        if cid in self.channels and not self._is_dm(cid):
            self._require(cid, READ_HISTORY)
        return _json(self._visible(self._stored(cid, int(request.match_info["message"]))))

    def _check_thread_open(self, channel: dict[str, Any]) -> None:
        """Only moderators (Manage Threads) may post in a locked thread, archived or not."""
        meta = channel.get("thread_metadata")
        if meta and meta["locked"] and not self.permissions(int(channel["id"])) & MANAGE_THREADS:
            if meta["archived"]:
                raise _error(400, 50083, "Thread is archived")
            raise _error(403, 50013, "Missing Permissions")

    async def _create_message(self, request: web.Request) -> web.Response:
        body = request[BODY]
        cid = int(request.match_info["channel"])
        if cid not in self.channels:
            raise _error(404, 10003, "Unknown Channel")
        channel = self.channels[cid]
        if channel["type"] == 15:
            raise _error(400, 50008, "Cannot send messages in a non-text channel")
        if not self._is_dm(cid):
            self._require(cid, SEND_IN_THREADS if channel["type"] == 11 else SEND_MESSAGES)
        self._check_thread_open(channel)
        if error := validate_message(body):
            return error
        reference = body.get("message_reference")
        if reference is not None:
            if not self._is_dm(cid):
                self._require(cid, READ_HISTORY)
            ref_channel = int(reference.get("channel_id") or cid)
            if int(reference["message_id"]) not in self.messages.get(ref_channel, {}):
                if reference.get("fail_if_not_exists", True):
                    raise _error(400, 50035, "Invalid Form Body", {"message_reference": {"_errors": [
                        {"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}]}})
                reference = None
        embeds = body.get("embeds")
        if not self._is_dm(cid) and not self.permissions(cid) & EMBED_LINKS:
            embeds = []  # Discord drops them without a word
        if channel.get("thread_metadata", {}).get("archived"):
            await self._unarchive(channel)
        message = self._message(cid, self.bot_user, content=body.get("content") or "", embeds=embeds,
                                components=body.get("components"), flags=body.get("flags", 0), reference=reference)
        await self.dispatch("MESSAGE_CREATE", self._bot_message_event(message))
        return _json(message)

    def _bot_message_event(self, message: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels[int(message["channel_id"])]
        if channel.get("guild_id"):
            return self._for_gateway(message, member=self._bot_member(int(channel["guild_id"]), with_user=False))
        return message

    async def _edit_message(self, request: web.Request) -> web.Response:
        cid, mid = int(request.match_info["channel"]), int(request.match_info["message"])
        message = self._stored(cid, mid)
        if message["author"]["id"] != str(self.bot_id):
            raise _error(403, 50005, "Cannot edit a message authored by another user")
        self._check_thread_open(self.channels[cid])
        return await self._apply_edit(message, request[BODY], embed_links=self._is_dm(cid) or bool(
            self.permissions(cid) & EMBED_LINKS))

    async def _apply_edit(self, message: dict[str, Any], body: dict[str, Any], *, embed_links: bool = True,
                          ) -> web.Response:
        merged = {"content": message["content"], "embeds": message["embeds"], "components": message["components"],
                  **{k: v for k, v in body.items() if k in ("content", "embeds", "components")}}
        if error := validate_message(merged):
            return error
        embeds = merged["embeds"] or [] if embed_links else []
        message.update(content=merged["content"] or "", embeds=[{"type": "rich", **e} for e in embeds],
                       components=_numbered(merged["components"] or []), flags=message["flags"] & ~LOADING,
                       edited_timestamp=_now(self.clock()))
        if not message["flags"] & EPHEMERAL:
            await self.dispatch("MESSAGE_UPDATE", self._bot_message_event(message))
        return _json(message)

    async def _typing(self, request: web.Request) -> web.Response:
        cid = int(request.match_info["channel"])
        if not self._is_dm(cid):
            self._require(cid, SEND_IN_THREADS if self.channels[cid]["type"] == 11 else SEND_MESSAGES)
        return web.Response(status=204)

    async def _create_thread(self, request: web.Request) -> web.Response:
        body = request[BODY]
        cid, mid = int(request.match_info["channel"]), int(request.match_info["message"])
        starter = self._stored(cid, mid)
        if self.channels[cid]["type"] != 0:
            raise _error(400, 50024, "Cannot execute action on this channel type")
        self._require(cid, CREATE_PUBLIC_THREADS)
        if not body.get("name") or len(body["name"]) > 100:
            raise _error(400, 50035, "Invalid Form Body", {"name": {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH"}]}})
        if str(mid) in {c["id"] for c in self.channels.values()}:
            raise _error(400, 160004, "A thread has already been created for this message")
        now = _now(self.clock())
        thread = {
            "id": str(mid), "type": 11, "guild_id": self.channels[cid]["guild_id"], "parent_id": str(cid),
            "owner_id": str(self.bot_id), "name": body["name"], "last_message_id": None,
            "rate_limit_per_user": body.get("rate_limit_per_user") or 0, "message_count": 0, "member_count": 1,
            "total_message_sent": 0, "flags": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": body.get("auto_archive_duration", 4320),
                                "archive_timestamp": now, "locked": False, "create_timestamp": now},
            "member": {"id": str(mid), "user_id": str(self.bot_id), "join_timestamp": now, "flags": 0},
        }
        self.channels[mid] = thread
        self.messages[mid] = {}
        starter["thread"] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, status=201)

    # -- interactions ------------------------------------------------------------------------
    def _interaction(self, token: str, *, webhook: bool = True) -> dict[str, Any]:
        record = self.interactions.get(token)
        if record is None:
            raise _error(404, 10015, "Unknown Webhook")
        if webhook and self.clock() - record["created"] > TOKEN_SECONDS:
            raise _error(401, 50027, "Invalid Webhook Token")
        return record

    def _interaction_message(self, record: dict[str, Any], body: dict[str, Any], *, flags: int) -> dict[str, Any]:
        p = record["payload"]
        ephemeral = bool(flags & EPHEMERAL)
        user = p["member"]["user"] if "member" in p else p["user"]
        metadata = {"id": p["id"], "type": p["type"], "user": user,
                    "authorizing_integration_owners": p["authorizing_integration_owners"]}
        if p["type"] == 2:
            metadata.update(name=p["data"]["name"], command_type=p["data"].get("type", 1))
        return self._message(
            int(p["channel_id"]), self.bot_user, content=body.get("content") or "", embeds=body.get("embeds"),
            components=body.get("components"), flags=flags, kind=(23 if p["data"].get("type") == 3 else 20)
            if p["type"] == 2 else 0, store=not ephemeral,
            webhook_id=str(self.app_id), application_id=str(self.app_id), interaction_metadata=metadata,
        )

    async def _callback(self, request: web.Request) -> web.Response:
        record = self._interaction(request.match_info["token"], webhook=False)
        if self.clock() - record["created"] > FIRST_RESPONSE_SECONDS:
            raise _error(404, 10062, "Unknown interaction")
        if record["responded"] is not None:
            raise _error(400, 40060, "Interaction has already been acknowledged.")
        body = request[BODY]
        kind, data = body["type"], body.get("data") or {}
        p = record["payload"]
        interaction = {"id": p["id"], "type": p["type"]}
        resource: dict[str, Any] = {"type": kind}
        if p["type"] == 4:  # autocomplete
            if kind != 8:
                raise _error(400, 50035, "Invalid interaction response type")
            if errors := validate_choices(data.get("choices")):
                raise _error(400, 50035, "Invalid Form Body", {"data": {"choices": errors}})
        elif kind in (4, 5):
            if kind == 4 and (error := validate_message(data)):
                return error
            flags = data.get("flags", 0) | (LOADING if kind == 5 else 0)
            message = self._interaction_message(record, data, flags=flags)
            record["original"] = message
            record["deferred"] = kind == 5
            interaction.update(response_message_id=message["id"], response_message_loading=kind == 5,
                               response_message_ephemeral=bool(flags & EPHEMERAL))
            resource["message"] = message
            if not flags & EPHEMERAL:
                await self.dispatch("MESSAGE_CREATE", self._bot_message_event(message))
        elif kind == 6 and p["type"] == 3:
            pass
        elif kind == 7 and p["type"] == 3:
            await self._apply_edit(self._stored(int(p["channel_id"]), int(p["message"]["id"])), data)
        else:
            raise _error(400, 50035, "Invalid interaction response type")
        record["responded"] = kind
        return _json({"interaction": interaction, "resource": resource})

    async def _get_original(self, request: web.Request) -> web.Response:
        record = self._interaction(request.match_info["token"])
        if record["original"] is None:
            raise _error(404, 10008, "Unknown Message")
        return _json(record["original"])

    async def _edit_original(self, request: web.Request) -> web.Response:
        record = self._interaction(request.match_info["token"])
        if record["original"] is None:
            raise _error(404, 10008, "Unknown Message")
        return await self._apply_edit(record["original"], request[BODY])

    async def _followup(self, request: web.Request) -> web.Response:
        record = self._interaction(request.match_info["token"])
        body = request[BODY]
        if record["responded"] is None:
            raise _error(404, 10015, "Unknown Webhook")
        original = record["original"]
        if record["deferred"] and original is not None and original["flags"] & LOADING:
            # The first followup after "thinking" replaces the loading message; its flags are the defer's.
            return await self._apply_edit(original, body)
        if error := validate_message(body):
            return error
        message = self._interaction_message(record, body, flags=body.get("flags", 0))
        if not message["flags"] & EPHEMERAL:
            await self.dispatch("MESSAGE_CREATE", self._bot_message_event(message))
        return _json(message)

    async def _unknown(self, request: web.Request) -> web.Response:
        return _json({"message": f"404: Not Found (the test server has no {request.method} {request.path})",
                      "code": 0}, status=404)


def _declared(command: dict[str, Any], name: str, subcommand: str | None) -> dict[str, Any]:
    options = command.get("options") or []
    if subcommand:
        options = next((o.get("options") or [] for o in options if o["name"] == subcommand), [])
    declared = next((o for o in options if o["name"] == name), None)
    if declared is None:
        raise AssertionError(f"/{command['name']} has no option {name!r}")
    return declared


def _option_type(command: dict[str, Any], name: str, subcommand: str | None, value: Any) -> int:
    return _declared(command, name, subcommand)["type"]


def _json(data: Any, status: int = 200) -> web.Response:
    # Exactly "application/json": discord.py only parses the body as JSON with that content type.
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _numbered(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Components as Discord returns them: each with a numeric id."""
    counter = iter(range(1, 1000))

    def number(c: dict[str, Any]) -> dict[str, Any]:
        c = {**c, "id": c.get("id") or next(counter)}
        if "components" in c:
            c["components"] = [number(x) for x in c["components"]]
        return c
    return [number(c) for c in components]


_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")


def validate_commands(commands: list[dict[str, Any]]) -> dict[str, Any]:
    """Discord's checks on a bulk overwrite of application commands."""
    errors: dict[str, Any] = {}
    if len([c for c in commands if c.get("type", 1) == 1]) > 100:
        errors["_errors"] = "Must be 100 or fewer in length."
    seen: set[tuple[int, str]] = set()
    for i, c in enumerate(commands):
        kind, name = c.get("type", 1), c.get("name") or ""
        if (kind, name) in seen:
            errors[f"{i}.name"] = "Application command names must be unique"
        seen.add((kind, name))
        if kind == 1:
            if not _COMMAND_NAME.match(name) or name != name.lower():
                errors[f"{i}.name"] = "Command name is invalid"
            if not 1 <= len(c.get("description") or "") <= 100:
                errors[f"{i}.description"] = "Must be between 1 and 100 in length."
            options = c.get("options") or []
            if len(options) > 25:
                errors[f"{i}.options"] = "Must be 25 or fewer in length."
            for j, o in enumerate(options):
                if o.get("autocomplete") and o.get("choices"):
                    errors[f"{i}.options.{j}"] = "Autocomplete and choices are mutually exclusive"
        elif not 1 <= len(name) <= 32 or c.get("description"):
            errors[f"{i}.name"] = "Context menu commands have a 1-32 character name and no description"
    return errors


def validate_choices(choices: Any) -> dict[str, Any]:
    if not isinstance(choices, list):
        return {"_errors": "This field is required"}
    errors: dict[str, Any] = {}
    if len(choices) > 25:
        errors["_errors"] = "Must be 25 or fewer in length."
    for i, c in enumerate(choices):
        if not 1 <= len(str(c.get("name", ""))) <= 100:
            errors[f"{i}.name"] = "Must be between 1 and 100 in length."
        if isinstance(c.get("value"), str) and len(c["value"]) > 100:
            errors[f"{i}.value"] = "Must be 100 or fewer in length."
    return errors


def validate_message(body: dict[str, Any]) -> web.Response | None:
    """Discord's limits on a message; a 400 response like Discord's when one is broken."""
    errors: dict[str, Any] = {}
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if len(content) > 2000:
        errors["content"] = "Must be 2000 or fewer in length."
    if len(embeds) > 10:
        errors["embeds"] = "Must be 10 or fewer in length."
    total = 0
    for i, e in enumerate(embeds):
        fields = e.get("fields") or []
        checks = {"title": (e.get("title") or "", 256), "description": (e.get("description") or "", 4096),
                  "footer.text": ((e.get("footer") or {}).get("text") or "", 2048),
                  "author.name": ((e.get("author") or {}).get("name") or "", 256)}
        for j, f in enumerate(fields):
            checks[f"fields.{j}.name"] = (f.get("name") or "", 256)
            checks[f"fields.{j}.value"] = (f.get("value") or "", 1024)
            if not f.get("name") or not f.get("value"):
                errors[f"embeds.{i}.fields.{j}"] = "This field is required"
        for name, (text, limit) in checks.items():
            if len(text) > limit:
                errors[f"embeds.{i}.{name}"] = f"Must be {limit} or fewer in length."
            total += len(text)
        if len(fields) > 25:
            errors[f"embeds.{i}.fields"] = "Must be 25 or fewer in length."
        if e.get("url") and not re.match(r"^https?://[^\s/?#]+\.[^\s/?#]+([/?#]\S*)?$", str(e["url"])):
            errors[f"embeds.{i}.url"] = "Not a well formed URL."
    if total > 6000:
        errors["embeds"] = "Embed size exceeds maximum size of 6000"
    if errors:
        return _json({"message": "Invalid Form Body", "code": 50035, "errors": errors}, status=400)
    if not content.strip() and not embeds and not body.get("components"):
        return _json({"message": "Cannot send an empty message", "code": 50006}, status=400)
    return None


# -- Discord's markdown, as far as links, mentions and formatting go ---------------------------
_ESCAPED = re.compile(r"\\([^0-9A-Za-z\s])")
_SPANS = [
    ("masked_link", re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?(https?://[^\s<>()]*(?:\([^\s()]*\)[^\s<>()]*)*)>?\s*\)")),
    ("link", re.compile(r"https?://[^\s<]+[^\s<.,:;\"')\]]")),
    ("mention", re.compile(r"<(?:@[!&]?\d+|#\d+|/[\w -]+:\d+|a?:\w+:\d+|t:-?\d+(?::[tTdDfFR])?|id:\w+)>")),
    ("mention", re.compile(r"@(?:everyone|here)\b")),
    ("code", re.compile(r"`+[^`]+?`+")),
    ("bold", re.compile(r"\*\*(?=\S)[^\n]+?\*\*")),
    ("underline", re.compile(r"__(?=\S)[^\n]+?__")),
    ("italic", re.compile(r"\*(?=[^\s*])[^\n*]*?[^\s*\\]\*|\*[^\s*]\*")),
    ("italic", re.compile(r"\b_(?=\S)[^\n]*?\S_\b|\b_\S_\b")),
    ("strike", re.compile(r"~~(?=\S)[^\n]+?~~")),
    ("spoiler", re.compile(r"\|\|[^\n]+?\|\|")),
    ("heading", re.compile(r"^#{1,3} \S", re.M)),
    ("subtext", re.compile(r"^-# \S", re.M)),
    ("quote", re.compile(r"^>>?>? ", re.M)),
    ("list", re.compile(r"^\s*(?:[-*+]|\d+\.) \S", re.M)),
]


def markdown_spans(text: str) -> list[tuple[str, str]]:
    """(kind, text) of every link, mention and formatting span Discord's markdown would render in `text`.

    Read left to right like Discord's parser: a backslash before punctuation makes it literal,
    and an autolink `<https://...>` is taken whole, backslashes and all. Text inside a link is
    not looked at again; formatting may nest. For masked links the text is "label -> target".
    """
    placeholders: list[str] = []
    found: list[tuple[str, str]] = []
    out: list[str] = []
    i = 0
    while i < len(text):
        auto = _AUTOLINK.match(text, i)
        if text[i] == "\\" and i + 1 < len(text) and _ESCAPED.match(text, i):
            placeholders.append(text[i + 1])
            out.append(f"\ue000{len(placeholders) - 1}\ue001")
            i += 2
        elif auto:
            found.append(("autolink", auto.group(0)[1:-1]))
            out.append("\ue002" * len(auto.group(0)))
            i = auto.end()
        else:
            out.append(text[i])
            i += 1
    plain = "".join(out)
    for kind, pattern in _SPANS:
        def take(m: re.Match[str]) -> str:
            if kind == "masked_link":
                found.append((kind, f"{_unhide(m.group(1), placeholders)} -> {_unhide(m.group(2), placeholders)}"))
            else:
                found.append((kind, _unhide(m.group(0), placeholders)))
            if kind in ("masked_link", "link", "code"):
                return "\ue002" * len(m.group(0))
            if kind in _DELIMITED:  # hide the delimiters, keep looking inside
                d = _DELIMITED[kind]
                return "\ue003" * d + m.group(0)[d:-d] + "\ue003" * d
            return m.group(0)
        plain = pattern.sub(take, plain)
    return found


_AUTOLINK = re.compile(r"<https?://[^\s>]+>")
_DELIMITED = {"bold": 2, "underline": 2, "strike": 2, "spoiler": 2, "italic": 1}


def _unhide(text: str, placeholders: list[str]) -> str:
    return re.sub("\ue000(\\d+)\ue001", lambda m: placeholders[int(m.group(1))], text)


@contextlib.contextmanager
def pointed_at(server: FakeDiscord) -> Iterator[None]:
    """discord.py talks to `server` instead of Discord while inside."""
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = server.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@contextlib.contextmanager
def server_in_thread(**options: Any) -> Iterator[FakeDiscord]:
    """A server on its own event loop, for tests of code that runs its own loop (`bot.run`)."""
    server = FakeDiscord(**options)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    try:
        with pointed_at(server):
            yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
