"""`GET /api/v1/changes/`: a partner's copy never misses a change (API.md, "Keeping a copy
in step").

The feed numbers a change once it has committed, after every change already numbered
(see exchanges.changes.seal), so a client syncing from its last cursor meets it then."""
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from exchanges import changes, services
from tests.factories import DetaineeGroupFactory, NegotiationFactory, PartyFactory
from tests.services import require_postgres

pytestmark = pytest.mark.django_db

FEED = "/api/v1/changes/"


def sync(api, after=None, page_size=200):
    """Every change from `after`, page by page: (entries, last cursor)."""
    seen = []
    while True:
        params = {"page_size": page_size, **({"after": after} if after else {})}
        response = api.get(FEED, params)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += body["results"]
        after = body["next_cursor"]
        if not body["results"]:
            return seen, after


def entries(seen, kind=None):
    return [(e["type"], e["id"], e["action"]) for e in seen if kind is None or e["type"] == kind]


def test_a_client_follows_creates_updates_and_deletes_of_what_it_may_see(make_api, ukraine, russia, icrc, outsider, garrison):
    ua = make_api(ukraine)
    public = NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side"), (russia, "side")], groups=[garrison])
    hidden = NegotiationFactory(visibility="participants", participants=[(russia, "side"), (icrc, "mediator")])
    internal = NegotiationFactory(visibility="staff_only", participants=[(ukraine, "side")])
    first, cursor = sync(ua)
    ids = {e["id"] for e in first}
    assert str(public.pk) in ids and str(garrison.pk) in ids and str(ukraine.pk) in ids
    assert str(hidden.pk) not in ids and str(internal.pk) not in ids

    event = services.event_create(negotiation=public, actor=None, kind="meeting", occurred_at=timezone.now(), summary="Met")
    event_id = str(event.pk)
    services.event_create(negotiation=hidden, actor=None, kind="meeting", occurred_at=timezone.now(), summary="Secret")
    figure = services.figure_create(group=garrison, actor=None, metric="total", value=265, reported_on=timezone.localdate())
    services.event_delete(event=event, actor=None)
    later, cursor = sync(ua, cursor)
    assert entries(later, "event") == [("event", event_id, "created"), ("event", event_id, "deleted")]
    assert ("figure", str(figure.pk), "created") in entries(later)
    assert ("detainee_group", str(garrison.pk), "updated") in entries(later)  # its figures_summary moved
    assert ("negotiation", str(public.pk), "updated") in entries(later)  # last_activity_at moved
    assert {e["id"] for e in later} & {str(hidden.pk), str(internal.pk)} == set()
    assert not any(e["negotiation"] == str(hidden.pk) for e in later)
    created = next(e for e in later if e["id"] == event_id)
    assert created["negotiation"] == str(public.pk)  # where to fetch it
    # Nothing new: an empty page, and the same cursor to keep.
    again = ua.get(FEED, {"after": cursor}).json()
    assert again["results"] == [] and again["next_cursor"] == cursor


def test_flags_and_stalls_written_by_the_scan_are_in_the_feed(make_api, ukraine):
    from tracker.services import scan_stalls

    ua = make_api(ukraine)
    negotiation = NegotiationFactory(
        visibility="all_partners", priority="urgent", opened_on=timezone.localdate() - timedelta(days=30), participants=[(ukraine, "side")]
    )
    _seen, cursor = sync(ua)
    scan_stalls()
    flagged, _cursor = sync(ua, cursor)
    kinds = entries(flagged)
    assert ("negotiation", str(negotiation.pk), "updated") in kinds  # stalled
    flag = next(e for e in flagged if e["type"] == "flag")
    assert flag["action"] == "created" and flag["negotiation"] == str(negotiation.pk)


def test_a_client_that_loses_access_is_told_removed_and_others_are_not(make_api, staff_user, ukraine, russia, icrc, outsider):
    ua, ru, out = make_api(ukraine), make_api(russia), make_api(outsider)
    negotiation = NegotiationFactory(visibility="participants", participants=[(ukraine, "side"), (russia, "side")])
    public = NegotiationFactory(visibility="all_partners", participants=[(ukraine, "side"), (russia, "side")])
    cursors = {name: sync(api)[1] for name, api in (("ua", ua), ("ru", ru), ("out", out))}
    services.negotiation_update(negotiation=negotiation, actor=staff_user, participants=[{"party": ukraine, "role": "side"}])
    services.negotiation_update(negotiation=public, actor=staff_user, visibility="participants")
    ru_seen = entries(sync(ru, cursors["ru"])[0])
    assert ("negotiation", str(negotiation.pk), "removed") in ru_seen
    assert ("negotiation", str(public.pk), "removed") not in ru_seen  # still takes part
    out_seen = entries(sync(out, cursors["out"])[0])
    assert out_seen == [("negotiation", str(public.pk), "removed")]  # it saw the public one only
    ua_seen = entries(sync(ua, cursors["ua"])[0])
    assert ("negotiation", str(negotiation.pk), "updated") in ua_seen and not any(a == "removed" for _t, _i, a in ua_seen)


