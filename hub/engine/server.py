"""The engine's front door for webhooks: `POST /hooks/<system>/`, answered as the web server's own
webhook view answers (hub/api/webhooks.py), with no middleware in the way and in groups committed
together. A 202 is sent only once the event is committed."""

import asyncio
import json
import logging

from aiohttp import web
from django.conf import settings

from hub.engine.groupcommit import GroupCommit
from hub.pipeline.ingest import (
    DATABASE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    UNAVAILABLE_MESSAGE,
    HandshakeReply,
    IngestError,
    cached_system,
    system_by_slug,
    webhook_event,
    webhook_get,
)

log = logging.getLogger("hub.engine")
COMMITTER = web.AppKey("committer", GroupCommit)


def answer(data: dict, status: int, **headers: str) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json", headers=headers
    )


def handshake_answer(reply: HandshakeReply) -> web.Response:
    return web.Response(
        text=reply.text, content_type="text/plain", headers={"X-Content-Type-Options": "nosniff"}
    )


async def webhook(request: web.Request) -> web.Response:
    if request.method == "GET":  # some senders check the address first (a vendor template's handshake)
        return await _get(request)
    if request.method != "POST":
        return answer({"error": f"webhooks are sent with POST, not {request.method}"}, 405, Allow="GET, POST")
    limit = settings.HUB_MAX_WEBHOOK_BYTES
    if request.content_length is not None and request.content_length > limit:
        return answer({"error": f"body is {request.content_length} bytes; the limit is {limit}"}, 413)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:  # a chunked body that grew past the limit
        return answer({"error": f"body too large; the limit is {limit} bytes"}, 413)
    committer = request.app[COMMITTER]
    slug = request.match_info["slug"]
    try:
        system = cached_system(slug)
        if system is not None and not system.secret_unreadable("webhook_secret"):
            incoming = webhook_event(system, body=body, headers=request.headers)
        else:  # reading the system, or pausing its flows, queries the database: not on this loop
            incoming = await committer.run_in_database_thread(
                lambda: webhook_event(system_by_slug(slug), body=body, headers=request.headers)
            )
        result = await committer.store(incoming)
    except HandshakeReply as reply:
        return handshake_answer(reply)
    except IngestError as exc:
        return answer({"error": exc.message}, exc.status)
    except DATABASE_UNAVAILABLE as exc:
        log.warning("answered 503: the database is unavailable (%s: %s)", type(exc).__name__, exc)
        return answer({"error": UNAVAILABLE_MESSAGE}, 503, **{"Retry-After": str(RETRY_AFTER_SECONDS)})
    return answer(result.as_dict(), 202)


async def _get(request: web.Request) -> web.Response:
    slug, query = request.match_info["slug"], dict(request.query)
    try:
        await request.app[COMMITTER].run_in_database_thread(
            lambda: webhook_get(slug=slug, headers=request.headers, query=query)
        )
    except HandshakeReply as reply:
        return handshake_answer(reply)
    except IngestError as exc:
        return answer({"error": exc.message}, exc.status, Allow="POST")
    except DATABASE_UNAVAILABLE as exc:
        log.warning("answered 503: the database is unavailable (%s: %s)", type(exc).__name__, exc)
        return answer({"error": UNAVAILABLE_MESSAGE}, 503, **{"Retry-After": str(RETRY_AFTER_SECONDS)})
    raise AssertionError("webhook_get answers by raising")  # pragma: no cover


async def healthz(request: web.Request) -> web.Response:
    return answer({"status": "ok"}, 200)


async def not_found(request: web.Request) -> web.Response:
    return answer({"error": f"nothing here: {request.path} (webhooks go to /hooks/<system slug>/)"}, 404)


def engine_app() -> web.Application:
    # One byte over the limit is enough to tell a body too large from one at the limit.
    app = web.Application(client_max_size=settings.HUB_MAX_WEBHOOK_BYTES + 1)
    app[COMMITTER] = GroupCommit()
    app.router.add_route("*", "/hooks/{slug}/", webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/{tail:.*}", not_found)

    async def close_committer(app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, app[COMMITTER].close)

    app.on_cleanup.append(close_committer)
    return app
