import os

import pytest
from rest_framework.test import APIClient

from exchanges import services

from .factories import DetaineeGroupFactory, NegotiationFactory, PartyFactory


def pytest_report_header(config):
    from django.conf import settings

    return (
        f"database: {settings.DATABASES['default']['ENGINE']}, "
        f"broker: {settings.CELERY_BROKER_URL.split('://')[0]}"
    )


@pytest.fixture
def ukraine(db):
    return PartyFactory(name="Government of Ukraine", short_name="UA", country="UA")


@pytest.fixture
def russia(db):
    return PartyFactory(name="Russian Federation", short_name="RU", country="RU")


@pytest.fixture
def icrc(db):
    return PartyFactory(name="International Committee of the Red Cross", short_name="ICRC", kind="humanitarian")


@pytest.fixture
def outsider(db):
    """A party that takes part in nothing."""
    return PartyFactory(name="Outside Observer State", short_name="OUT")


@pytest.fixture
def garrison(ukraine, russia):
    return DetaineeGroupFactory(name="Azovstal garrison", held_by=russia, affiliated_with=ukraine, estimated_count=265, seriously_wounded_count=52)


@pytest.fixture
def make_api(db):
    """`make_api(party, read_only=False)` -> an APIClient authenticated as a new API client."""

    def make(party, *, read_only=False):
        client, token = services.api_client_create(name=f"{party.short_name} system", party=party, read_only=read_only)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        api.api_client = client
        api.token = token
        return api

    return make


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(username="staffer", password="pw-staff-123", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_api(staff_user):
    api = APIClient()
    api.force_login(staff_user)
    return api


@pytest.fixture
def confidential(ukraine, russia, icrc, garrison):
    """A participants-only negotiation between Ukraine and Russia, facilitated by the ICRC."""
    return NegotiationFactory(
        title="Wounded for wounded",
        visibility="participants",
        participants=[(ukraine, "side"), (russia, "side"), (icrc, "facilitator")],
        groups=[garrison],
    )


@pytest.fixture
def public_negotiation(ukraine, russia):
    return NegotiationFactory(title="All-for-all", visibility="all_partners", participants=[(ukraine, "side"), (russia, "side")])


@pytest.fixture
def staff_only(ukraine):
    return NegotiationFactory(title="Internal assessment", visibility="staff_only", participants=[(ukraine, "side")])


def services_required():
    return os.environ.get("TRACKER_REQUIRE_SERVICES") == "true"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit and login-failure counters do not leak from one test into another."""
    from django.core.cache import cache

    from exchanges import audit

    cache.clear()
    audit.recent_reads.seen.clear()
    yield
