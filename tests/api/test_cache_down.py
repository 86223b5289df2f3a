"""With the shared cache (Redis) down, the tracker fails soft: partners' calls, staff
logins and the dashboard answer as usual, and /readyz says the cache is unavailable."""
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

DOWN = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}


@pytest.fixture
def cache_down(settings):
    settings.CACHES = DOWN
    return settings


def test_api_calls_and_writes_answer_without_the_cache(cache_down, ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    assert api.get("/api/v1/negotiations/").status_code == 200
    assert api.get(f"/api/v1/negotiations/{public_negotiation.pk}/").status_code == 200
    response = api.post(f"/api/v1/negotiations/{public_negotiation.pk}/status-changes/", {"to_status": "in_talks"}, format="json")
    assert response.status_code == 201


def test_staff_log_in_and_read_the_dashboard_without_the_cache(cache_down, staff_user):
    browser = Client()
    response = browser.post("/admin/login/", {"username": "staffer", "password": "pw-staff-123", "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert browser.get("/admin/").status_code == 200
    wrong = Client().post("/admin/login/", {"username": "staffer", "password": "wrong"})
    assert wrong.status_code == 200  # the form again, not a 500


def test_readyz_reports_each_dependency(cache_down):
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok" and body["cache"] == "unavailable" and body["status"] == "degraded"
    assert Client().get("/healthz").json() == {"status": "ok"}


def test_readyz_is_ok_when_everything_answers(db):
    body = Client().get("/readyz").json()
    assert body["database"] == "ok" and body["cache"] == "ok" and body["broker"] in ("ok", "unavailable")