def test_a_deleted_negotiation_is_announced_to_those_who_saw_it(make_api, staff_user, ukraine, russia, outsider):
    ua, out = make_api(ukraine), make_api(outsider)
    negotiation = NegotiationFactory(visibility="participants", participants=[(ukraine, "side")])
    cursors = {"ua": sync(ua)[1], "out": sync(out)[1]}
    from exchanges.services import delete_record

    with transaction.atomic():
        delete_record(negotiation, actor=None)
    assert ("negotiation", str(negotiation.pk), "deleted") in entries(sync(ua, cursors["ua"])[0])
    assert entries(sync(out, cursors["out"])[0]) == []


def test_bad_requests_and_who_may_read(make_api, ukraine, staff_api, client):
    ua = make_api(ukraine)
    assert ua.get(FEED, {"after": "not a cursor!"}).status_code == 400
    assert "after" in ua.get(FEED, {"after": "bm9wZQ"}).json()
    assert "page_size" in ua.get(FEED, {"page_size": "0"}).json()
    assert ua.get(FEED, {"page_size": "201"}).status_code == 400
    refused = staff_api.get(FEED)
    assert refused.status_code == 403 and "API clients" in refused.json()["detail"]
    assert client.get(FEED).status_code == 401
    assert make_api(ukraine, read_only=True).get(FEED).status_code == 200


def test_resyncing_from_an_older_cursor_sees_each_change_again_in_order(make_api, ukraine):
    ua = make_api(ukraine)
    for n in range(5):
        PartyFactory(name=f"State {n}")
    page = ua.get(FEED, {"page_size": 3}).json()
    rest, _cursor = sync(ua, page["next_cursor"])
    crashed, _ = sync(ua, page["results"][0]["cursor"])  # the client had kept only the first
    assert crashed == page["results"][1:] + rest


class InFlight:
    """`work` run in a transaction on a second connection, held open after it until
    `commit()`: `with InFlight(work) as flight: ...; flight.commit()`."""

    def __init__(self, work):
        self.work, self.done, self.may_commit, self.errors = work, threading.Event(), threading.Event(), []
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        try:
            with transaction.atomic():
                self.work()
                self.done.set()
                assert self.may_commit.wait(30)
        except Exception as exc:  # noqa: BLE001 - asserted in commit()
            self.errors.append(repr(exc))
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        assert self.done.wait(30), self.errors
        return self

    def commit(self):
        self.may_commit.set()
        self.thread.join(30)
        assert self.errors == []

    def __exit__(self, *exc):
        self.may_commit.set()
        self.thread.join(30)


def in_commit_order(api):
    positions = [changes.decode(e["cursor"]) for e in sync(api)[0]]
    return positions == sorted(positions) and len(set(positions)) == len(positions)


@pytest.mark.django_db(transaction=True)
def test_a_change_that_commits_late_never_lands_behind_a_cursor_already_handed_out(make_api, ukraine):
    """Two connections: A writes first and commits last, B writes second and commits first.
    A client syncing while A is in flight gets B; once A commits it gets A after B: in
    commit order, behind no cursor it was given, nothing skipped."""
    require_postgres()
    ua = make_api(ukraine)
    _seen, cursor = sync(ua)
    with InFlight(lambda: PartyFactory(name="Written first, committed last")) as slow_writer:
        quick = PartyFactory(name="Written second, committed first")
        during, cursor = sync(ua, cursor)
        assert [e["id"] for e in during] == [str(quick.pk)]  # A is not committed: not yet numbered
        slow_writer.commit()
    after, _ = sync(ua, cursor)
    from exchanges.models import Party

    slow = Party.objects.get(name="Written first, committed last")
    assert [e["id"] for e in after] == [str(slow.pk)]  # numbered after the cursor handed out
    assert in_commit_order(ua)


@pytest.mark.django_db(transaction=True)
def test_a_scan_numbers_its_rows_in_its_transaction_and_a_write_meanwhile_comes_after(make_api, ukraine):
    """The stall scan writes its rows with their positions (exchanges.changes.number_from_here)
    and holds the numbering until it commits: a client syncing meanwhile is handed no cursor
    past them, and a write committed meanwhile is numbered after them, nothing skipped."""
    require_postgres()
    from tracker.services import scan_stalls

    ua = make_api(ukraine)
    stalled = NegotiationFactory(
        visibility="all_partners", priority="urgent", opened_on=timezone.localdate() - timedelta(days=30), participants=[(ukraine, "side")]
    )
    _seen, cursor = sync(ua)
    with InFlight(scan_stalls) as scan:
        meanwhile = PartyFactory(name="Written while the scan was in flight")
        during, cursor = sync(ua, cursor)
        assert during == []  # the scan's rows are not committed, the party waits for its number
        scan.commit()
    after, _ = sync(ua, cursor)
    assert ("negotiation", str(stalled.pk), "updated") in entries(after)
    assert [e["type"] for e in after].count("flag") >= 1
    assert entries(after)[-1] == ("party", str(meanwhile.pk), "created")
    assert in_commit_order(ua)
    from exchanges.models import Change

    assert not Change.objects.filter(position__isnull=True).exists()


