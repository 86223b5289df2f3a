"""Lists never skip a row when ordering values tie: the cursor holds the whole position
(every ordering field and the id), not a count of ties (#14: the stall scan stamps many
negotiations with the same `updated_at`)."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchanges.models import Negotiation
from tests.factories import NegotiationFactory

pytestmark = pytest.mark.django_db


def walk(api, url, params, *, between=None):
    """Follow `next` from the first page; `between(page_number)` runs after each page."""
    seen, response, number = [], api.get(url, params), 1
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [row["id"] for row in body["results"]]
        if between:
            between(number, seen)
        if not body["next"]:
            return seen
        response, number = api.get(body["next"]), number + 1


@pytest.mark.parametrize("who", ["client", "staff"])  # the fast read path and the DRF view
def test_a_row_updated_between_pages_of_tied_rows_is_not_lost(who, make_api, staff_api, ukraine):
    negotiations = [NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side")]) for _ in range(7)]
    tie = timezone.now() - timedelta(hours=1)
    Negotiation.objects.update(updated_at=tie)  # as a scan stamps them
    api = make_api(ukraine) if who == "client" else staff_api
    since = (tie - timedelta(minutes=1)).isoformat()
    patched = []

    def patch_one_already_seen(number, seen):
        if number == 1:  # it moves to the end: a count of ties would now skip an unseen one
            target = next(n for n in negotiations if str(n.pk) == seen[0])
            assert api.patch(f"/api/v1/negotiations/{target.pk}/", {"next_step": "moved"}, format="json").status_code == 200
            patched.append(str(target.pk))

    seen = walk(api, "/api/v1/negotiations/", {"ordering": "updated_at", "updated_since": since, "page_size": 2}, between=patch_one_already_seen)
    assert set(seen) == {str(n.pk) for n in negotiations}
    assert seen[-1] == patched[0] and len(seen) == 8  # seen again at its new place, last


def test_previous_pages_walk_back_over_ties(make_api, ukraine):
    for _ in range(5):
        NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side")])
    Negotiation.objects.update(created_at=timezone.now() - timedelta(days=1))
    api = make_api(ukraine)
    first = api.get("/api/v1/negotiations/", {"page_size": 2}).json()
    second = api.get(first["next"]).json()
    back = api.get(second["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]
    everything = walk(api, "/api/v1/negotiations/", {"page_size": 2})
    assert len(everything) == len(set(everything)) == 5


@pytest.mark.parametrize("cursor", ["cD1ub3Rqc29u", "x", "cD1bMV0", "cD0lNUIlMjJub3QtYS1kYXRlJTIyJTJDJTIyeCUyMiU1RA"])
def test_a_tampered_cursor_is_a_400(make_api, ukraine, cursor):
    api = make_api(ukraine)
    response = api.get("/api/v1/negotiations/", {"cursor": cursor})
    assert response.status_code == 400 and "cursor" in response.json()


def _cursor(position, reverse=False):
    import base64
    from urllib.parse import urlencode

    query = {"p": position, **({"r": "1"} if reverse else {})}
    return base64.b64encode(urlencode(query).encode()).decode()


@pytest.mark.parametrize("position", ["[null, null]", "[[1], 2]", '["2026-01-01T00:00:00Z"]', "[1.5, 2]", "[true, 1]"])
@pytest.mark.parametrize("url", ["/api/v1/negotiations/", "/api/v1/parties/", "/api/v1/detainee-groups/", "/api/v1/flags/"])
def test_a_cursor_holding_what_no_page_writes_is_a_400_on_every_list(make_api, staff_api, ukraine, url, position):
    """Found in review: a null in a cursor's position was a 500 (fast path and view)."""
    for api in (make_api(ukraine), staff_api):
        response = api.get(url, {"cursor": _cursor(position)})
        assert response.status_code == 400 and "cursor" in response.json(), (url, position, response.content[:200])


def test_a_doubled_minus_in_ordering_is_a_400(make_api, staff_api, ukraine):
    for api in (make_api(ukraine), staff_api):
        response = api.get("/api/v1/negotiations/", {"ordering": "--created_at"})
        assert response.status_code == 400 and "ordering" in response.json()


@pytest.mark.parametrize(
    "url,position",
    [
        ("/api/v1/parties/", '["a\\u0000b", "00000000-0000-0000-0000-000000000000"]'),
        ("/api/v1/parties/", '["\\ud800", "00000000-0000-0000-0000-000000000000"]'),
        ("/api/v1/flags/", '["0001-01-01T00:00:00+14:00", "00000000-0000-0000-0000-000000000000"]'),
        ("/api/v1/detainee-groups/", '["2020-01-01T00:00:00", "00000000-0000-0000-0000-000000000000"]'),
        ("/api/v1/negotiations/", '["9999-12-31T23:59:59-10:00", "00000000-0000-0000-0000-000000000000"]'),
    ],
)
def test_a_cursor_whose_values_no_database_takes_is_a_400_not_a_500(make_api, staff_api, ukraine, url, position):
    """Found by a partner-style probe: a NUL in a text, a timestamp that leaves the calendar
    once in UTC, or one without its offset reached the query and failed there (500)."""
    for api in (make_api(ukraine), staff_api):
        response = api.get(url, {"cursor": _cursor(position)})
        assert response.status_code == 400 and "cursor" in response.json(), (url, position, response.content[:200])


@pytest.mark.parametrize("url", ["/api/v1/negotiations/", "/api/v1/detainee-groups/", "/api/v1/flags/", "/api/v1/webhooks/"])
def test_a_cursor_timestamp_with_any_offset_reads_as_the_same_instant(make_api, ukraine, url):
    """PostgreSQL refuses an offset past 15:59 (`+16:00`), Python does not: the cursor's
    instant is read in UTC, so the page is answered, from where that instant falls."""
    api = make_api(ukraine)
    NegotiationFactory(visibility="all_partners")
    response = api.get(url, {"cursor": _cursor('["2999-01-01T00:00:00+16:00", "00000000-0000-0000-0000-000000000000"]')})
    assert response.status_code == 200, response.content[:200]
    everything = api.get(url).json()["results"]
    assert response.json()["results"] == everything
