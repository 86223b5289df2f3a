"""Access follows the current participants, at every request: groups, figures, flags,
the delivery log and webhooks not yet sent follow the negotiations a client may see;
staff reads of staff-only negotiations are in the access log; a login without
permissions gets 403."""
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from exchanges import services
from exchanges.models import AccessLogEntry, Team
from tests.factories import DetaineeGroupFactory, NegotiationFactory
from tracker import delivery
from tracker.models import Flag, WebhookDelivery

from ..tracker.receiver import Receiver

pytestmark = pytest.mark.django_db


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_a_client_sees_the_groups_of_its_party_and_of_negotiations_it_sees(ukraine, russia, icrc, outsider, make_api):
    held = DetaineeGroupFactory(name="Held by Ukraine", held_by=ukraine)
    affiliated = DetaineeGroupFactory(name="Ukrainian POWs", affiliated_with=ukraine)
    recorded = services.detainee_group_create(
        actor=make_api(ukraine).api_client, name="Recorded by Ukraine", held_by=russia, affiliated_with=russia, category="civilians"
    )
    covered = DetaineeGroupFactory(name="Covered by a negotiation it sees")
    NegotiationFactory(visibility="participants", participants=[(ukraine, "side"), (russia, "side")], groups=[covered])
    public = DetaineeGroupFactory(name="Covered by a public negotiation")
    NegotiationFactory(visibility="all_partners", participants=[(russia, "side")], groups=[public])
    elsewhere = DetaineeGroupFactory(name="Covered between others")
    NegotiationFactory(visibility="participants", participants=[(russia, "side"), (icrc, "mediator")], groups=[elsewhere])
    internal = DetaineeGroupFactory(name="Covered by staff only")
    NegotiationFactory(visibility="staff_only", participants=[(ukraine, "side")], groups=[internal])
    for group in (elsewhere, internal):
        services.figure_create(group=group, actor=None, metric="total", value=5, reported_on=timezone.localdate())

    api = make_api(ukraine)
    seen = {str(g.pk) for g in (held, affiliated, recorded, covered, public)}
    assert ids(api.get("/api/v1/detainee-groups/?page_size=200")) == seen
    for group in (elsewhere, internal):
        assert api.get(f"/api/v1/detainee-groups/{group.pk}/").status_code == 404
        assert api.get(f"/api/v1/detainee-groups/{group.pk}/figures/").status_code == 404
        figure = group.figures.get()
        assert api.get(f"/api/v1/detainee-groups/{group.pk}/figures/{figure.pk}/").status_code == 404
        refused = api.post(f"/api/v1/detainee-groups/{group.pk}/figures/", {"metric": "total", "value": 1, "reported_on": "2022-05-17"}, format="json")
        assert refused.status_code == 404 and group.figures.count() == 1
    # A group it cannot see cannot be put into a negotiation either (as if it did not exist).
    ours = [{"party": str(ukraine.pk), "role": "side"}]
    response = api.post("/api/v1/negotiations/", {"title": "x", "participants": ours, "groups": [{"group": str(elsewhere.pk)}]}, format="json")
    assert response.status_code == 400 and "groups" in response.json()
    assert ids(make_api(outsider).get("/api/v1/detainee-groups/?page_size=200")) == {str(public.pk)}


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def test_a_party_removed_by_staff_loses_the_negotiation_everywhere_at_once(ukraine, russia, make_api, receiver):
    negotiation = NegotiationFactory(
        visibility="participants", priority="urgent", opened_on=timezone.localdate() - timedelta(days=30),
        participants=[(ukraine, "side"), (russia, "side")],
    )  # fmt: skip
    api = make_api(russia)
    subscription = api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["negotiation.status_changed"]}, format="json").json()
    services.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None)
    for pk in delivery.lease_due_deliveries():
        delivery.deliver(pk)  # the first one is sent while Russia takes part
    services.negotiation_change_status(negotiation=negotiation, to_status="agreed_in_principle", actor=None)
    flag = Flag.objects.create(negotiation=negotiation, kind="no_activity", level="overdue", raised_at=timezone.now(), silent_since=timezone.now())
    deliveries = f"/api/v1/webhooks/{subscription['id']}/deliveries/"
    assert len(ids(api.get(deliveries))) == 2
    assert ids(api.get("/api/v1/flags/")) == {str(flag.pk)}

    services.negotiation_update(negotiation=negotiation, actor=None, participants=[{"party": ukraine, "role": "side"}])

    assert api.get(f"/api/v1/negotiations/{negotiation.pk}/").status_code == 404
    assert str(negotiation.pk) not in ids(api.get("/api/v1/negotiations/"))
    assert api.get(f"/api/v1/negotiations/{negotiation.pk}/status-changes/").status_code == 404
    assert ids(api.get("/api/v1/flags/")) == set()
    assert ids(api.get(deliveries)) == set()  # the delivery log shows only what it may still see
    for pk in delivery.lease_due_deliveries():
        delivery.deliver(pk)
    assert len(receiver.requests) == 1  # the pending one was never sent
    dropped = WebhookDelivery.objects.get(status="cancelled")
    assert dropped.payload["data"]["status_change"]["to_status"] == "agreed_in_principle"
    assert "may no longer see" in dropped.last_error and dropped.attempts == 0


