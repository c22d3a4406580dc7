"""AURA settings. Every deployment-specific value comes from the environment (documented in .env.example)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE

from core.crypto import development_key
from core.env import env_bool, env_decimal, env_float, env_int, env_int_list, env_list, env_str, read_secret_file
from core.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("AURA_DATA_DIR", BASE_DIR / ".data"))

# "development" is what `make run` sets: it allows a generated secret key kept in .data/.
AURA_ENV = env_str("AURA_ENV", "production")
DEBUG = env_bool("DEBUG", False)


def _development_secret_key() -> str:
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY") or (
    _development_secret_key() if AURA_ENV in ("development", "test") else env_str("SECRET_KEY")
)

AURA_BASE_DOMAIN = env_str("AURA_BASE_DOMAIN", "localhost")
AURA_PLATFORM_URL = env_str("AURA_PLATFORM_URL", "http://localhost:8000").rstrip("/")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", f"{AURA_BASE_DOMAIN},.{AURA_BASE_DOMAIN},127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- Tenancy (design notes §1) -------------------------------------------------------------
SHARED_APPS = [
    "daphne",
    "django_tenants",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "axes",  # admin login throttling (aura/login_throttle.py); its counts live in Redis, not its tables
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "django_prometheus",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files: the API docs need no CDN
    "billing",
    "webhooks",
    "telephony",
    "aura",  # the composition root: management commands and admin pages that span apps
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "voice",
    "conversations",
    "knowledge",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Organization"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "aura.urls_public"
ROOT_URLCONF = "aura.urls_tenant"
# New organizations clone this migrated schema instead of replaying every migration.
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_LIMIT_SET_CALLS = True
# django-tenants paints tenant apps green in the admin's app list; both admins share one theme (static/admin/aura.css).
TENANT_COLOR_ADMIN_APPS = False
# migrate_schemas skips tenants whose migrations are all applied (one query over every schema).
GET_EXECUTOR_FUNCTION = "tenants.schema_migrations.get_executor"
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

# --- Connection budget per process (docs/deployment.md, "Connection budget") ---------------------
# PostgreSQL: Django's psycopg pool, one per process. A request (or a database_sync_to_async call)
# borrows a connection and gives it back when it ends; at the bound it waits up to DB_POOL_TIMEOUT_S.
# Each connection is checked when borrowed (CONN_HEALTH_CHECKS): one PostgreSQL dropped is replaced.
DB_POOL_MIN_SIZE = env_int("DB_POOL_MIN_SIZE", 1)
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 8)
DB_POOL_TIMEOUT_S = env_float("DB_POOL_TIMEOUT_S", 10.0)
DB_POOL_MAX_IDLE_S = env_float("DB_POOL_MAX_IDLE_S", 300.0)  # idle connections above the minimum close
# Redis: one bounded pool per process on the cache database (caches, rate limits, health, session slots),
# one per event loop for async code; Celery's broker and result connections bounded separately.
AURA_REDIS_MAX_CONNECTIONS = env_int("AURA_REDIS_MAX_CONNECTIONS", 16)
AURA_REDIS_POOL_TIMEOUT_S = env_float("AURA_REDIS_POOL_TIMEOUT_S", 5.0)
AURA_REDIS_SOCKET_TIMEOUT_S = env_float("AURA_REDIS_SOCKET_TIMEOUT_S", 2.0)
AURA_REDIS_HEALTH_CHECK_S = env_int("AURA_REDIS_HEALTH_CHECK_S", 30)  # ping a connection idle this long
AURA_CELERY_REDIS_MAX_CONNECTIONS = env_int("AURA_CELERY_REDIS_MAX_CONNECTIONS", 4)
# HTTP requests run on worker threads kept from one request to the next (aura/request_threads.py): at
# most this many idle ones are kept; more are made while more requests run at once.
AURA_REQUEST_THREADS_IDLE = env_int("AURA_REQUEST_THREADS_IDLE", 8)

DATABASES = {
    "default": {
        **dj_database_url.parse(env_str("DATABASE_URL"), conn_max_age=0),  # the pool keeps connections
        "ENGINE": "core.db_backend",  # django-tenants' backend with query metrics
        "CONN_HEALTH_CHECKS": True,
    }
}
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": DB_POOL_MIN_SIZE,
    "max_size": DB_POOL_MAX_SIZE,
    "timeout": DB_POOL_TIMEOUT_S,
    "max_idle": DB_POOL_MAX_IDLE_S,
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "aura.middleware.RequestContextMiddleware",
    "aura.middleware.HostlessEndpointsMiddleware",  # /healthz, /readyz, /metrics on any host name
    "aura.middleware.BadInputMiddleware",  # oversize bodies (413), NUL in paths, queries and forms (400)
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy (CONTENT_SECURITY_POLICY below)
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files need no tenant, nor the database
    "tenants.middleware.TenantMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into the 429 page
    "aura.middleware.SyncStackMiddleware",  # last: the stack above runs sync (its docstring says why)
]

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
            ],
        },
    },
]

ASGI_APPLICATION = "aura.asgi.application"
WSGI_APPLICATION = None

# Argon2id first (OWASP's first choice; ~10x cheaper per check than Django's default PBKDF2 at
# comparable strength); PBKDF2 stays so existing hashes still verify and get upgraded on login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# Admin logins (aura/login_throttle.py): after AURA_LOGIN_FAILURE_LIMIT failures an account (per schema)
# or a client address is refused with 429 for AURA_LOGIN_COOLOFF_S; a success resets the account's count.
AUTHENTICATION_BACKENDS = [
    "aura.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "aura.login_throttle.FailOpenCacheHandler"
AXES_CACHE = "platform"
AXES_FAILURE_LIMIT = env_int("AURA_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("AURA_LOGIN_COOLOFF_S", 900))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one alone locks: an account, or a client
AXES_USERNAME_CALLABLE = "aura.login_throttle.account"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/login_locked.html"
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded knowledge documents and (only when an organization turns recording on) recorded speech.
# Web and worker processes must share this directory (one volume). Never served publicly.
MEDIA_ROOT = Path(os.environ.get("AURA_MEDIA_ROOT", DATA_DIR / "media"))
MEDIA_URL = "/media/"
# Serve straight from the finders when collectstatic has not run (development and tests).
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", not STATIC_ROOT.exists())


# --- Redis: cache, channel layer, Celery -------------------------------------------------------
def _redis_db(url: str, db: int) -> str:
    """The same Redis server, another logical database (clearing the cache never touches queues)."""
    base, _, tail = url.partition("?")
    head, _, last = base.rstrip("/").rpartition("/")
    base = f"{head}/{db}" if last.isdigit() and head.count("/") >= 2 else f"{base.rstrip('/')}/{db}"
    return base + (f"?{tail}" if tail else "")


REDIS_URL = env_str("REDIS_URL")
CACHE_REDIS_URL = env_str("CACHE_REDIS_URL", _redis_db(REDIS_URL, 1))
CACHES = {
    "default": {
        "BACKEND": "core.redis.SharedPoolRedisCache",  # both caches on the process's one bounded pool
        "LOCATION": CACHE_REDIS_URL,
        "KEY_PREFIX": "aura",
        # Every cache key starts with the current schema: one tenant can never read another's entry.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "TIMEOUT": 300,
    },
    # Lookups by keys that arrive from outside (host, widget key, API key) are platform data,
    # found before any tenant is known: one key space, not per schema.
    "platform": {
        "BACKEND": "core.redis.SharedPoolRedisCache",
        "LOCATION": CACHE_REDIS_URL,
        "KEY_PREFIX": "aura-platform",
        "TIMEOUT": 300,
    },
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # No consumer joins groups today; a bounded pool per event loop if one ever does.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "max_connections": AURA_REDIS_MAX_CONNECTIONS}],
            "prefix": "aura:channels",
        },
    }
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = False
# Bounded: producers (web and tasks that queue tasks), the broker transport's pool, the result backend's.
CELERY_BROKER_POOL_LIMIT = AURA_CELERY_REDIS_MAX_CONNECTIONS
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_connections": AURA_CELERY_REDIS_MAX_CONNECTIONS,
    "health_check_interval": AURA_REDIS_HEALTH_CHECK_S,
    "socket_keepalive": True,
}
CELERY_REDIS_MAX_CONNECTIONS = AURA_CELERY_REDIS_MAX_CONNECTIONS
CELERY_REDIS_BACKEND_HEALTH_CHECK_INTERVAL = AURA_REDIS_HEALTH_CHECK_S
CELERY_REDIS_SOCKET_KEEPALIVE = True
CELERY_REDIS_RETRY_ON_TIMEOUT = True

# --- Billing (docs/billing.md) ----------------------------------------------------------------
AURA_BILLING_CURRENCY = env_str("AURA_BILLING_CURRENCY", "USD")
AURA_BILLING_TAX_RATE = env_decimal("AURA_BILLING_TAX_RATE", "0")  # 0.20 adds 20 % tax to every invoice
AURA_BILLING_GRACE_DAYS = env_int("AURA_BILLING_GRACE_DAYS", 3)  # late events this long after a month still count
AURA_BILLING_ALERT_THRESHOLDS = env_int_list("AURA_BILLING_ALERT_THRESHOLDS", "80,100")  # % of the plan
AURA_BILLING_DEFAULT_PLAN = env_str("AURA_BILLING_DEFAULT_PLAN", "trial")  # new organizations start on it
AURA_BILLING_TRIAL_DAYS = env_int("AURA_BILLING_TRIAL_DAYS", 14)
AURA_BILLING_SESSION_SLOT_TTL_S = env_int("AURA_BILLING_SESSION_SLOT_TTL_S", 60)  # a crashed process frees slots
# How long a conversation write (a turn, its usage) is retried while the database is unavailable.
AURA_RECORDER_RETRY_S = env_float("AURA_RECORDER_RETRY_S", 30.0)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "AURA <billing@localhost>")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if AURA_ENV == "development"
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Schedules; django-celery-beat's DatabaseScheduler copies them into its tables when beat starts.
CELERY_BEAT_SCHEDULE = {
    "billing-rollup": {"task": "billing.rollup_usage", "schedule": crontab(minute=5)},
    "billing-alerts": {"task": "billing.send_usage_alerts", "schedule": crontab(minute=15)},
    "billing-invoices": {"task": "billing.draft_invoices", "schedule": crontab(minute=30, hour=2)},
    # Webhook retries are queued with a countdown; this picks up any whose message was lost.
    "webhooks-retry-due": {"task": "webhooks.retry_due", "schedule": crontab(minute="*")},
    # Organizations' retention periods: conversations older than theirs are deleted (docs/conversations.md).
    "conversations-retention": {"task": "conversations.apply_retention", "schedule": crontab(minute=45, hour=3)},
    # Phone calls left open (a stream that never connected, a process that died): ended (docs/telephony.md).
    "telephony-stale-calls": {"task": "telephony.end_stale_calls", "schedule": crontab(minute="*/5")},
}

# --- Knowledge (docs/knowledge.md) -----------------------------------------------------------
AURA_KNOWLEDGE_MAX_UPLOAD_MB = env_int("AURA_KNOWLEDGE_MAX_UPLOAD_MB", 10)
AURA_KNOWLEDGE_SYNC_INDEX_CHARS = env_int("AURA_KNOWLEDGE_SYNC_INDEX_CHARS", 20_000)  # pasted text up to this: at once

# --- Security headers and cookies --------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY") else None
# Cookies are Secure in production (served over HTTPS) unless SECURE_COOKIES=0 says the site is plain
# HTTP on purpose; development and tests run on http://localhost without them. Always HttpOnly and
# SameSite=Lax (no page script reads the CSRF cookie: forms carry the token).
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", AURA_ENV == "production")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every page the platform renders: the admins, the demo page
# that serves the widget, error pages. Scripts only from the platform itself (or with the request's
# nonce); inline styles stay allowed (the admin and the widget's shadow DOM use them); no framing, no
# plugins. /api/ answers JSON, and its documentation pages bring their own assets: not covered.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/"],
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],  # the widget's POST /widget/session and its WebSocket (same host)
        "media-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# /metrics (docs/deployment.md, Metrics): with a token, only "Authorization: Bearer <token>" gets an
# answer (on any host: Prometheus addresses processes by IP); without one, production serves none and
# development answers on IP addresses and the platform's own host, never on a tenant's.
AURA_METRICS_TOKEN = env_str("AURA_METRICS_TOKEN", "") or read_secret_file(env_str("AURA_METRICS_TOKEN_FILE", ""))

# --- Product -------------------------------------------------------------------------------
AURA_STAFF_SESSION_AGE_S = env_int("AURA_STAFF_SESSION_AGE_S", 12 * 3600)
SESSION_COOKIE_AGE = AURA_STAFF_SESSION_AGE_S
AURA_TENANT_CACHE_S = env_float("AURA_TENANT_CACHE_S", 300.0)
# POST /widget/session limits: per visitor IP, and per widget key (a key embedded on a busy site).
# On SIGTERM a daphne process tells its widgets to reconnect elsewhere and stops within this bound.
AURA_SHUTDOWN_GRACE_S = env_float("AURA_SHUTDOWN_GRACE_S", 25.0)
# How long a database worker thread may hold the GIL while the event loop waits (Python's default: 5 ms).
AURA_GIL_SWITCH_INTERVAL_S = env_float("AURA_GIL_SWITCH_INTERVAL_S", 0.001)
# Middle-generation garbage collections before a full one in the server (Python's default: 10).
AURA_GC_FULL_AFTER = env_int("AURA_GC_FULL_AFTER", 100)
# The server logs its event loop's lag, garbage collections and stall stacks this often (core/looplag.py); 0: off.
AURA_LOOP_LAG_LOG_S = env_float("AURA_LOOP_LAG_LOG_S", 0.0)
# Silero VAD's ONNX file (docs/architecture.md, speech detection); empty: the one the silero-vad package ships.
AURA_SILERO_MODEL = env_str("AURA_SILERO_MODEL", "")
AURA_WIDGET_SESSIONS_PER_IP_PER_MINUTE = env_int("AURA_WIDGET_SESSIONS_PER_IP_PER_MINUTE", 60)
AURA_WIDGET_SESSIONS_PER_KEY_PER_MINUTE = env_int("AURA_WIDGET_SESSIONS_PER_KEY_PER_MINUTE", 600)

# --- REST API (docs/api.md) ------------------------------------------------------------------
# Served on the platform host under /api/v1/; the organization comes from the API key.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.api.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": [
        "tenants.api.throttling.PerKeyThrottle",
        "tenants.api.throttling.PerOrganizationThrottle",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.CursorPage",
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AuraAutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "URL_FORMAT_OVERRIDE": None,  # ?format= is the export's own parameter
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AURA API",
    "DESCRIPTION": "Automate what a tenant admin does by hand: assistants, widget and API keys, conversations, "
    "knowledge, webhooks, calls and usage.\n\n"
    "Authenticate with `Authorization: Bearer sk_…`, an API key from your admin's *API keys* page. Each key "
    "has scopes: `read` for safe methods, `write` for changes, `admin` for keys and secrets; each operation "
    'says which it needs. Errors have one shape, `{"error": {"code", "message", "details"}}`, with '
    "stable codes. Requests are rate-limited per key and per organization (`429 rate_limited`, with "
    "`Retry-After`). Lists are paginated with opaque cursors (`next`, `previous`).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_URLCONF": "aura.urls_public",  # the API is served on the platform host
    "DEFAULT_GENERATOR_CLASS": "core.api.schema.PlatformSchemaGenerator",  # and so is `manage.py spectacular`
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
    "DISABLE_ERRORS_AND_WARNINGS": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Requests in any 60 s, counted in Redis over a sliding window: per API key, and per organization (all its keys).
AURA_API_RATE_PER_KEY_PER_MINUTE = env_int("AURA_API_RATE_PER_KEY_PER_MINUTE", 600)
AURA_API_RATE_PER_ORGANIZATION_PER_MINUTE = env_int("AURA_API_RATE_PER_ORGANIZATION_PER_MINUTE", 1200)
AURA_CALLS_PER_ORGANIZATION_PER_MINUTE = env_int("AURA_CALLS_PER_ORGANIZATION_PER_MINUTE", 30)
# Failed API keys per client address in any 60 s; past it the client's unknown keys get 429 without a lookup.
AURA_API_AUTH_FAILURES_PER_CLIENT_PER_MINUTE = env_int("AURA_API_AUTH_FAILURES_PER_CLIENT_PER_MINUTE", 20)

# --- Webhooks (docs/api.md) ----------------------------------------------------------------------
# Webhook URLs are refused when they resolve to loopback, link-local or metadata addresses, checked
# when subscribed and again, under the settings of now, at every delivery's connection (the address
# delivered to is the one checked; no redirects are followed: core.netguard). Private networks are
# refused too unless allowed.
AURA_WEBHOOK_URLS_ALLOW_PRIVATE = env_bool("AURA_WEBHOOK_URLS_ALLOW_PRIVATE", False)
AURA_WEBHOOK_URLS_ALLOW_LOOPBACK = env_bool("AURA_WEBHOOK_URLS_ALLOW_LOOPBACK", AURA_ENV == "development")
AURA_WEBHOOK_TIMEOUT_S = env_float("AURA_WEBHOOK_TIMEOUT_S", 10.0)  # the whole attempt: connect, send, the answer

# Phone calls (telephony, docs/telephony.md): the platform's Twilio account, used for numbers whose
# organization brings none, and the REST API's base URL (tests point it at a local fake).
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/")
# Where calls on the platform's Twilio account may go (transfers, outbound calls): ISO 3166 country codes.
TELEPHONY_PLATFORM_DESTINATION_COUNTRIES = env_list("TELEPHONY_PLATFORM_DESTINATION_COUNTRIES", "US,CA")
# Calls left open are ended: without a stream after this long, or open longer than this at all.
TELEPHONY_UNSTREAMED_CALL_S = env_int("TELEPHONY_UNSTREAMED_CALL_S", 600)
TELEPHONY_CALL_MAX_S = env_int("TELEPHONY_CALL_MAX_S", 6 * 3600)

# JSON lines in production (request / session id on every line, personal data redacted), plain text
# in development.
LOGGING = logging_config(
    env_str("LOG_FORMAT", "json" if AURA_ENV == "production" else "plain"), env_str("LOG_LEVEL", "INFO")
)

# --- Providers ------------------------------------------------------------------------------
# Platform keys; a tenant may bring its own per provider (stored encrypted, see AURA_ENCRYPTION_KEYS).
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "")  # empty: https://api.openai.com/v1
XAI_API_KEY = os.environ.get("XAI_API_KEY", "")
XAI_API_HOST = env_str("XAI_API_HOST", "api.x.ai")
XAI_INSECURE = env_bool("XAI_INSECURE", False)  # plain-text gRPC: only for a local test server
# Fernet keys, newest first, comma-separated (python -c "from cryptography.fernet import Fernet;
# print(Fernet.generate_key().decode())"). Development and tests derive one from SECRET_KEY.
AURA_ENCRYPTION_KEYS = env_list("AURA_ENCRYPTION_KEYS") or (
    [development_key(SECRET_KEY)] if AURA_ENV in ("development", "test") else [env_str("AURA_ENCRYPTION_KEYS")]
)
# Tenants' OpenAI-compatible base URLs: loopback, link-local and metadata addresses are always refused;
# private networks (a self-hosted vLLM) are allowed unless this is off. Checked when saved and again,
# under the settings of now, at every connection; redirects are never followed (core.netguard).
AURA_PROVIDER_URLS_ALLOW_PRIVATE = env_bool("AURA_PROVIDER_URLS_ALLOW_PRIVATE", True)
AURA_PROVIDER_URLS_ALLOW_LOOPBACK = env_bool("AURA_PROVIDER_URLS_ALLOW_LOOPBACK", AURA_ENV == "development")
# Tenants' HTTP tools: loopback, link-local, metadata and private addresses are refused (SSRF), checked
# when the tool is saved and again, against the address actually connected to, on every call.
AURA_TOOL_URLS_ALLOW_PRIVATE = env_bool("AURA_TOOL_URLS_ALLOW_PRIVATE", False)
AURA_TOOL_URLS_ALLOW_LOOPBACK = env_bool("AURA_TOOL_URLS_ALLOW_LOOPBACK", False)
# Circuit breakers (per provider and model, shared through Redis).
AURA_BREAKER_FAILURES = env_int("AURA_BREAKER_FAILURES", 3)  # consecutive failures that open it
AURA_BREAKER_COOLDOWN_S = env_float("AURA_BREAKER_COOLDOWN_S", 30.0)  # open this long, then one probe
# Simulated providers' own latencies (ms): the demo without keys, and load tests that subtract them.
AURA_SIMULATED_STT_MS = env_float("AURA_SIMULATED_STT_MS", 150.0)
AURA_SIMULATED_STT_STREAM_MS = env_float("AURA_SIMULATED_STT_STREAM_MS", 60.0)  # a streaming commit's answer
AURA_SIMULATED_STT_STREAMING = env_bool("AURA_SIMULATED_STT_STREAMING", True)  # off: batch requests only
AURA_SIMULATED_LLM_FIRST_TOKEN_MS = env_float("AURA_SIMULATED_LLM_FIRST_TOKEN_MS", 300.0)
AURA_SIMULATED_LLM_TOKENS_PER_S = env_float("AURA_SIMULATED_LLM_TOKENS_PER_S", 60.0)
AURA_SIMULATED_TTS_FIRST_BYTE_MS = env_float("AURA_SIMULATED_TTS_FIRST_BYTE_MS", 120.0)
AURA_SIMULATED_TTS_VOICE = env_str("AURA_SIMULATED_TTS_VOICE", "espeak")  # "espeak" when installed, or "tone"
