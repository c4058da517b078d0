"""One settings module, read from the environment, with defaults that run on a fresh clone.

Embedded default: SQLite in WAL mode with immediate transactions and the django-q2 ORM broker.
Production: DATABASE_URL (PostgreSQL) and REDIS_URL (django-q2 Redis broker, shared rate limits).
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from common.limits import LIMITS
from connectors import netpolicy
from hub import localenv

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HUB_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)
LOCAL_ENV_FILE = localenv.env_file_path()
localenv.load(LOCAL_ENV_FILE)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int, *, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def per_test_worker(name: str) -> str:
    """`name` with the pytest-xdist worker's id (gw0, gw1, ...) when tests run in parallel, so each
    worker has a task queue and cache of its own, as two test runs do; the worker processes its
    tests start read the same name (it is added once, whether or not they were given it already)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return f"{name}-{worker}" if worker and not name.endswith(f"-{worker}") else name


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", localenv.DEFAULT_SECRET_KEY)
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
# Fernet keys that encrypt stored credentials, independent of SECRET_KEY: the first encrypts, all
# decrypt, and `manage.py rotate_keys` re-encrypts everything under the first (README "Keys").
HUB_ENCRYPTION_KEYS = env_list("HUB_ENCRYPTION_KEYS")
if not DEBUG and (key_problems := localenv.key_problems(SECRET_KEY, HUB_ENCRYPTION_KEYS)):
    raise ImproperlyConfigured(
        "The hub will not start with these keys (DEBUG is off):\n- " + "\n- ".join(key_problems)
    )
# DEBUG on and no keys set: a development key generated once into var/hub.env, never one derived
# from SECRET_KEY, so credentials survive a SECRET_KEY change; `check --deploy` reports it.
HUB_DEVELOPMENT_KEY_IN_USE = not HUB_ENCRYPTION_KEYS
if HUB_DEVELOPMENT_KEY_IN_USE:
    HUB_ENCRYPTION_KEYS = [localenv.development_key(LOCAL_ENV_FILE)]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
HUB_PUBLIC_URL = os.environ.get("HUB_PUBLIC_URL", "http://127.0.0.1:8000")
# Where senders reach the webhook front door: the engine (`manage.py engine`), or this web server.
HUB_INGEST_URL = os.environ.get("HUB_INGEST_URL", HUB_PUBLIC_URL)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_q",
    "axes",
    "connectors",
    "mappings",
    "hub",
    "hub.metrics",
    "dlq",
    "hub.alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hub.urls"
WSGI_APPLICATION = "hub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hub.access.roles_context",
            ],
        },
    },
]

SQLITE_PATH = Path(os.environ.get("SQLITE_PATH", VAR_DIR / "hub.sqlite3"))
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=300)}
    # One test database per test run, so two runs on one server never drop each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so web and workers queue for it
                # instead of failing with "database is locked" on lock upgrade.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;",
            },
            # A file (worker processes started by tests open it too), one per test run.
            "TEST": {"NAME": VAR_DIR / f"test-{os.getpid()}.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": per_test_worker(os.environ.get("HUB_CACHE_PREFIX", "hub")),
        }
    }
else:
    # File-based so the web process and the workers see the same keys on one machine.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": VAR_DIR / per_test_worker("cache"),
            "KEY_PREFIX": per_test_worker(os.environ.get("HUB_CACHE_PREFIX", "hub")),
        }
    }