def test_a_forged_or_mangled_cursor_is_refused(make_api, ukraine):
    ua = make_api(ukraine)
    PartyFactory(name="Something to number")
    real = sync(ua)[1]
    for cursor in ("IDEuMQ", real + "%00", real + "=", "LTE", "MA"):
        response = ua.get(FEED, {"after": cursor})
        assert response.status_code == 400 and "after" in response.json(), cursor


def test_groups_a_client_may_not_see_stay_out_of_its_feed(make_api, ukraine, russia, icrc):
    elsewhere = DetaineeGroupFactory(held_by=russia, affiliated_with=icrc)
    ua = make_api(ukraine)
    seen, _ = sync(ua)
    assert str(elsewhere.pk) not in {e["id"] for e in seen}


def test_a_group_seen_through_a_negotiation_comes_and_goes_in_the_feed(make_api, ukraine, russia, icrc, outsider):
    """Found by a partner: covering a group gave the observer sight of it with no trace."""
    hidden = DetaineeGroupFactory(held_by=outsider, affiliated_with=russia)
    figure = services.figure_create(group=hidden, actor=None, metric="total", value=12, reported_on=timezone.localdate())
    negotiation = NegotiationFactory(visibility="participants", participants=[(ukraine, "side"), (icrc, "observer")])
    observer = make_api(icrc)
    _seen, cursor = sync(observer)
    services.negotiation_update(negotiation=negotiation, actor=None, groups=[{"group": hidden}])
    gained, cursor = sync(observer, cursor)
    assert ("detainee_group", str(hidden.pk), "updated") in entries(gained)
    assert observer.get(f"/api/v1/detainee-groups/{hidden.pk}/figures/{figure.pk}/").status_code == 200
    services.negotiation_update(negotiation=negotiation, actor=None, groups=[])
    lost, _ = sync(observer, cursor)
    assert ("detainee_group", str(hidden.pk), "removed") in entries(lost)
    assert observer.get(f"/api/v1/detainee-groups/{hidden.pk}/").status_code == 404
    # The holder saw it all along: no removed for it.
    holder = make_api(outsider)
    assert not any(a == "removed" for _t, _i, a in entries(sync(holder)[0]))


def test_a_withdrawn_figure_stays_announced_after_its_group_is_deleted(make_api, russia, ukraine):
    """Found by a partner: the figure's deletion vanished from the feed once its group went."""
    ru = make_api(russia)
    group = services.detainee_group_create(actor=ru.api_client, name="G2", held_by=russia, affiliated_with=ukraine, category="civilians")
    figure = services.figure_create(group=group, actor=ru.api_client, metric="total", value=3, reported_on=timezone.localdate())
    figure_id, group_id = str(figure.pk), str(group.pk)
    _seen, cursor = sync(ru)
    with transaction.atomic():
        services.figure_delete(figure=figure, actor=ru.api_client)
    with transaction.atomic():
        services.detainee_group_delete(group=group, actor=ru.api_client)
    assert entries(sync(ru, cursor)[0]) == [("figure", figure_id, "deleted"), ("detainee_group", group_id, "deleted")]


def test_a_caught_up_client_moves_past_changes_it_may_not_see(make_api, ukraine, russia, icrc):
    """Found in review: an empty page kept the old cursor, so each poll walked again through
    every newer change the client may not see."""
    ua = make_api(ukraine)
    _seen, cursor = sync(ua)
    hidden = NegotiationFactory(visibility="participants", participants=[(russia, "side"), (icrc, "mediator")])
    for n in range(3):
        services.event_create(negotiation=hidden, actor=None, kind="meeting", occurred_at=timezone.now(), summary=f"m{n}")
    page = ua.get(FEED, {"after": cursor}).json()
    assert page["results"] == [] and changes.decode(page["next_cursor"]) > changes.decode(cursor)
    from exchanges.models import Change

    assert changes.decode(page["next_cursor"]) == Change.objects.order_by("-position").first().position


def test_a_feed_page_has_the_shape_of_every_list_and_its_default_size(make_api, ukraine):
    PartyFactory.create_batch(55)
    page = make_api(ukraine).get(FEED).json()
    assert len(page["results"]) == 50 and page["previous"] is None
    assert page["next"].endswith("after=" + page["next_cursor"]) and page["next_cursor"] == page["results"][-1]["cursor"]
