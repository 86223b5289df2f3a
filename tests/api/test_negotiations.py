"""A partner records and reads negotiations; visibility holds everywhere."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchanges import services
from exchanges.models import Negotiation
from tests.factories import DetaineeGroupFactory, NegotiationFactory

pytestmark = pytest.mark.django_db

LIFECYCLE = [
    ("in_talks", "2022-05-09T12:00:00Z"),
    ("agreed_in_principle", "2022-05-16T21:00:00+03:00"),
    ("lists_exchanged", "2022-06-20T12:00:00Z"),
    ("agreed", "2022-06-27T12:00:00Z"),
    ("implementing", "2022-06-29T08:00:00Z"),
    ("completed", "2022-06-29T19:00:00Z"),
]


def test_a_partner_records_a_negotiation_from_proposal_to_completion_and_reads_back_the_same_history(
    ukraine, russia, icrc, garrison, make_api
):
    api = make_api(ukraine)
    created = api.post(
        "/api/v1/negotiations/",
        {
            "title": "Seriously wounded for seriously wounded",
            "priority": "urgent",
            "opened_on": "2022-05-06",
            "participants": [
                {"party": str(ukraine.pk), "role": "side"},
                {"party": str(russia.pk), "role": "side"},
                {"party": str(icrc.pk), "role": "facilitator"},
            ],
            "groups": [{"group": str(garrison.pk), "proposed_count": 52}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "proposed" and body["reference"] == "NEG-2022-0001"
    assert body["visibility"] == "participants" and body["last_activity_at"] == "2022-05-06T00:00:00Z"
    url = f"/api/v1/negotiations/{body['id']}/"

    event = api.post(url + "events/", {"kind": "proposal", "occurred_at": "2022-05-07T10:00:00Z", "summary": "Proposal via ICRC", "parties": [str(ukraine.pk)]}, format="json")
    assert event.status_code == 201, event.content
    for to_status, occurred_at in LIFECYCLE:
        response = api.post(url + "status-changes/", {"to_status": to_status, "occurred_at": occurred_at, "note": f"now {to_status}", "source": "Coordination HQ"}, format="json")
        assert response.status_code == 201, response.content

    history = api.get(url + "status-changes/").json()["results"]
    assert [(c["from_status"], c["to_status"]) for c in history] == list(
        zip(["proposed", *[s for s, _ in LIFECYCLE[:-1]]], [s for s, _ in LIFECYCLE])
    )
    assert history[1]["occurred_at"] == "2022-05-16T18:00:00Z"
    assert all(c["recorded_by"]["type"] == "api_client" for c in history)
    assert history[0]["note"] == "now in_talks" and history[0]["source"] == "Coordination HQ"
    detail = api.get(url).json()
    assert detail["status"] == "completed" and detail["allowed_status_changes"] == []
    assert detail["last_activity_at"] == "2022-06-29T19:00:00Z"
    assert detail["groups"] == [{"group": str(garrison.pk), "proposed_count": 52, "released_count": None}]
    timeline = api.get(url + "events/").json()["results"]
    assert [e["summary"] for e in timeline] == ["Proposal via ICRC"]
    refused = api.post(url + "status-changes/", {"to_status": "in_talks"}, format="json")
    assert refused.status_code == 409 and refused.json()["allowed"] == []


def test_an_illegal_change_answers_409_with_the_allowed_moves(ukraine, make_api, public_negotiation):
    response = make_api(ukraine).post(f"/api/v1/negotiations/{public_negotiation.pk}/status-changes/", {"to_status": "completed"}, format="json")
    assert response.status_code == 409
    assert response.json()["allowed"] == ["in_talks", "rejected", "collapsed"]
    assert "detail" in response.json()


def test_clients_of_other_parties_get_404_on_participants_negotiations(outsider, make_api, confidential):
    api = make_api(outsider)
    base = f"/api/v1/negotiations/{confidential.pk}/"
    for method, url, body in [
        ("get", base, None),
        ("patch", base, {"title": "hijacked"}),
        ("put", base, {"title": "hijacked"}),
        ("get", base + "status-changes/", None),
        ("post", base + "status-changes/", {"to_status": "in_talks"}),
        ("get", base + "events/", None),
        ("post", base + "events/", {"kind": "meeting", "occurred_at": "2022-05-10T10:00:00Z", "summary": "x"}),
    ]:
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    confidential.refresh_from_db()
    assert confidential.title == "Wounded for wounded" and confidential.status == "proposed"
    assert confidential.events.count() == 0
    listed = api.get("/api/v1/negotiations/", {"search": "Wounded"}).json()["results"]
    assert listed == []


def test_a_participant_sees_its_participants_negotiation(icrc, make_api, confidential):
    api = make_api(icrc)
    assert api.get(f"/api/v1/negotiations/{confidential.pk}/").status_code == 200
    assert [n["id"] for n in api.get("/api/v1/negotiations/").json()["results"]] == [str(confidential.pk)]


def test_staff_only_never_reaches_a_client_but_staff_see_it(ukraine, make_api, staff_api, staff_only):
    api = make_api(ukraine)
    assert api.get(f"/api/v1/negotiations/{staff_only.pk}/").status_code == 404
    assert api.get("/api/v1/negotiations/").json()["results"] == []
    assert staff_api.get(f"/api/v1/negotiations/{staff_only.pk}/").status_code == 200


def test_a_client_cannot_make_a_negotiation_staff_only(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    response = api.patch(f"/api/v1/negotiations/{public_negotiation.pk}/", {"visibility": "staff_only"}, format="json")
    assert response.status_code == 403 and "visibility" in response.json()["detail"]
    assert Negotiation.objects.get(pk=public_negotiation.pk).visibility == "all_partners"
    ours = [{"party": str(ukraine.pk), "role": "side"}]
    response = api.post("/api/v1/negotiations/", {"title": "x", "visibility": "staff_only", "participants": ours}, format="json")
    assert response.status_code == 400 and "visibility" in response.json()


def test_a_client_creates_a_negotiation_only_with_its_own_party_taking_part(ukraine, russia, outsider, make_api):
    api = make_api(ukraine)
    for participants in ([], [{"party": str(russia.pk), "role": "side"}], [{"party": str(ukraine.pk), "role": "observer"}]):
        refused = api.post("/api/v1/negotiations/", {"title": "Only a title", "participants": participants}, format="json")
        assert refused.status_code == 400 and "participants" in refused.json()
    assert not Negotiation.objects.exists()
    ours = [{"party": str(ukraine.pk), "role": "side"}]
    created = api.post("/api/v1/negotiations/", {"title": "Only a title", "participants": ours}, format="json").json()
    assert created["groups"] == [] and created["priority"] == "routine" and created["visibility"] == "participants"
    assert created["opened_on"] == timezone.localdate().isoformat()
    assert api.get(f"/api/v1/negotiations/{created['id']}/").status_code == 200
    assert make_api(outsider).get(f"/api/v1/negotiations/{created['id']}/").status_code == 404


def test_recording_a_negotiation_gives_no_access_once_the_party_no_longer_takes_part(ukraine, russia, make_api):
    api = make_api(ukraine)
    ours = [{"party": str(ukraine.pk), "role": "side"}, {"party": str(russia.pk), "role": "side"}]
    created = api.post("/api/v1/negotiations/", {"title": "Ours at first", "participants": ours}, format="json").json()
    negotiation = Negotiation.objects.get(pk=created["id"])
    services.negotiation_update(negotiation=negotiation, actor=None, participants=[{"party": russia, "role": "side"}])
    assert api.get(f"/api/v1/negotiations/{created['id']}/").status_code == 404
    assert created["id"] not in {n["id"] for n in api.get("/api/v1/negotiations/").json()["results"]}


def test_participants_and_groups_sent_on_update_replace_the_lists(ukraine, russia, icrc, outsider, make_api, confidential):
    api = make_api(ukraine)
    new_group = DetaineeGroupFactory(held_by=ukraine)
    participants = [
        {"party": str(ukraine.pk), "role": "mediator"},  # its own role: may change
        {"party": str(russia.pk), "role": "side"},
        {"party": str(icrc.pk), "role": "facilitator"},
        {"party": str(outsider.pk), "role": "observer"},  # added
    ]
    response = api.patch(
        f"/api/v1/negotiations/{confidential.pk}/",
        {"participants": participants, "groups": [{"group": str(new_group.pk), "released_count": 3}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["participants"] == participants
    assert response.json()["groups"] == [{"group": str(new_group.pk), "proposed_count": None, "released_count": 3}]
    untouched = api.patch(f"/api/v1/negotiations/{confidential.pk}/", {"next_step": "Call the ICRC"}, format="json").json()
    assert len(untouched["participants"]) == 4 and untouched["next_step"] == "Call the ICRC"


def test_filters(ukraine, russia, icrc, garrison, make_api, staff_api, confidential, public_negotiation):
    from exchanges import services

    services.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
    Negotiation.objects.filter(pk=confidential.pk).update(stalled=True, stalled_since=timezone.now(), priority="urgent")
    api = make_api(ukraine)

    def ids(**params):
        response = api.get("/api/v1/negotiations/", params)
        assert response.status_code == 200, response.content
        return {n["id"] for n in response.json()["results"]}

    both = {str(confidential.pk), str(public_negotiation.pk)}
    assert ids() == both
    assert ids(status="in_talks") == {str(public_negotiation.pk)}
    assert api.get("/api/v1/negotiations/?status=in_talks&status=proposed").json()["results"].__len__() == 2
    assert ids(stalled="true") == {str(confidential.pk)}
    assert ids(stalled="false") == {str(public_negotiation.pk)}
    assert ids(priority="urgent") == {str(confidential.pk)}
    assert ids(party=str(icrc.pk)) == {str(confidential.pk)}
    assert ids(group=str(garrison.pk)) == {str(confidential.pk)}
    assert ids(search=confidential.reference) == {str(confidential.pk)}
    assert ids(search="all-for") == {str(public_negotiation.pk)}
    assert ids(updated_since=(timezone.now() + timedelta(minutes=1)).isoformat()) == set()
    assert ids(updated_since="2000-01-01T00:00:00Z") == both
    assert ids(updated_since="0385-07-03T03:13:00+21:08") == both
    for bad in ({"status": "nonsense"}, {"party": "not-a-uuid"}, {"updated_since": "yesterday"}, {"priority": "x"}, {"updated_since": "0001-01-01T00:00:00+05:00"}):
        response = api.get("/api/v1/negotiations/", bad)
        assert response.status_code == 400 and set(bad) <= set(response.json()), (bad, response.content)


def test_pagination_is_cursor_based_and_page_size_is_bounded(ukraine, make_api):
    for n in range(7):
        NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side")])
    api = make_api(ukraine)
    first = api.get("/api/v1/negotiations/", {"page_size": 3}).json()
    assert set(first) == {"next", "previous", "results"} and len(first["results"]) == 3
    seen = [n["id"] for n in first["results"]]
    page = first
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [n["id"] for n in page["results"]]
    assert len(seen) == 7 == len(set(seen))
    assert len(api.get("/api/v1/negotiations/", {"page_size": 200}).json()["results"]) == 7
    for bad in ("0", "-1", "ten", "201", "1000"):
        response = api.get("/api/v1/negotiations/", {"page_size": bad})
        assert response.status_code == 400 and "page_size" in response.json()
    assert "cursor" in api.get("/api/v1/negotiations/", {"cursor": "garbage"}).json()
    oldest_first = api.get("/api/v1/negotiations/", {"ordering": "updated_at"}).json()["results"]
    assert [n["id"] for n in oldest_first] == sorted([n["id"] for n in oldest_first], key=seen[::-1].index)
    assert api.get("/api/v1/negotiations/", {"ordering": "title"}).status_code == 400


def test_events_can_be_corrected_and_removed(ukraine, make_api, public_negotiation):
    api = make_api(ukraine)
    url = f"/api/v1/negotiations/{public_negotiation.pk}/events/"
    event = api.post(url, {"kind": "meeting", "occurred_at": "2022-05-10T10:00:00Z", "summary": "Talks"}, format="json").json()
    patched = api.patch(f"{url}{event['id']}/", {"summary": "Talks in Istanbul"}, format="json")
    assert patched.status_code == 200 and patched.json()["summary"] == "Talks in Istanbul"
    assert api.delete(f"{url}{event['id']}/").status_code == 204
    public_negotiation.refresh_from_db()
    assert public_negotiation.events.count() == 0
    assert public_negotiation.last_activity_at.date().isoformat() == "2022-05-06"


def test_the_fast_representation_matches_drfs_field_by_field_output(ukraine, russia, garrison, confidential):
    from rest_framework import serializers as drf

    from exchanges import services
    from exchanges.api.serializers import NegotiationSerializer

    services.negotiation_change_status(negotiation=confidential, to_status="in_talks", actor=None)
    services.negotiation_update(negotiation=confidential, actor=None, next_step_due=timezone.localdate(), summary="ü ✓")
    Negotiation.objects.filter(pk=confidential.pk).update(stalled=True, stalled_since=timezone.now())
    negotiation = Negotiation.objects.prefetch_related("participants", "covered_groups").get(pk=confidential.pk)
    serializer = NegotiationSerializer()
    assert serializer.to_representation(negotiation) == drf.ModelSerializer.to_representation(serializer, negotiation)


def test_visibility_follows_the_participants_when_they_are_replaced(ukraine, russia, outsider, make_api, staff_api, confidential):
    outsider_api = make_api(outsider)
    url = f"/api/v1/negotiations/{confidential.pk}/"
    assert outsider_api.get(url).status_code == 404
    response = staff_api.patch(url, {"participants": [{"party": str(outsider.pk), "role": "mediator"}, {"party": str(russia.pk), "role": "side"}]}, format="json")
    assert response.status_code == 200
    assert outsider_api.get(url).status_code == 200
    assert make_api(ukraine).get(url).status_code == 404
    assert [n["id"] for n in outsider_api.get("/api/v1/negotiations/").json()["results"]] == [str(confidential.pk)]


def test_the_trailing_slash_is_optional_on_every_route(ukraine, make_api):
    """Partners write URLs both ways; neither a 404 nor a redirect that would drop a POST."""
    api = make_api(ukraine)
    ours = [{"party": str(ukraine.pk), "role": "side"}]
    created = api.post("/api/v1/negotiations", {"title": "Without a slash", "visibility": "all_partners", "participants": ours}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert api.get(f"/api/v1/negotiations/{pk}").json()["title"] == "Without a slash"
    assert api.patch(f"/api/v1/negotiations/{pk}", {"summary": "patched"}, format="json").status_code == 200
    assert [row["id"] for row in api.get("/api/v1/negotiations").json()["results"]] == [pk]
    assert api.get("/api/v1/parties").status_code == 200
    assert api.get("/api/v1/flags").status_code == 200
    assert api.get("/api/v1/webhooks").status_code == 200


def test_a_client_cannot_hide_a_negotiation_from_itself_and_nothing_is_written(ukraine, russia, icrc, make_api, confidential):
    """Found by the fuzzer: removing one's own party from a participants-only negotiation
    committed the change, then answered 500 (the client could no longer read it back)."""
    api = make_api(icrc)
    url = f"/api/v1/negotiations/{confidential.pk}/"
    before = api.get(url).json()
    sides = [{"party": str(ukraine.pk), "role": "side"}, {"party": str(russia.pk), "role": "side"}]
    refused = api.patch(url, {"participants": sides, "title": "renamed"}, format="json")
    assert refused.status_code == 400 and "participants" in refused.json()
    assert api.get(url).json() == before
    kept = api.patch(url, {"participants": [*sides, {"party": str(icrc.pk), "role": "mediator"}]}, format="json")
    assert kept.status_code == 200 and {p["party"] for p in kept.json()["participants"]} == {str(icrc.pk), str(russia.pk), str(ukraine.pk)}


def test_a_client_may_not_remove_or_re_role_another_party_and_nothing_is_written(ukraine, russia, icrc, make_api, confidential):
    api = make_api(icrc)
    url = f"/api/v1/negotiations/{confidential.pk}/"
    before = api.get(url).json()
    icrc_entry = {"party": str(icrc.pk), "role": "facilitator"}
    removed = api.patch(url, {"participants": [icrc_entry, {"party": str(russia.pk), "role": "side"}], "title": "x"}, format="json")
    assert removed.status_code == 403 and ukraine.name in removed.json()["detail"]
    demoted = api.patch(url, {"participants": [icrc_entry, {"party": str(russia.pk), "role": "side"}, {"party": str(ukraine.pk), "role": "observer"}]}, format="json")
    assert demoted.status_code == 403 and "role" in demoted.json()["detail"]
    assert api.get(url).json() == before


def test_a_meeting_held_before_the_negotiation_was_recorded_is_its_last_activity(make_api, ukraine):
    """API.md: `last_activity_at` is the latest `occurred_at` among its status changes and
    events; recording today a meeting held 40 days ago does not make it active today, even
    on a negotiation recorded today (its `opened_on` by default)."""
    from tracker.services import scan_stalls

    api = make_api(ukraine)
    created = api.post("/api/v1/negotiations/", {"title": "Learnt late", "participants": [{"party": str(ukraine.pk), "role": "side"}]}, format="json").json()
    held = (timezone.now() - timedelta(days=40)).replace(microsecond=0)
    response = api.post(f"/api/v1/negotiations/{created['id']}/events/", {"kind": "meeting", "occurred_at": held.isoformat(), "summary": "Met in Istanbul"}, format="json")
    assert response.status_code == 201, response.content
    body = api.get(f"/api/v1/negotiations/{created['id']}/").json()
    assert body["opened_on"] == timezone.localdate().isoformat()
    assert body["last_activity_at"] == held.isoformat().replace("+00:00", "Z")
    scan_stalls()
    assert api.get(f"/api/v1/negotiations/{created['id']}/").json()["stalled"] is True
