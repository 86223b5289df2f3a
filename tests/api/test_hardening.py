"""Throttling, admin login guessing, production settings."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_a_client_over_its_rate_gets_429_with_retry_after(ukraine, make_api, settings):
    from exchanges.api.throttling import PrincipalRateThrottle

    PrincipalRateThrottle.THROTTLE_RATES = {"api_client": "3/min"}
    try:
        api, other = make_api(ukraine), make_api(ukraine)
        codes = [api.get("/api/v1/parties/").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = api.get("/api/v1/parties/")
        assert int(limited["Retry-After"]) > 0
        assert other.get("/api/v1/parties/").status_code == 200
    finally:
        PrincipalRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]


def test_the_rate_is_a_sliding_window_estimated_from_two_counters(ukraine, make_api, settings, monkeypatch):
    """3 a minute: the fourth request in a window waits for the window's end; early in the
    next window the previous one still counts in proportion to its overlap."""
    from django.core.cache import cache

    from exchanges.api.throttling import PrincipalRateThrottle

    cache.clear()
    clock = [150.0]  # 30 s into the window [120, 180)
    monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"api_client": "3/min"})
    monkeypatch.setattr(PrincipalRateThrottle, "timer", lambda self: clock[0])
    api = make_api(ukraine)
    assert [api.get("/api/v1/parties/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert api.get("/api/v1/parties/")["Retry-After"] == "30"  # refused requests are not counted
    clock[0] = 185.0  # the previous window's 3 still weigh 55/60: 2.75
    assert [api.get("/api/v1/parties/").status_code for _ in range(2)] == [200, 429]
    assert api.get("/api/v1/parties/")["Retry-After"] == "15"  # at 200 s: 1 + 3 x 40/60 < 3
    clock[0] = 200.5
    assert api.get("/api/v1/parties/").status_code == 200


def test_the_admin_login_locks_a_username_after_repeated_failures(client, staff_user, django_user_model):
    login = reverse("admin:login")
    for _ in range(5):
        assert client.post(login, {"username": "staffer", "password": "wrong"}).status_code == 200
    refused = client.post(login, {"username": "staffer", "password": "pw-staff-123"})
    assert refused.status_code == 200 and "_auth_user_id" not in client.session
    django_user_model.objects.create_user(username="colleague", password="pw-colleague-1", is_staff=True)
    assert client.post(login, {"username": "colleague", "password": "pw-colleague-1"}).status_code == 302


def _manage(*args, **env):
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env}
    environment.pop("DJANGO_SECRET_KEY", None) if "DJANGO_SECRET_KEY" not in env else None
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def test_production_settings_pass_the_deployment_check():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_SECRET_KEY=secrets.token_urlsafe(60), DJANGO_ALLOWED_HOSTS="tracker.example.org")
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize("key", [None, "django-insecure-" + "x" * 60, "short"])
def test_production_refuses_to_start_without_a_real_secret_key(key):
    env = {} if key is None else {"DJANGO_SECRET_KEY": key}
    result = _manage("check", **env)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_the_rate_limit_counts_in_redis_when_the_cache_is_redis(ukraine, make_api, settings, monkeypatch):
    """Production's cache (CACHE_URL=redis://): counters shared by every worker, INCR'd."""
    from django.core.cache import caches

    from exchanges.api.throttling import PrincipalRateThrottle
    from tests.services import require_redis

    require_redis()
    location = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/14"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location}}
    monkeypatch.setattr(PrincipalRateThrottle, "cache", caches["default"])
    monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"api_client": "3/min"})
    caches["default"].clear()
    api = make_api(ukraine)
    assert [api.get("/api/v1/parties/").status_code for _ in range(4)] == [200, 200, 200, 429]
    import redis

    keys = redis.Redis.from_url(location).keys("*throttle_api_client_client*")
    assert len(keys) == 1 and int(redis.Redis.from_url(location).get(keys[0])) == 3
    assert 0 < redis.Redis.from_url(location).ttl(keys[0]) <= 121
    caches["default"].clear()


@pytest.mark.parametrize("value", ["abc", "-1", "5.5"])
def test_a_bad_prepare_threshold_is_refused_by_name(value):
    result = _manage(
        "check", DJANGO_SECRET_KEY=secrets.token_urlsafe(60), DATABASE_URL="postgres://u@127.0.0.1:5432/x",
        DATABASE_PREPARE_THRESHOLD=value,
    )
    assert result.returncode != 0 and "DATABASE_PREPARE_THRESHOLD must be a whole number or 'off'" in result.stderr


def test_a_stranger_guessing_a_password_locks_out_only_themselves(staff_user, settings):
    from django.test import Client

    settings.TRACKER_TRUSTED_PROXIES = 1
    login = reverse("admin:login")
    stranger = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    for _ in range(6):
        stranger.post(login, {"username": "staffer", "password": "wrong"})
    assert stranger.post(login, {"username": "staffer", "password": "pw-staff-123"}).status_code == 200  # locked
    # The staff member, behind the same proxy but from their own address, still logs in;
    # a forged X-Forwarded-For entry further left does not let the stranger pass for them.
    colleague = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.20")
    assert colleague.post(login, {"username": "staffer", "password": "pw-staff-123"}).status_code == 302
    forged = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.20, 198.51.100.7")
    assert forged.post(login, {"username": "staffer", "password": "pw-staff-123"}).status_code == 200
