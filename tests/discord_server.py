"""A small Discord on 127.0.0.1: the gateway websocket and the REST routes a bot uses.

It speaks the real protocol (API v10 payload shapes, checked against discord.py 2.7's parsers
and Discord's API reference) so the real bot can be pointed at it (`pointed_at`), and it
records every request so tests can assert on exactly what the bot sent. It also behaves like
Discord where a bot can get things wrong:

- REST calls need `Authorization: Bot <token>` (401 otherwise); IDENTIFY with a wrong token is
  closed with 4004, and asking for the Message Content intent when the application does not
  have it (``message_content_allowed=False``) is closed with 4014;
- without that intent, other users' messages arrive with empty content unless they mention the
  bot, over the gateway and over REST;
- messages over Discord's limits (2000 characters, 10 embeds, 6000 embed characters, 256-char
  titles, 4096-char descriptions, 25 fields ...) are refused with 400 / 50035, empty ones with
  50006;
- creating a message dispatches MESSAGE_CREATE back to the bot (so it sees its own messages),
  creating a thread dispatches THREAD_CREATE, and GUILD_CREATE lists the active threads.

Tests drive it with `user_message`, `slash` and `click`, and wait with `wait_for`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
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

MEMBER_PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, embed_links=True, read_message_history=True,
    create_public_threads=True, send_messages_in_threads=True, use_application_commands=True, add_reactions=True,
).value
EMBED_LINKS = discord.Permissions(embed_links=True).value
CREATE_PUBLIC_THREADS = discord.Permissions(create_public_threads=True).value
BODY = web.RequestKey("json", object)  # the parsed request body


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name.title(),
            "avatar": None, "bot": bot, "public_flags": 0, "flags": 0, "banner": None, "accent_color": None,
            "avatar_decoration_data": None, "collectibles": None, "primary_guild": None}


class FakeDiscord:
    TOKEN = "MTA.fake-token.for-the-local-test-server"

    def __init__(self, *, message_content_allowed: bool = True):
        self.message_content_allowed = message_content_allowed
        self._next = 0
        self.app_id = self.bot_id = self.snowflake()
        self.guild_id = self.snowflake()
        self.owner_id = self.snowflake()
        self.admin_role_id = self.snowflake()
        self.news_channel_id = self.snowflake()  # where questions are allowed
        self.other_channel_id = self.snowflake()
        self.plain_channel_id = self.snowflake()  # @everyone may neither embed links nor open threads here
        self.bot_user = user_payload(self.bot_id, "newsdesk", bot=True)
        self.users: dict[int, dict[str, Any]] = {}
        self.roles = [
            {"id": str(self.guild_id), "name": "@everyone", "permissions": str(MEMBER_PERMISSIONS), "position": 0,
             "color": 0, "colors": {"primary_color": 0}, "hoist": False, "managed": False, "mentionable": False,
             "flags": 0},
            {"id": str(self.admin_role_id), "name": "newsroom editors", "permissions": str(MEMBER_PERMISSIONS),
             "position": 1, "color": 0, "colors": {"primary_color": 0}, "hoist": False, "managed": False,
             "mentionable": True, "flags": 0},
        ]
        self.channels: dict[int, dict[str, Any]] = {}
        for i, (cid, name) in enumerate([(self.news_channel_id, "news"), (self.other_channel_id, "random"),
                                          (self.plain_channel_id, "no-embeds")]):
            deny = [{"id": str(self.guild_id), "type": 0, "allow": "0",
                     "deny": str(EMBED_LINKS | CREATE_PUBLIC_THREADS)}]
            self.channels[cid] = {
                "id": str(cid), "type": 0, "guild_id": str(self.guild_id), "name": name, "position": i,
                "permission_overwrites": deny if cid == self.plain_channel_id else [], "parent_id": None,
                "topic": None, "nsfw": False, "last_message_id": None, "rate_limit_per_user": 0, "flags": 0,
            }
        self.messages: dict[int, dict[int, dict[str, Any]]] = {cid: {} for cid in self.channels}
        self.commands: list[dict[str, Any]] = []
        self.interactions: dict[str, dict[str, Any]] = {}  # token -> interaction record
        self.requests: list[Request] = []
        self.identifies: list[dict[str, Any]] = []
        self.gateway_closes: list[int] = []
        self.ws: web.WebSocketResponse | None = None
        self.intents = 0
        self._seq = 0
        self._changed: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- ids and payloads --------------------------------------------------------------------
    def snowflake(self) -> int:
        self._next += 1
        return ((int(time.time() * 1000) - DISCORD_EPOCH) << 22) | (self._next & 0x3FFFFF)

    def user(self, name: str, *, bot: bool = False) -> dict[str, Any]:
        """A new member of the guild (a human unless `bot`)."""
        uid = self.snowflake()
        self.users[uid] = user_payload(uid, name, bot=bot)
        return self.users[uid]

    def member_payload(self, user: dict[str, Any], roles: list[int] = (), *, with_user: bool = True) -> dict[str, Any]:
        member = {"roles": [str(r) for r in roles], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0,
                  "pending": False, "nick": None, "avatar": None, "banner": None, "premium_since": None,
                  "communication_disabled_until": None}
        return {"user": user, **member} if with_user else member

    def guild_payload(self) -> dict[str, Any]:
        threads = [c for c in self.channels.values() if c["type"] == 11 and not c["thread_metadata"]["archived"]]
        return {
            "id": str(self.guild_id), "name": "Port Halden newsroom", "icon": None, "splash": None,
            "discovery_splash": None, "owner_id": str(self.owner_id), "afk_channel_id": None, "afk_timeout": 300,
            "verification_level": 0, "default_message_notifications": 1, "explicit_content_filter": 0,
            "roles": self.roles, "emojis": [], "stickers": [], "features": [], "mfa_level": 0,
            "application_id": None, "system_channel_id": None, "system_channel_flags": 0, "rules_channel_id": None,
            "vanity_url_code": None, "description": None, "banner": None, "premium_tier": 0,
            "premium_subscription_count": 0, "preferred_locale": "en-US", "public_updates_channel_id": None,
            "nsfw_level": 0, "premium_progress_bar_enabled": False, "safety_alerts_channel_id": None,
            "joined_at": _now(), "large": False, "unavailable": False, "member_count": 3, "voice_states": [],
            "members": [self.member_payload(self.bot_user)], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [],
            "channels": [c for c in self.channels.values() if c["type"] == 0],
            "threads": threads,
        }

    def _channel_permissions(self, channel_id: int) -> int:
        channel = self.channels[channel_id]
        if channel["type"] == 11:
            channel = self.channels[int(channel["parent_id"])]
        perms = MEMBER_PERMISSIONS
        for o in channel["permission_overwrites"]:
            perms = (perms & ~int(o["deny"])) | int(o["allow"])
        return perms

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._changed = asyncio.Condition()
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/", self._gateway)
        r = app.router
        r.add_get(API + "/users/@me", self._me)
        r.add_get(API + "/oauth2/applications/@me", self._application)
        r.add_put(API + "/applications/{app}/commands", self._sync_commands)
        r.add_put(API + "/applications/{app}/guilds/{guild}/commands", self._sync_commands)
        r.add_get(API + "/channels/{channel}", self._get_channel)
        r.add_get(API + "/channels/{channel}/messages", self._history)
        r.add_get(API + "/channels/{channel}/messages/{message}", self._get_message)
        r.add_post(API + "/channels/{channel}/messages", self._create_message)
        r.add_post(API + "/channels/{channel}/typing", self._typing)
        r.add_post(API + "/channels/{channel}/messages/{message}/threads", self._create_thread)
        r.add_post(API + "/interactions/{interaction}/{token}/callback", self._callback)
        r.add_patch(API + "/webhooks/{app}/{token}/messages/@original", self._edit_original)
        r.add_post(API + "/webhooks/{app}/{token}", self._followup)
        r.add_route("*", API + "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

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
            seen = "\n".join(f"  {r.method} {r.path}" for r in self.requests[since:])
            raise AssertionError(f"the bot never sent {what}; it sent:\n{seen or '  nothing'}") from None

    async def wait_connected(self, count: int = 1, timeout: float = 30.0) -> None:
        """Until the bot has identified `count` times in all and was sent READY."""
        async def ready() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.identifies) >= count and self.ws is not None)
        await asyncio.wait_for(ready(), timeout)

    def since(self, mark: int, method: str | None = None, path: str | None = None) -> list[Request]:
        return [r for r in self.requests[mark:] if (method is None or r.method == method)
                and (path is None or r.path == path)]

    # -- the gateway -------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            op, data = payload.get("op"), payload.get("d")
            if op == 1:  # heartbeat
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif op == 2:  # identify
                self.identifies.append(data)
                if data.get("token") != self.TOKEN:
                    await self._close(ws, 4004, "Authentication failed.")
                elif data.get("intents", 0) & MESSAGE_CONTENT and not self.message_content_allowed:
                    await self._close(ws, 4014, "Disallowed intent(s).")
                else:
                    self.intents = data.get("intents", 0)
                    self.ws = ws
                    await self._ready(ws)
                await self._notify()
            elif op == 6:  # resume: sessions are not kept, so start over
                await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
        if self.ws is ws:
            self.ws = None
        return ws

    async def _close(self, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        self.gateway_closes.append(code)
        await ws.close(code=code, message=reason.encode())

    async def _ready(self, ws: web.WebSocketResponse) -> None:
        flags = (1 << 19) if self.message_content_allowed else 0  # GATEWAY_MESSAGE_CONTENT_LIMITED
        await self.dispatch("READY", {
            "v": 10, "user": {**self.bot_user, "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": f"session-{self.snowflake()}", "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.app_id), "flags": flags}, "private_channels": [],
            "relationships": [], "presences": [], "guild_join_requests": [], "geo_ordered_rtc_regions": [],
        }, ws=ws)
        await self.dispatch("GUILD_CREATE", self.guild_payload(), ws=ws)

    async def dispatch(self, event: str, data: dict[str, Any], *, ws: web.WebSocketResponse | None = None) -> None:
        ws = ws or self.ws
        if ws is None:
            raise AssertionError("the bot is not connected to the gateway")
        self._seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    # -- what the tests do -------------------------------------------------------------------
    async def user_message(self, content: str, *, author: dict[str, Any], channel_id: int | None = None,
                           mentions: list[dict[str, Any]] = (), mention_everyone: bool = False,
                           roles: list[int] = ()) -> dict[str, Any]:
        """A user posts a message; the bot gets MESSAGE_CREATE as Discord would send it."""
        channel_id = channel_id or self.news_channel_id
        mentions = [{**u, "member": self.member_payload(u, with_user=False)} for u in mentions]
        message = self._message(channel_id, author, content=content, mentions=mentions,
                                mention_everyone=mention_everyone)
        await self.dispatch("MESSAGE_CREATE", self._for_gateway(message, member=self.member_payload(
            author, roles, with_user=False)))
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

    async def slash(self, name: str, options: dict[str, str] | None = None, *, user: dict[str, Any],
                    channel_id: int | None = None, roles: list[int] = (), permissions: int = MEMBER_PERMISSIONS,
                    ) -> dict[str, Any]:
        command = next((c for c in self.commands if c["name"] == name), None)
        if command is None:
            raise AssertionError(f"the bot did not register /{name}; it registered {[c['name'] for c in self.commands]}")
        data = {"id": command["id"], "name": name, "type": 1,
                "options": [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()]}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self.interact(2, data, user=user, channel_id=channel_id or self.news_channel_id,
                                    roles=roles, permissions=permissions)

    async def click(self, message: dict[str, Any], custom_id: str, *, user: dict[str, Any]) -> dict[str, Any]:
        """A user clicks a button on a message the bot sent."""
        channel_id = int(message["channel_id"])
        stored = self._stored(channel_id, int(message["id"]))
        data = {"custom_id": custom_id, "component_type": 2}
        return await self.interact(3, data, user=user, channel_id=channel_id, message=stored)

    async def interact(self, kind: int, data: dict[str, Any], *, user: dict[str, Any], channel_id: int,
                        roles: list[int] = (), permissions: int = MEMBER_PERMISSIONS,
                        message: dict[str, Any] | None = None) -> dict[str, Any]:
        iid = self.snowflake()
        token = f"interaction-token-{iid}"
        member = self.member_payload(user, roles)
        member["permissions"] = str(permissions)
        payload = {
            "id": str(iid), "application_id": str(self.app_id), "type": kind, "data": data,
            "guild_id": str(self.guild_id), "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id), "channel": self.channels[channel_id], "member": member,
            "token": token, "version": 1, "app_permissions": str(self._channel_permissions(channel_id)),
            "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)}, "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = message
        self.interactions[token] = {"payload": payload, "original": None, "responded": False}
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    # -- messages ----------------------------------------------------------------------------
    def _message(self, channel_id: int, author: dict[str, Any], *, content: str = "", embeds: list | None = None,
                 components: list | None = None, flags: int = 0, kind: int = 0, mentions: list | None = None,
                 mention_everyone: bool = False, reference: dict | None = None, store: bool = True,
                 **extra: Any) -> dict[str, Any]:
        if channel_id not in self.channels:
            raise web.HTTPNotFound(text=json.dumps({"message": "Unknown Channel", "code": 10003}),
                                   content_type="application/json")
        message = {
            "id": str(self.snowflake()), "channel_id": str(channel_id), "author": author, "content": content,
            "timestamp": _now(), "edited_timestamp": None, "tts": False, "mention_everyone": mention_everyone,
            "mentions": mentions or [], "mention_roles": [], "attachments": [],
            "embeds": [{"type": "rich", **e} for e in embeds or []], "reactions": [], "pinned": False,
            "type": kind, "flags": flags, "components": _numbered(components or []), **extra,
        }
        if reference is not None:
            ref_channel = int(reference.get("channel_id") or channel_id)
            message["type"] = 19
            message["message_reference"] = {"type": 0, "channel_id": str(ref_channel),
                                            "message_id": str(reference["message_id"])}
            if not self._is_dm(ref_channel):
                message["message_reference"]["guild_id"] = str(self.guild_id)
            message["referenced_message"] = self._stored(ref_channel, int(reference["message_id"]))
        if store:
            self.messages[channel_id][int(message["id"])] = message
            self.channels[channel_id]["last_message_id"] = message["id"]
        return message

    def _stored(self, channel_id: int, message_id: int) -> dict[str, Any]:
        try:
            return self.messages[channel_id][message_id]
        except KeyError:
            raise web.HTTPNotFound(text=json.dumps({"message": "Unknown Message", "code": 10008}),
                                   content_type="application/json") from None

    def _is_dm(self, channel_id: int | str) -> bool:
        return self.channels[int(channel_id)]["type"] == 1

    def _visible(self, message: dict[str, Any]) -> dict[str, Any]:
        """What the bot may see of a message: content only with the intent, in DMs, or when it wrote or is mentioned."""
        if (self.intents & MESSAGE_CONTENT or self._is_dm(message["channel_id"])
                or message["author"]["id"] == str(self.bot_id)
                or any(u["id"] == str(self.bot_id) for u in message["mentions"])):
            return message
        return {**message, "content": "", "embeds": [], "attachments": [], "components": []}

    def _for_gateway(self, message: dict[str, Any], *, member: dict[str, Any]) -> dict[str, Any]:
        if self._is_dm(message["channel_id"]):  # no guild, no member
            return self._visible(message)
        return {**self._visible(message), "guild_id": str(self.guild_id), "member": member}

    # -- REST --------------------------------------------------------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path == "/":
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
        self.requests.append(Request(request.method, path, dict(request.query), body, dict(request.headers)))
        request[BODY] = body
        recorded = self.requests[-1]
        try:
            bot_route = not path.startswith(("/interactions/", "/webhooks/"))
            if bot_route and request.headers.get("Authorization") != f"Bot {self.TOKEN}":
                response = _json({"message": "401: Unauthorized", "code": 0}, status=401)
            else:
                try:
                    response = await handler(request)
                except web.HTTPException as err:  # raised by a lookup: answer in Discord's JSON shape
                    response = _json(json.loads(err.text), status=err.status)
            recorded.status = response.status
            if isinstance(response, web.Response) and response.body:
                recorded.response = json.loads(response.body)
            return response
        finally:
            await self._notify()

    async def _me(self, request: web.Request) -> web.Response:
        return _json({**self.bot_user, "verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def _application(self, request: web.Request) -> web.Response:
        flags = (1 << 19) if self.message_content_allowed else 0
        return _json({
            "id": str(self.app_id), "name": "newsdesk", "icon": None, "description": "", "rpc_origins": [],
            "bot_public": True, "bot_require_code_grant": False, "owner": user_payload(self.owner_id, "owner"),
            "verify_key": "0" * 64, "team": None, "flags": flags, "summary": "", "bot": self.bot_user,
            "redirect_uris": [], "interactions_endpoint_url": None, "tags": [],
            "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
            "integration_types_config": {"0": {}}, "approximate_guild_count": 1,
        })

    async def _sync_commands(self, request: web.Request) -> web.Response:
        guild = request.match_info.get("guild")
        out = []
        for cmd in request[BODY]:
            out.append({"id": str(self.snowflake()), "application_id": str(self.app_id), "version": str(self.snowflake()),
                        "type": cmd.get("type", 1), "default_member_permissions": None, "nsfw": False,
                        **cmd, **({"guild_id": guild} if guild else {})})
        self.commands = out
        return _json(out)

    async def _get_channel(self, request: web.Request) -> web.Response:
        cid = int(request.match_info["channel"])
        if cid not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        return _json(self.channels[cid])

    async def _history(self, request: web.Request) -> web.Response:
        cid = int(request.match_info["channel"])
        if cid not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
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
        message = self._stored(int(request.match_info["channel"]), int(request.match_info["message"]))
        return _json(self._visible(message))

    async def _create_message(self, request: web.Request) -> web.Response:
        body = request[BODY]
        cid = int(request.match_info["channel"])
        if error := validate_message(body):
            return error
        message = self._message(cid, self.bot_user, content=body.get("content") or "", embeds=body.get("embeds"),
                                components=body.get("components"), flags=body.get("flags", 0),
                                reference=body.get("message_reference"))
        await self.dispatch("MESSAGE_CREATE", self._for_gateway(message, member=self.member_payload(
            self.bot_user, with_user=False)))
        return _json(message)

    async def _typing(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _create_thread(self, request: web.Request) -> web.Response:
        body = request[BODY]
        cid, mid = int(request.match_info["channel"]), int(request.match_info["message"])
        starter = self._stored(cid, mid)
        if self.channels[cid]["type"] != 0:
            return _json({"message": "Cannot execute action on this channel type", "code": 50024}, status=400)
        if not self._channel_permissions(cid) & CREATE_PUBLIC_THREADS:
            return _json({"message": "Missing Permissions", "code": 50013}, status=403)
        if not body.get("name") or len(body["name"]) > 100:
            return _json({"message": "Invalid Form Body", "code": 50035,
                          "errors": {"name": {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH"}]}}}, status=400)
        if str(mid) in {c["id"] for c in self.channels.values()}:
            return _json({"message": "A thread has already been created for this message", "code": 160004},
                         status=400)
        now = _now()
        thread = {
            "id": str(mid), "type": 11, "guild_id": str(self.guild_id), "parent_id": str(cid),
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
    def _interaction(self, token: str) -> dict[str, Any]:
        try:
            return self.interactions[token]
        except KeyError:
            raise web.HTTPNotFound(text=json.dumps({"message": "Unknown Webhook", "code": 10015}),
                                   content_type="application/json") from None

    def _interaction_message(self, record: dict[str, Any], body: dict[str, Any], *, flags: int) -> dict[str, Any]:
        p = record["payload"]
        ephemeral = bool(flags & EPHEMERAL)
        metadata = {"id": p["id"], "type": p["type"], "user": p["member"]["user"],
                    "authorizing_integration_owners": p["authorizing_integration_owners"]}
        if p["type"] == 2:
            metadata.update(name=p["data"]["name"], command_type=1)
        return self._message(
            int(p["channel_id"]), self.bot_user, content=body.get("content") or "", embeds=body.get("embeds"),
            components=body.get("components"), flags=flags, kind=20 if p["type"] == 2 else 0, store=not ephemeral,
            webhook_id=str(self.app_id), application_id=str(self.app_id), interaction_metadata=metadata,
        )

    async def _callback(self, request: web.Request) -> web.Response:
        record = self._interaction(request.match_info["token"])
        if record["responded"]:
            return _json({"message": "Interaction has already been acknowledged.", "code": 40060}, status=400)
        body = request[BODY]
        kind, data = body["type"], body.get("data") or {}
        p = record["payload"]
        interaction = {"id": p["id"], "type": p["type"]}
        resource: dict[str, Any] = {"type": kind}
        if kind in (4, 5):
            if kind == 4 and (error := validate_message(data)):
                return error
            flags = data.get("flags", 0) | (LOADING if kind == 5 else 0)
            message = self._interaction_message(record, data, flags=flags)
            record["original"] = message
            interaction.update(response_message_id=message["id"], response_message_loading=kind == 5,
                               response_message_ephemeral=bool(flags & EPHEMERAL))
            resource["message"] = message
            if not flags & EPHEMERAL:
                await self.dispatch("MESSAGE_CREATE", self._for_gateway(message, member=self.member_payload(
                    self.bot_user, with_user=False)))
        elif kind not in (6, 7):
            return _json({"message": "Invalid interaction response type", "code": 50035}, status=400)
        record["responded"] = True
        return _json({"interaction": interaction, "resource": resource})

    async def _edit_original(self, request: web.Request) -> web.Response:
        record = self._interaction(request.match_info["token"])
        message = record["original"]
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        body = request[BODY]
        merged = {"content": message["content"], "embeds": message["embeds"], "components": message["components"],
                  **{k: v for k, v in body.items() if k in ("content", "embeds", "components")}}
        if error := validate_message(merged):
            return error
        message.update(content=merged["content"] or "", embeds=[{"type": "rich", **e} for e in merged["embeds"] or []],
                       components=_numbered(merged["components"] or []), flags=message["flags"] & ~LOADING,
                       edited_timestamp=_now())
        if not message["flags"] & EPHEMERAL:
            await self.dispatch("MESSAGE_UPDATE", self._for_gateway(message, member=self.member_payload(
                self.bot_user, with_user=False)))
        return _json(message)

    async def _followup(self, request: web.Request) -> web.Response:
        record = self._interaction(request.match_info["token"])
        body = request[BODY]
        if not record["responded"]:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        if error := validate_message(body):
            return error
        message = self._interaction_message(record, body, flags=body.get("flags", 0))
        if not message["flags"] & EPHEMERAL:
            await self.dispatch("MESSAGE_CREATE", self._for_gateway(message, member=self.member_payload(
                self.bot_user, with_user=False)))
        return _json(message)

    async def _unknown(self, request: web.Request) -> web.Response:
        return _json({"message": f"404: Not Found (the test server has no {request.method} {request.path})",
                      "code": 0}, status=404)


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
        if e.get("url") and not str(e["url"]).startswith(("http://", "https://")):
            errors[f"embeds.{i}.url"] = "Not a well formed URL."
    if total > 6000:
        errors["embeds"] = "Embed size exceeds maximum size of 6000"
    if errors:
        return _json({"message": "Invalid Form Body", "code": 50035, "errors": errors}, status=400)
    if not content.strip() and not embeds and not body.get("components"):
        return _json({"message": "Cannot send an empty message", "code": 50006}, status=400)
    return None


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
