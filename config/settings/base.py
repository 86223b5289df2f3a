"""Base settings, read from environment variables with safe local defaults.

With no environment at all this runs on SQLite and a Celery broker on the local
filesystem, so `make run` works on a bare machine. `DATABASE_URL` and
`CELERY_BROKER_URL` switch to PostgreSQL and Redis. Every variable is documented
in `.env.example`.
"""
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("TRACKER_VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name, default):
    value = os.environ.get(name)
    if value in (None, ""):
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "django-insecure-local-development-only"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    # Two-factor login for staff (exchanges/two_factor): TOTP apps and backup codes.
    "django_otp",
    "exchanges.apps.AuthenticatorAppsConfig",  # django_otp.plugins.otp_totp, labelled
    "exchanges.apps.BackupCodesConfig",  # django_otp.plugins.otp_static, labelled
    "exchanges",
    "tracker",
    # The admin, with the tracker's dashboard as its home page; listed after the project's
    # apps so that their templates (base_site.html: the language switcher) override its own.
    "tracker.apps.TrackerAdminConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Pages and JSON compressed for clients that accept it (a case file: ~100 KB of HTML,
    # ~13 KB on the wire); WhiteNoise's files already compressed pass through untouched.
    "django.middleware.gzip.GZipMiddleware",
    # Static files (the admin's CSS and scripts) from the app server itself: no separate
    # web server is needed in front of gunicorn, compressed and cached far ahead.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "exchanges.api.middleware.RequestContextMiddleware",
    "exchanges.api.middleware.BodySizeLimitMiddleware",
    # An API client's plain GETs of negotiations answered without DRF (exchanges/api/fast_reads.py).
    "exchanges.api.fast_reads.FastReadMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the switcher's choice (cookie), else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Whether this session entered a two-factor code; staff sessions owing one get 403 on the API.
    "django_otp.middleware.OTPMiddleware",
    "exchanges.two_factor.middleware.TwoFactorApiMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# Database: SQLite by default; DATABASE_URL (postgres://...) in production and CI.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with a health check that needs no round trip (config/db/base.py).
        DATABASES["default"]["ENGINE"] = "config.db"
        # Statements run through its prepared_cursor() (the API's hottest reads) are
        # prepared after this many runs on a connection; the ORM binds on the client and is
        # never prepared. "off" behind a pooler that cannot keep prepared statements.
        threshold = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5").strip().lower()
        if threshold != "off" and not threshold.isdigit():
            raise ImproperlyConfigured(f"DATABASE_PREPARE_THRESHOLD must be a whole number or 'off', not {threshold!r}.")
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None if threshold == "off" else int(threshold)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # The web server, worker and beat share one file: wait for locks and take
            # the write lock at BEGIN so concurrent writers queue instead of failing.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = ["exchanges.login_guard.GuardedModelBackend"]
# Reverse proxies in front of the app that append to X-Forwarded-For (0: none; 1: one
# nginx): the client's address for login protection and the access log.
TRACKER_TRUSTED_PROXIES = env_int("TRACKER_TRUSTED_PROXIES", 0)
TRACKER_LOGIN_MAX_FAILURES = env_int("TRACKER_LOGIN_MAX_FAILURES", 5)
TRACKER_LOGIN_LOCKOUT_SECONDS = env_int("TRACKER_LOGIN_LOCKOUT_SECONDS", 900)
# Two-factor login (exchanges/two_factor): staff with a device enter a code after the
# password, and these roles (plus "superuser", if listed) must enrol one. false: off
# altogether (the local demo of `make run`).
TRACKER_REQUIRE_2FA = env_bool("TRACKER_REQUIRE_2FA", True)
TRACKER_REQUIRE_2FA_ROLES = env_list("TRACKER_REQUIRE_2FA_ROLES", ["coordinator", "auditor"])
OTP_TOTP_ISSUER = "Exchange tracker"  # what authenticator apps show beside the username
# django-otp's own admin pages never show a key, a QR code or backup codes (they are
# replaced by exchanges/admin/two_factor.py anyway; this holds should they come back).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# A cache shared by every process (rate limits, login failures): Redis in production.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            # A cache that stops answering (a hung host, a network dropping packets) costs a
            # call this long, then the request goes on without it (exchanges/soft_cache.py).
            # Without a timeout every request waited for it: the whole site stood still for
            # as long as it was frozen (`make drills`, BENCHMARKS.md).
            "OPTIONS": {"socket_timeout": 0.25, "socket_connect_timeout": 0.25},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The admin and the API's error messages speak these; `locale/` holds the translations.
LANGUAGES = [("en", "English"), ("uk", "Українська"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# One unambiguous date format in every language (year-month-day, 24-hour times).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "staticfiles"))  # the image: /app/staticfiles
# Locally, WhiteNoise serves straight from the apps; production serves what
# `collectstatic` gathered into STATIC_ROOT (done when the image is built).
WHITENOISE_USE_FINDERS = True
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing one
except OSError:
    pass

# Request bodies: partner payloads are small; refuse anything larger (413).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("TRACKER_MAX_BODY_BYTES", 1024 * 1024)
# Files uploaded in the admin (the figures CSV import, itself capped at 2 MiB of CSV).
TRACKER_MAX_UPLOAD_BYTES = env_int("TRACKER_MAX_UPLOAD_BYTES", 4 * 1024 * 1024)
# Answer an API client's plain GETs of the negotiations list and detail without DRF
# (the same answers, pinned by tests/api/test_fast_reads.py); false sends them to the views.
TRACKER_FAST_READS = env_bool("TRACKER_FAST_READS", True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "exchanges.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["exchanges.api.permissions.PolicyPermission"],
    "DEFAULT_PAGINATION_CLASS": "exchanges.api.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": ["exchanges.api.parsers.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "exchanges.api.renderers.FastJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "exchanges.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["exchanges.api.throttling.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_client": os.environ.get("TRACKER_API_RATE", "1200/min")},
    "UNAUTHENTICATED_USER": None,
    "PAGE_SIZE": 50,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Exchange tracker API",
    "DESCRIPTION": (
        "Prisoner-exchange negotiations, detainee groups, reported figures, status "
        "history, timelines and stall flags. Authenticate with `Authorization: Bearer <token>`. "
        "Every operation lists the errors it can answer with their bodies; `webhooks` lists what "
        "the tracker sends to subscriptions."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    # Each vocabulary is one named enum (and so one class in a generated client).
    "ENUM_NAME_OVERRIDES": {
        "NegotiationStatusEnum": "exchanges.choices.NegotiationStatus",
        "FigureMetricEnum": "exchanges.choices.FigureMetric",
        "PartyKindEnum": "exchanges.choices.PartyKind",
        "GroupCategoryEnum": "exchanges.choices.GroupCategory",
        "ReliabilityEnum": "exchanges.choices.Reliability",
        "PriorityEnum": "exchanges.choices.Priority",
        "VisibilityEnum": "exchanges.choices.Visibility",
        "ParticipantRoleEnum": "exchanges.choices.ParticipantRole",
        "EventKindEnum": "exchanges.choices.EventKind",
        "HandoverStateEnum": "exchanges.choices.HandoverState",
        "ChangeActionEnum": "exchanges.models.Change.Action",
        "ChangeTypeEnum": "exchanges.api.changes.CHANGE_TYPES",
        "WebhookEventEnum": "tracker.choices.WebhookEvent",
        "WebhookDeliveryStatusEnum": "tracker.choices.DeliveryStatus",
        "FlagKindEnum": "tracker.choices.FlagKind",
        "FlagLevelEnum": "tracker.choices.FlagLevel",
        "ResolutionEnum": "tracker.choices.Resolution",
        "ActorTypeEnum": [("staff", "staff"), ("api_client", "api_client")],
        "StallChangeEnum": [("raised", "raised"), ("escalated", "escalated")],
        "HandoverChangeEnum": [("created", "created"), ("updated", "updated")],
    },
    # Errors, protocol headers and enums in parameters (exchanges/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "exchanges.api.schema.postprocess",
    ],
    # The project's mixins and base views document code, not resources.
    "GET_LIB_DOC_EXCLUDES": "exchanges.api.schema.lib_doc_excludes",
    # What the tracker sends to webhook subscriptions (OpenAPI 3.1 `webhooks`).
    "WEBHOOKS": [
        "tracker.api.webhooks.STATUS_CHANGED",
        "tracker.api.webhooks.STALLED",
        "tracker.api.webhooks.UNSTALLED",
        "tracker.api.webhooks.HANDOVER_RECORDED",
    ],
}

# Celery: a broker that needs no server by default; Redis through CELERY_BROKER_URL.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery-broker"
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Broadcast exchanges (worker control); kombu's default is ./control in the repo root.
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # Redis hands an unacknowledged task (its worker was killed) to another worker after
    # this many seconds (kombu's default is an hour). It must exceed the longest task (a
    # full scan at 1M negotiations: about 35 s; a webhook run: TRACKER_WEBHOOK_RUN_SECONDS)
    # plus the longest countdown (60 s: longer retries wait for the dispatcher's tick).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 300)}
CELERY_TASK_IGNORE_RESULT = True
# Every task is acknowledged only once done: a killed worker's tasks run again (the
# webhook outbox and the scan are safe to run twice).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A task still running when the broker connection drops could no longer be acknowledged
# and would run twice: stop it (its webhook attempt is logged as interrupted) and let it
# be redelivered.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
TRACKER_SCAN_INTERVAL_SECONDS = env_int("TRACKER_SCAN_INTERVAL_SECONDS", 900)
TRACKER_DISPATCH_INTERVAL_SECONDS = env_int("TRACKER_DISPATCH_INTERVAL_SECONDS", 30)
# Scans between are incremental (what crossed a threshold or was written since the last);
# a full scan runs at least this often as a safety net (default daily).
TRACKER_FULL_SCAN_SECONDS = env_int("TRACKER_FULL_SCAN_SECONDS", 86400)
CELERY_BEAT_SCHEDULE = {
    "scan-stalls": {"task": "tracker.scan_stalls", "schedule": float(TRACKER_SCAN_INTERVAL_SECONDS)},
    # Retries of webhooks and emails, and anything written while the broker was down.
    "dispatch-notifications": {
        "task": "tracker.dispatch_notifications",
        "schedule": float(TRACKER_DISPATCH_INTERVAL_SECONDS),
    },
    # The audit trail's hash chain (exchanges/chain.py): what the small seal after each
    # commit left, such as a stall scan's thousands of entries.
    "seal-audit-trail": {"task": "exchanges.seal_trail", "schedule": 60.0},
    # CSV exports (exchanges/exports.py): interrupted ones marked, old files deleted.
    "tend-exports": {"task": "exchanges.tend_exports", "schedule": 300.0},
}

# The stall tracker's notifications.
TRACKER_WEBHOOK_ALLOW_PRIVATE = env_bool("TRACKER_WEBHOOK_ALLOW_PRIVATE", False)
TRACKER_WEBHOOK_TIMEOUT_SECONDS = env_int("TRACKER_WEBHOOK_TIMEOUT_SECONDS", 5)
# Webhook URLs must be https (a 400 otherwise), unless DEBUG or private addresses are
# allowed (both only for tests and local runs, whose receivers are plain http on loopback).
TRACKER_WEBHOOK_REQUIRE_HTTPS = env_bool("TRACKER_WEBHOOK_REQUIRE_HTTPS", not DEBUG and not TRACKER_WEBHOOK_ALLOW_PRIVATE)
# Each subscription is sent to on its own (tracker/delivery.py): at most this many requests
# to it at once (one while its receiver is failing), by tasks that run at most
# TRACKER_WEBHOOK_RUN_SECONDS before letting other subscriptions' tasks have the worker.
TRACKER_WEBHOOK_CONCURRENCY = env_int("TRACKER_WEBHOOK_CONCURRENCY", 2)
TRACKER_WEBHOOK_RUN_SECONDS = env_int("TRACKER_WEBHOOK_RUN_SECONDS", 10)
# The circuit breaker: after this many failed attempts in a row, a subscription is paused
# for TRACKER_WEBHOOK_BREAKER_SECONDS, then one delivery is tried; success resumes it.
TRACKER_WEBHOOK_BREAKER_FAILURES = env_int("TRACKER_WEBHOOK_BREAKER_FAILURES", 5)
TRACKER_WEBHOOK_BREAKER_SECONDS = env_int("TRACKER_WEBHOOK_BREAKER_SECONDS", 60)
# Fernet keys for secrets kept at rest (webhook signing secrets), comma-separated: the
# first encrypts, all decrypt (exchanges/encryption.py). Unset: derived from SECRET_KEY.
TRACKER_ENCRYPTION_KEYS = os.environ.get("TRACKER_ENCRYPTION_KEYS", "")
# Webhook subscriptions one API client may hold (a 400 past it).
TRACKER_MAX_SUBSCRIPTIONS_PER_CLIENT = env_int("TRACKER_MAX_SUBSCRIPTIONS_PER_CLIENT", 20)
# Seconds to wait before each retry of a failed delivery: about four and a half days in all.
TRACKER_WEBHOOK_RETRY_SCHEDULE = [
    int(seconds) for seconds in env_list(
        "TRACKER_WEBHOOK_RETRY_SCHEDULE", ["5", "60", "300", "1800", "7200", "18000", "36000", "43200", "86400", "86400", "86400"]
    )
]
TRACKER_KICK_ON_COMMIT = env_bool("TRACKER_KICK_ON_COMMIT", True)
# Links in notification emails point here.
TRACKER_SITE_URL = os.environ.get("TRACKER_SITE_URL", "http://127.0.0.1:8000")

EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "tracker@localhost")
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
