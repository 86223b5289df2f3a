"""Who gets in: bearer tokens of API clients, stored only as hashes; staff logins."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from exchanges import services
from exchanges.models import ApiClient

pytestmark = pytest.mark.django_db


def test_no_token_gets_401_with_a_bearer_challenge(ukraine):
    response = APIClient().get("/api/v1/negotiations/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer", "Bearer a b", "Token abc", "Bearer \u00e9t\u00e9"])
def test_a_bad_token_or_header_gets_401(ukraine, header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header.encode("utf-8").decode("latin-1"))
    assert api.get("/api/v1/negotiations/").status_code == 401


@pytest.mark.parametrize("header", ["Token abc", "Basic dXNlcjpwYXNz"])
def test_another_scheme_is_told_to_send_a_bearer_token(ukraine, header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/api/v1/negotiations/")
    assert response.status_code == 401 and "Bearer <token>" in response.json()["detail"]


def test_revoked_and_expired_tokens_get_401(ukraine, make_api):
    revoked = make_api(ukraine)
    services.api_client_revoke(client=revoked.api_client)
    assert revoked.get("/api/v1/parties/").status_code == 401
    expired = make_api(ukraine)
    ApiClient.objects.filter(pk=expired.api_client.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expired.get("/api/v1/parties/").status_code == 401


def test_the_token_is_not_stored_anywhere_in_the_clients_row(ukraine, make_api):
    api = make_api(ukraine)
    row = ApiClient.objects.filter(pk=api.api_client.pk).values().get()
    assert all(api.token not in str(value) for value in row.values())
    assert row["token_hash"] == services.hash_token(api.token)


def test_read_only_clients_get_403_on_every_write(ukraine, make_api, public_negotiation):
    api = make_api(ukraine, read_only=True)
    assert api.get("/api/v1/negotiations/").status_code == 200
    writes = [
        ("post", "/api/v1/parties/", {"name": "X", "kind": "state"}),
        ("patch", f"/api/v1/negotiations/{public_negotiation.pk}/", {"title": "Y"}),
        ("post", "/api/v1/negotiations/", {"title": "Z"}),
        ("post", f"/api/v1/negotiations/{public_negotiation.pk}/status-changes/", {"to_status": "in_talks"}),
        ("post", f"/api/v1/negotiations/{public_negotiation.pk}/events/", {"kind": "meeting", "occurred_at": "2022-05-10T10:00:00Z", "summary": "x"}),
    ]
    for method, url, body in writes:
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code == 403, (url, response.content)
    public_negotiation.refresh_from_db()
    assert public_negotiation.title == "All-for-all" and public_negotiation.status == "proposed"


def test_last_used_is_recorded(ukraine, make_api):
    api = make_api(ukraine)
    api.get("/api/v1/parties/")
    assert ApiClient.objects.get(pk=api.api_client.pk).last_used_at is not None


def test_a_logged_in_user_who_is_not_staff_is_refused(django_user_model, public_negotiation):
    user = django_user_model.objects.create_user(username="visitor", password="x")
    api = APIClient()
    api.force_login(user)
    assert api.get("/api/v1/negotiations/").status_code == 403


def test_create_api_client_prints_a_working_token_on_its_last_line(ukraine, capsys):
    call_command("create_api_client", "--party", "Government of Ukraine")
    call_command("create_api_client", "--party", "ua", "--read-only")
    lines = capsys.readouterr().out.strip().splitlines()
    read_only_token = lines[-1]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {read_only_token}")
    assert api.get("/api/v1/parties/").status_code == 200
    assert api.post("/api/v1/parties/", {"name": "X", "kind": "state"}, format="json").status_code == 403
    assert ApiClient.objects.filter(party=ukraine).count() == 2


def test_create_api_client_names_the_problem_for_an_unknown_party(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No party"):
        call_command("create_api_client", "--party", "Atlantis")


def test_schema_docs_and_health_answer_without_authentication(db):
    api = APIClient()
    assert api.get("/api/v1/schema/").status_code == 200
    assert api.get("/api/v1/docs/").status_code == 200
    response = api.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
