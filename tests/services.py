"""For tests that need the real PostgreSQL and Redis: skip with a reason where they are
absent, but fail in CI (TRACKER_REQUIRE_SERVICES=true), where they must be there."""
import os

import pytest
from django.conf import settings
from django.db import connection


def require_postgres():
    if connection.vendor != "postgresql":
        _missing("PostgreSQL (set DATABASE_URL=postgres://...)")


def require_redis():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        _missing("Redis (set CELERY_BROKER_URL=redis://...)")


def _missing(what):
    if os.environ.get("TRACKER_REQUIRE_SERVICES") == "true":
        pytest.fail(f"CI must run this test against {what}.")
    pytest.skip(f"needs {what}")
