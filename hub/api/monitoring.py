"""Machine endpoints: /healthz (the process is up), /readyz (its dependencies are) and /metrics
(Prometheus). Details of a failure go only to signed-in admins, never to anonymous callers."""

import hmac
import ipaddress

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from hub.alerts.exposition import alerts_exposition
from hub.metrics.prometheus import CONTENT_TYPE, exposition
from hub.metrics.readiness import CHECKS, readiness
from hub.roles import ADMIN, READERS, has_role

METRICS_CACHE_KEY = "hub:metrics-exposition"
METRICS_CACHE_SECONDS = 1  # scrapes every few seconds from several scrapers share one build


@csrf_exempt  # they change nothing: another method is a 405, not the CSRF failure page
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _has_role(request: HttpRequest, roles) -> bool:
    """Whether the signed-in user has one of `roles`; False when the session cannot be read
    (the database may be what is down)."""
    try:
        return request.user.is_authenticated and has_role(request.user, roles)
    except Exception:  # reading the session needs the database
        return False


@csrf_exempt
@require_GET
def readyz(request):
    """200 when the database, the broker and a worker are there; 503 naming what is missing.
    `?checks=database,broker` asks for some only (a web node's load-balancer probe)."""
    only = [name for name in request.GET.get("checks", "").split(",") if name in CHECKS]
    problems = readiness(only)
    missing = [name for name, problem in problems.items() if problem]
    body = {
        "status": "unavailable" if missing else "ok",
        "checks": {name: "missing" if problem else "ok" for name, problem in problems.items()},
    }
    if missing:
        body["missing"] = missing
        if _has_role(request, (ADMIN,)):
            body["details"] = {name: problems[name] for name in missing}
    return JsonResponse(body, status=503 if missing else 200)


def _from_loopback(request: HttpRequest) -> bool:
    """A direct request from this machine. Behind a reverse proxy every request comes from
    loopback, so one that a proxy forwarded (it says so in a header) does not count."""
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_allowed(request: HttpRequest) -> bool:
    token = settings.HUB_METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    if settings.HUB_METRICS_ALLOW_LOOPBACK and _from_loopback(request):
        return True
    return _has_role(request, READERS)


@csrf_exempt
@require_GET
def metrics(request):
    """Prometheus' scrape target; anonymous from loopback, else with the bearer token."""
    if not metrics_allowed(request):
        return HttpResponse(
            "Send Authorization: Bearer <HUB_METRICS_TOKEN>.\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    text = cache.get(METRICS_CACHE_KEY)
    if text is None:
        text = exposition() + alerts_exposition()
        cache.set(METRICS_CACHE_KEY, text, METRICS_CACHE_SECONDS)
    return HttpResponse(text, content_type=CONTENT_TYPE)