# One worker process per core: a drain is CPU-bound Python, so more processes than cores only
# add contention (measured with `manage.py bench`).
Q_WORKERS = int(os.environ.get("HUB_WORKERS", str(os.cpu_count() or 2)))
HUB_DRAIN_SECONDS = int(os.environ.get("HUB_DRAIN_SECONDS", "240"))
Q_CLUSTER = {
    "name": per_test_worker(os.environ.get("HUB_QUEUE_NAME", "hub")),
    "workers": Q_WORKERS,
    # A drain checks its deadline (HUB_DRAIN_SECONDS) before each call, so it overruns by at
    # most one delivery's calls (a lookup and a write at the longest timeouts a system may set):
    # the task queue never kills it mid-call.
    "timeout": HUB_DRAIN_SECONDS + 2 * (60 + 300) + 30,
    "retry": HUB_DRAIN_SECONDS + 2 * (60 + 300) + 90,
    "max_attempts": 1,
    "poll": 0.05,
    "bulk": 5,
    "save_limit": 200,
    "ack_failures": True,
    "catch_up": False,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling (django-axes): after this many wrong passwords for one account, or from one
# address, sign-in is refused for the cool-off time, and the lockout is written to the audit log.
AXES_FAILURE_LIMIT = env_int("HUB_SIGNIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("HUB_SIGNIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Not reset by a successful sign-in: axes would forget every failure from the same address too,
# so anyone with an account could sign in between guesses at another's password without end.
AXES_RESET_ON_SUCCESS = False
AXES_VERBOSE = False  # no banner in every process's log; pauses are in the audit log
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# How many reverse proxies stand in front of the hub: the client's address is then read from
# X-Forwarded-For (hub/clientip.py) for sign-in pauses, the audit log and /metrics. 0: REMOTE_ADDR.
HUB_TRUSTED_PROXIES = env_int("HUB_TRUSTED_PROXIES", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "hub.clientip.client_address"

# HTTPS (README "Security"): HUB_HTTPS=1 behind TLS turns on secure cookies, the redirect to
# https and HSTS; each can also be set on its own.
HUB_HTTPS = env_bool("HUB_HTTPS", False)
SESSION_COOKIE_SECURE = env_bool("HUB_SECURE_COOKIES", HUB_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("HUB_SSL_REDIRECT", HUB_HTTPS)
SECURE_HSTS_SECONDS = env_int("HUB_HSTS_SECONDS", 31536000 if HUB_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HUB_HSTS_INCLUDE_SUBDOMAINS", False)
# Health probes inside a cluster speak plain HTTP to the pod.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
if env_bool("HUB_PROXY_SSL_HEADER", False):
    # Only behind a proxy that sets X-Forwarded-Proto itself and strips it from clients.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_AGE = env_int("HUB_SESSION_HOURS", 12, minimum=1) * 3600
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Ingest limits: bodies larger than these are answered 413. Read from the one table of limits
# (common/limits.py, which reads HUB_MAX_WEBHOOK_BYTES and HUB_MAX_BATCH_BYTES).
HUB_MAX_WEBHOOK_BYTES = LIMITS.webhook_bytes
HUB_MAX_BATCH_BYTES = LIMITS.batch_bytes
HUB_MAX_BATCH_EVENTS = LIMITS.batch_events
DATA_UPLOAD_MAX_MEMORY_SIZE = HUB_MAX_BATCH_BYTES

# Retention (README "Retention"): event payloads and attempt bodies are emptied after this many
# days, outcomes kept; the audit trail is kept forever unless HUB_AUDIT_RETENTION_DAYS is set.
# 0 keeps everything.
HUB_RETENTION_DAYS = env_int("HUB_RETENTION_DAYS", 90, minimum=0)
HUB_AUDIT_RETENTION_DAYS = env_int("HUB_AUDIT_RETENTION_DAYS", 0, minimum=0)

# Delivery engine knobs (per-flow settings override attempts and backoff).
HUB_CLAIM_BATCH = int(os.environ.get("HUB_CLAIM_BATCH", "100"))
HUB_LEASE_SECONDS = int(os.environ.get("HUB_LEASE_SECONDS", "60"))
HUB_DRAIN_LINGER_SECONDS = float(os.environ.get("HUB_DRAIN_LINGER_SECONDS", "3"))
# Calls a worker keeps waiting on targets at the same time (README "How an event flows"): a target
# answering in 200 ms gets 5 calls a second per call in flight. Per target, a system's own
# "calls at once" setting, or this default, bounds them; its rate limit paces them.
HUB_MAX_IN_FLIGHT = env_int("HUB_MAX_IN_FLIGHT", 64, minimum=1)
HUB_ENGINE_MAX_IN_FLIGHT = env_int("HUB_ENGINE_MAX_IN_FLIGHT", 512, minimum=1)  # on its event loop
HUB_MAX_IN_FLIGHT_PER_TARGET = env_int("HUB_MAX_IN_FLIGHT_PER_TARGET", 64, minimum=1)

# Metrics (README "Metrics and machine endpoints"): how long each resolution is kept; 0 keeps
# rows forever. Minutes become hours and hours become days by the metrics task every minute.
HUB_METRICS_KEEP_MINUTES_HOURS = env_int("HUB_METRICS_KEEP_MINUTES_HOURS", 48, minimum=2)
HUB_METRICS_KEEP_HOURS_DAYS = env_int("HUB_METRICS_KEEP_HOURS_DAYS", 90, minimum=2)
HUB_METRICS_KEEP_DAYS_DAYS = env_int("HUB_METRICS_KEEP_DAYS_DAYS", 0, minimum=0)
# /metrics answers anonymous requests from loopback, and others that send this bearer token.
HUB_METRICS_TOKEN = os.environ.get("HUB_METRICS_TOKEN", "")
HUB_METRICS_ALLOW_LOOPBACK = env_bool("HUB_METRICS_ALLOW_LOOPBACK", True)
# /readyz calls the workers alive while a cluster reports its status or a drain ran this recently
# (the minutely drain schedule runs one at least every minute while any worker is up).
HUB_WORKER_HEARTBEAT_MAX_AGE = env_int("HUB_WORKER_HEARTBEAT_MAX_AGE", 150, minimum=30)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hub.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["hub.roles.IsAdminRole"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "hub.api.pagination.LimitOffsetPagination",
    "PAGE_SIZE": LIMITS.api_page_size,
    "EXCEPTION_HANDLER": "hub.api.errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "hub.api.errors.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Integration hub API",
    "DESCRIPTION": "Publish events, inspect deliveries and manage the hub's configuration.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI's files come from the installed sidecar package, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request bodies get components of their own, so required text says minLength 1 there.
    "COMPONENT_SPLIT_REQUEST": True,
    # Operations grouped by resource in the docs (systems, flows, …), not all under "v1".
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Choice sets whose field name other sets share ("kind", "state"), named after what they are.
    "ENUM_NAME_OVERRIDES": {
        "SystemKindEnum": "connectors.models.SystemKind",
        "FlowStateEnum": "hub.models.FlowState",
        "ApiVersionInEnum": "connectors.apiversion.VersionIn",
        "DriftStatusEnum": "hub.api.drift.DriftStatus",
        "DeliveryStatusEnum": "hub.models.DeliveryStatus",
    },
    # Every error answer (401, 403, 404, 400, 413, 415, 503) documented in the one error shape;
    # then the plain views machines call (webhooks, health, metrics), which spectacular cannot see.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hub.api.schema.document_errors",
        "hub.api.schema.document_machine_endpoints",
    ],
}

# Where the hub may connect (connectors/netpolicy.py, README "Security"): never to cloud metadata
# addresses, and to link-local, private, loopback, unspecified or multicast ones only when named
# here, by keyword (link-local, private, loopback, unspecified, multicast) or range (10.20.0.0/16).
# `manage.py up` and the tests add loopback, where the sandbox systems listen.
HUB_OUTBOUND_ALLOW = env_list("HUB_OUTBOUND_ALLOW")
try:
    netpolicy.policy_parse(HUB_OUTBOUND_ALLOW)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None

# Alert emails (hub/alerts), through Django's default mailer: SMTP when EMAIL_HOST is set, else
# printed to the console (development). Read from the usual variables into Django 6.1's MAILERS.
email_host = os.environ.get("EMAIL_HOST", "")
MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.console.EmailBackend",
        "OPTIONS": {},
    }
    if not email_host
    else {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": email_host,
            "port": int(os.environ.get("EMAIL_PORT", "25")),
            "username": os.environ.get("EMAIL_HOST_USER", ""),
            "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
            "use_tls": env_bool("EMAIL_USE_TLS", False),
            # A dead mail server must not hold up alert evaluation for long.
            "timeout": 10,
        },
    }
}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "integration-hub@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django_q": {"level": os.environ.get("Q_LOG_LEVEL", "WARNING")}},
}
