"""ETags and If-Match: a stale write gets 412 and changes nothing."""
import pytest

pytestmark = pytest.mark.django_db


def test_detail_responses_carry_an_etag_that_changes_with_the_object(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    url = f"/api/v1/negotiations/{public_negotiation.pk}/"
    first = api.get(url)["ETag"]
    assert first.startswith('"')
    assert api.get(url, HTTP_IF_NONE_MATCH=first).status_code == 304
    changed = api.patch(url, {"summary": "new"}, format="json", HTTP_IF_MATCH=first)
    assert changed.status_code == 200 and changed["ETag"] != first
    assert api.get(url)["ETag"] == changed["ETag"]


def test_a_stale_if_match_gets_412_and_changes_nothing(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    url = f"/api/v1/negotiations/{public_negotiation.pk}/"
    stale = api.get(url)["ETag"]
    api.patch(url, {"summary": "someone else's edit"}, format="json")
    for method in ("patch", "put"):
        response = getattr(api, method)(url, {"title": "mine"}, format="json", HTTP_IF_MATCH=stale)
        assert response.status_code == 412 and "detail" in response.json()
    public_negotiation.refresh_from_db()
    assert public_negotiation.title == "All-for-all" and public_negotiation.summary == "someone else's edit"
    assert api.patch(url, {"title": "mine"}, format="json", HTTP_IF_MATCH="*").status_code == 200


def test_a_status_change_changes_the_negotiations_etag(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    url = f"/api/v1/negotiations/{public_negotiation.pk}/"
    before = api.get(url)["ETag"]
    api.post(url + "status-changes/", {"to_status": "in_talks"}, format="json")
    assert api.patch(url, {"title": "x"}, format="json", HTTP_IF_MATCH=before).status_code == 412


def test_stale_delete_gets_412(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    url = f"/api/v1/negotiations/{public_negotiation.pk}/events/"
    event = api.post(url, {"kind": "meeting", "occurred_at": "2022-05-10T10:00:00Z", "summary": "a"}, format="json")
    etag = event["ETag"]
    api.patch(f"{url}{event.json()['id']}/", {"summary": "b"}, format="json")
    assert api.delete(f"{url}{event.json()['id']}/", HTTP_IF_MATCH=etag).status_code == 412
    assert public_negotiation.events.count() == 1