def staff_login(django_user_model, username, *, role=None, teams=()):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username=username, password="pw-123456", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    for team in teams:
        team.members.add(user)
    api = APIClient(REMOTE_ADDR="203.0.113.9")
    api.force_login(user)
    return api, user


def test_staff_reads_of_a_staff_only_negotiation_are_in_the_access_log(ukraine, django_user_model):
    desk = Team.objects.create(name="Protection unit")
    api, user = staff_login(django_user_model, "reader", role="Viewer", teams=[desk])
    internal = NegotiationFactory(title="Internal", visibility="staff_only", participants=[(ukraine, "side")])
    internal.teams.set([desk])
    public = NegotiationFactory(title="Public", visibility="all_partners", participants=[(ukraine, "side")])

    assert api.get(f"/api/v1/negotiations/{internal.pk}/").json()["teams"] == ["Protection unit"]
    assert api.get(f"/api/v1/negotiations/{public.pk}/").status_code == 200
    assert ids(api.get("/api/v1/negotiations/")) == {str(internal.pk), str(public.pk)}

    entries = list(AccessLogEntry.objects.order_by("id"))
    assert [(e.negotiation_id, e.user_id, e.channel, e.address) for e in entries] == [
        (internal.pk, user.pk, "api", "203.0.113.9"),
        (internal.pk, user.pk, "api", "203.0.113.9"),
    ]
    with pytest.raises(PermissionError):
        entries[0].delete()


