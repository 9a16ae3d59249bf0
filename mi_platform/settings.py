"""MI Platform settings: one module, driven by environment variables.

With no configuration at all the platform runs on the *embedded default*: SQLite under ``var/``, a
Celery broker that needs no server (kombu's filesystem transport under ``var/``), DEBUG off unless
asked. ``DATABASE_URL`` switches to PostgreSQL, ``CELERY_BROKER_URL``/``REDIS_URL`` to Redis.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def envsecret(name: str, default: str = "") -> str:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


VAR_DIR = Path(os.environ.get("MI_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = envbool("DEBUG", False)
# An empty key is refused by the system check `mi_platform.E001` when DEBUG is off; with DEBUG on a
# throw-away development key keeps `runserver` convenient.
SECRET_KEY = envsecret("SECRET_KEY") or ("dev-insecure-key-only-for-debug" if DEBUG else "")
if not SECRET_KEY and "pytest" in sys.modules:
    # A bare `pytest` run (no `make test`) still works; the key never leaves the test process.
    SECRET_KEY = "test-only-insecure-key"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mi_platform",
    "annotation",
    "inference",
    "evaluation",
]

MIDDLEWARE = [
    # First: sees every response, so Django's own errors under /api/ leave in the API's JSON shape,
    # hostile query strings and oversized bodies are refused before anything reads them, and an
    # outage (database, cache, broker down) answers 503 (annotation/accounts/middleware.py).
    "annotation.accounts.middleware.ErrorResponsesMiddleware",
    "annotation.accounts.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "annotation.accounts.middleware.DeactivatedAccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "mi_platform.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

WSGI_APPLICATION = "mi_platform.wsgi.application"
ASGI_APPLICATION = "mi_platform.asgi.application"

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{VAR_DIR / 'mi_platform.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the Celery worker share the file: WAL plus a busy timeout keeps writers
    # from failing with "database is locked" under the embedded default.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "study-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        # Hashed names need `collectstatic` first: on in containers (the Dockerfile runs it), off for the
        # embedded default and tests, where WhiteNoise serves files straight from the finders.
        if envbool("STATIC_MANIFEST", False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Tests and the embedded default serve static files without collectstatic.
WHITENOISE_USE_FINDERS = not envbool("STATIC_MANIFEST", False)
WHITENOISE_AUTOREFRESH = DEBUG

# Uploads: imports larger than this are refused with a clear message (bytes).
MI_MAX_IMPORT_BYTES = envint("MI_MAX_IMPORT_BYTES", 200 * 1024 * 1024)
# Page and API imports are stored here until the worker has read them (removed when the batch ends).
MI_IMPORT_DIR = Path(os.environ.get("MI_IMPORT_DIR", VAR_DIR / "imports"))
# A running import whose worker has not reported for this long is taken over by a redelivered task.
MI_IMPORT_CLAIM_STALE_SECONDS = envint("MI_IMPORT_CLAIM_STALE_SECONDS", 900)
# A running export whose worker has not reported progress for this long is taken over by a redelivered task.
MI_EXPORT_CLAIM_STALE_SECONDS = envint("MI_EXPORT_CLAIM_STALE_SECONDS", 900)
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None

# Where built/fine-tuned models and exports live.
MI_MODEL_STORE = Path(os.environ.get("MI_MODEL_STORE", VAR_DIR / "models"))
MI_EXPORT_DIR = Path(os.environ.get("MI_EXPORT_DIR", VAR_DIR / "exports"))

# --- Celery ---------------------------------------------------------------------------------
_redis_url = os.environ.get("REDIS_URL", "")
# "localhost" names no server (the filesystem transport has none); without a host kombu logs "No hostname
# was supplied" on every connection, a stray warning in the demo's output.
_FILESYSTEM_BROKER = "filesystem://localhost//"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or _redis_url or _FILESYSTEM_BROKER
(VAR_DIR / "celery-results").mkdir(parents=True, exist_ok=True)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or (_redis_url or f"file://{VAR_DIR / 'celery-results'}")
if CELERY_BROKER_URL in ("filesystem://", _FILESYSTEM_BROKER):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("in", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast/control messages (worker pings, revokes) default to ./control: keep them under var/.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # A claimed chunk that is not acknowledged within the visibility timeout is redelivered; chunks
    # are small (seconds to minutes), so one hour is generous without stalling recovery for a day.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ROUTES = {"inference.tasks.run_chunk_gpu": {"queue": "gpu"}}
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Cache ---------------------------------------------------------------------------------
# Holds the throttle counters (API token endpoints, failed sign-ins on the login page). With Redis every
# web worker shares them; the embedded default counts in local memory, per process (so with two gunicorn
# workers a client may fail up to twice the limit: acceptable for a demo, not for production).
if _redis_url:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _redis_url, "KEY_PREFIX": "mi"}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- REST framework ------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.accounts.authentication.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Every string a client sends is checked (annotation/parsers/characters.py) before a serializer sees it.
    "DEFAULT_PARSER_CLASSES": [
        "annotation.accounts.validation.CheckedJSONParser",
        "annotation.accounts.validation.CheckedFormParser",
        "annotation.accounts.validation.CheckedMultiPartParser",
    ],
    # JSON only: the human view of the API is the Swagger UI at /api/docs/ (the browsable API's forms
    # need a queryset on every view, and answered 500 where there is none). A client asking only for
    # text/html gets JSON too (see JsonOnlyNegotiation), never a 406 or a 500.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "annotation.accounts.validation.JsonOnlyNegotiation",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "annotation.accounts.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"auth": os.environ.get("API_AUTH_THROTTLE", "20/min")},
    # How many reverse proxies stand in front: the client address for throttling is taken that far
    # from the right of X-Forwarded-For. 0 (direct) ignores the header, so a client cannot pick its own.
    "NUM_PROXIES": envint("NUM_PROXIES", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MI Platform API",
    "DESCRIPTION": "Machine API of MI Platform: studies, imports, generation runs, MITI coding, evaluation.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Security (production values when DEBUG is off) --------------------------------------------
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
# docker-compose's health check asks over plain HTTP from inside the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if envbool("BEHIND_TLS_PROXY", False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy and Permissions-Policy: annotation/accounts/middleware.py (SecurityHeadersMiddleware).

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {"jieba": {"level": "WARNING"}},
}
