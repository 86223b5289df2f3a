"""Many clients writing one negotiation at once, on PostgreSQL with real threads: the status
history stays one chain with nothing lost, and racing If-Match PATCHes lose nothing."""
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from exchanges import services
from exchanges.models import StatusChange
from tests.factories import NegotiationFactory
from tests.services import require_postgres

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

THREADS = 8
ROUNDS = 6
#: Each writer tries to move the negotiation on from wherever it is, round and round.
NEXT = {"proposed": "in_talks", "in_talks": "suspended", "suspended": "in_talks"}


def run_threads(target):
    errors = []

    def guarded(index):
        try:
            target(index)
        except Exception as exc:  # noqa: BLE001 - collected and asserted
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=guarded, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []


def client_for(party):
    _client, token = services.api_client_create(name=f"writer {party.pk}", party=party)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_concurrent_status_changes_leave_one_consistent_chain(ukraine):
    require_postgres()
    negotiation = NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side")])
    url = f"/api/v1/negotiations/{negotiation.pk}/status-changes/"
    accepted = []
    barrier = threading.Barrier(THREADS)

    def writer(index):
        api = client_for(ukraine)
        barrier.wait()
        for _ in range(ROUNDS):
            current = api.get(f"/api/v1/negotiations/{negotiation.pk}/").json()["status"]
            response = api.post(url, {"to_status": NEXT[current], "note": f"writer {index}"}, format="json")
            assert response.status_code in (201, 409), response.content
            if response.status_code == 201:
                accepted.append(response.json()["id"])

    run_threads(writer)
    chain = list(StatusChange.objects.filter(negotiation=negotiation).order_by("sequence"))
    assert len(chain) == len(accepted) >= 2
    assert {str(change.pk) for change in chain} == set(accepted)
    assert [change.sequence for change in chain] == list(range(1, len(chain) + 1))
    assert chain[0].from_status == "proposed"
    for previous, change in zip(chain, chain[1:]):
        assert change.from_status == previous.to_status
        assert change.occurred_at >= previous.occurred_at
    negotiation.refresh_from_db()
    assert negotiation.status == chain[-1].to_status


def test_racing_patches_with_if_match_lose_nothing(ukraine):
    require_postgres()
    negotiation = NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side")], summary="")
    url = f"/api/v1/negotiations/{negotiation.pk}/"
    stale_refusals = []
    barrier = threading.Barrier(THREADS)

    def editor(index):
        api = client_for(ukraine)
        barrier.wait()
        while True:
            current = api.get(url)
            summary = current.json()["summary"]
            response = api.patch(url, {"summary": f"{summary}[{index}]"}, format="json", HTTP_IF_MATCH=current["ETag"])
            if response.status_code == 200:
                return
            assert response.status_code == 412, response.content
            stale_refusals.append(index)

    run_threads(editor)
    negotiation.refresh_from_db()
    markers = sorted(int(part) for part in negotiation.summary.strip("[]").split("]["))
    assert markers == list(range(THREADS))
    assert stale_refusals, "the editors never collided; the race was not exercised"