def test_staff_only_is_for_its_teams_and_staff_fields_are_staff_only(ukraine, django_user_model, make_api):
    desk, other = Team.objects.create(name="Desk A"), Team.objects.create(name="Desk B")
    member, _ = staff_login(django_user_model, "member", role="Coordinator", teams=[desk])
    outsider_staff, _ = staff_login(django_user_model, "outsider", role="Coordinator", teams=[other])
    created = member.post(
        "/api/v1/negotiations/",
        {"title": "Sensitive", "visibility": "staff_only", "teams": ["Desk A"], "case_officer": "member"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["teams"] == ["Desk A"] and body["case_officer"] == "member"
    assert outsider_staff.get(f"/api/v1/negotiations/{body['id']}/").status_code == 404
    assert body["id"] not in ids(outsider_staff.get("/api/v1/negotiations/"))
    # Clients never see the staff fields.
    public = NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side")])
    seen = make_api(ukraine).get(f"/api/v1/negotiations/{public.pk}/").json()
    assert "teams" not in seen and "case_officer" not in seen
    refused = make_api(ukraine).patch(f"/api/v1/negotiations/{public.pk}/", {"teams": ["Desk A"]}, format="json")
    assert refused.status_code == 400 and "teams" in refused.json()


def test_a_staff_login_without_permissions_gets_403_from_every_api_list(django_user_model):
    api, _ = staff_login(django_user_model, "nobody")
    for url in ("/api/v1/negotiations/", "/api/v1/parties/", "/api/v1/detainee-groups/", "/api/v1/flags/", "/api/v1/webhooks/"):
        response = api.get(url)
        assert response.status_code == 403, url
        assert "permission" in response.json()["detail"]


def test_a_change_that_would_leave_nobody_seeing_it_is_refused_and_nothing_written(ukraine, django_user_model):
    desk, elsewhere = Team.objects.create(name="Desk A"), Team.objects.create(name="Protection unit")
    api, _ = staff_login(django_user_model, "carol", role="Coordinator", teams=[desk])
    public = NegotiationFactory(title="Public", visibility="all_partners", participants=[(ukraine, "side")])
    url = f"/api/v1/negotiations/{public.pk}/"
    hidden = api.patch(url, {"visibility": "staff_only"}, format="json")  # no teams: nobody would see it
    assert hidden.status_code == 400 and "visibility" in hidden.json()
    away = api.patch(url, {"visibility": "staff_only", "teams": ["Protection unit"]}, format="json")
    assert away.status_code == 400 and "teams" in away.json()
    public.refresh_from_db()
    assert public.visibility == "all_partners" and not public.teams.exists()
    kept = api.patch(url, {"visibility": "staff_only", "teams": ["Desk A", "Protection unit"]}, format="json")
    assert kept.status_code == 200 and kept.json()["teams"] == ["Desk A", "Protection unit"]
    assert elsewhere.negotiations.get() == public


def test_the_case_officer_must_be_able_to_see_the_negotiation(ukraine, django_user_model):
    desk = Team.objects.create(name="Desk A")
    api, _ = staff_login(django_user_model, "alice", role="Editor", teams=[desk])
    staff_login(django_user_model, "dave", role="Editor")  # not in Desk A
    staff_login(django_user_model, "bob")  # no role at all
    staff_login(django_user_model, "erin", role="Viewer", teams=[desk])
    internal = NegotiationFactory(visibility="staff_only", participants=[(ukraine, "side")])
    internal.teams.set([desk])
    url = f"/api/v1/negotiations/{internal.pk}/"
    for username in ("dave", "bob"):
        refused = api.patch(url, {"case_officer": username}, format="json")
        assert refused.status_code == 400 and username in refused.json()["case_officer"][0]
    assert api.patch(url, {"case_officer": "erin"}, format="json").json()["case_officer"] == "erin"


def test_an_idempotent_replay_is_not_served_once_the_client_lost_the_negotiation(ukraine, russia, make_api):
    negotiation = NegotiationFactory(visibility="participants", participants=[(ukraine, "side"), (russia, "side")])
    api = make_api(russia)
    url = f"/api/v1/negotiations/{negotiation.pk}/status-changes/"
    first = api.post(url, {"to_status": "in_talks"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    services.negotiation_update(negotiation=negotiation, actor=None, participants=[{"party": ukraine, "role": "side"}])
    again = api.post(url, {"to_status": "in_talks"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 404 and "Idempotent-Replayed" not in again


def test_a_status_change_is_never_dated_before_the_negotiation_opened(ukraine, make_api):
    negotiation = NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side")], opened_on=timezone.localdate())
    response = make_api(ukraine).post(
        f"/api/v1/negotiations/{negotiation.pk}/status-changes/", {"to_status": "in_talks", "occurred_at": "2020-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 400 and "occurred_at" in response.json()
    assert not negotiation.status_changes.exists()


def test_an_idempotent_creation_is_not_replayed_once_its_negotiation_is_out_of_sight(ukraine, russia, make_api):
    from exchanges.models import Negotiation

    api = make_api(ukraine)
    body = {"title": "Ours", "participants": [{"party": str(ukraine.pk), "role": "side"}]}
    first = api.post("/api/v1/negotiations/", body, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    assert first.status_code == 201
    negotiation = Negotiation.objects.get(pk=first.json()["id"])
    services.negotiation_update(negotiation=negotiation, actor=None, participants=[{"party": russia, "role": "side"}])
    again = api.post("/api/v1/negotiations/", body, format="json", HTTP_IDEMPOTENCY_KEY="create-1")
    assert again.status_code == 404 and "Ours" not in again.content.decode()


def test_an_editor_records_a_negotiation_for_its_own_teams_only(ukraine, django_user_model):
    desk = Team.objects.create(name="Desk A")
    Team.objects.create(name="Desk B")
    api, _ = staff_login(django_user_model, "editor", role="Editor", teams=[desk])
    ours = [{"party": str(ukraine.pk), "role": "side"}]
    for body in ({"visibility": "all_partners"}, {"participants": ours}, {"teams": ["Desk A", "Desk B"]}):
        refused = api.post("/api/v1/negotiations/", {"title": "x", **body}, format="json")
        assert refused.status_code == 403, body
    created = api.post("/api/v1/negotiations/", {"title": "x", "teams": ["Desk A"]}, format="json")
    assert created.status_code == 201 and created.json()["teams"] == ["Desk A"]


def test_a_stranger_to_the_case_gets_no_email_queued_before_they_lost_it(ukraine, django_user_model):
    from django.core import mail

    from tracker import delivery
    from tracker.models import EmailNotification

    desk = Team.objects.create(name="Desk A")
    _api, watcher = staff_login(django_user_model, "watcher", role="Viewer", teams=[desk])
    watcher.email = "watcher@example.org"
    watcher.save()
    internal = NegotiationFactory(visibility="staff_only", participants=[(ukraine, "side")])
    internal.teams.set([desk])
    internal.watchers.add(watcher)
    services.negotiation_change_status(negotiation=internal, to_status="in_talks", actor=None)
    assert EmailNotification.objects.count() == 1
    desk.members.remove(watcher)
    delivery.send_pending_emails()
    assert mail.outbox == [] and "no longer see" in EmailNotification.objects.get().last_error
