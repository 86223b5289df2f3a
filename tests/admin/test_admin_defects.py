"""The admin's defects of issue #15, each with its class: plurals, one date format, search
by party, bad filter values, error pages with a request id, the timeline's segments,
"My work", compression and a cached JavaScript catalog."""
import gzip
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from exchanges import charts, services
from exchanges.models import Team
from tests.factories import NegotiationFactory, PartyFactory
from tracker.services import scan_stalls

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def listing(client, **params):
    return client.get(reverse("admin:exchanges_negotiation_changelist"), params)


def test_a_negotiation_is_found_by_the_name_short_name_or_alias_of_a_party(staff, confidential, public_negotiation):
    emirates = PartyFactory(name="United Arab Emirates", short_name="AE", aliases=["UAE", "الإمارات"])
    mediated = NegotiationFactory(title="Gulf-mediated swap", participants=[(emirates, "mediator")])
    for term, found in (("ICRC", confidential), ("Red Cross", confidential), ("UAE", mediated), ("Emirates", mediated)):
        results = set(listing(staff, q=term).context["cl"].result_list)
        assert found in results, term
    assert mediated not in set(listing(staff, q="ICRC").context["cl"].result_list)


@pytest.mark.parametrize(
    "params",
    [
        {"party": "not-a-uuid"},
        {"case_officer__id__exact": "abc"},
        {"teams__id__exact": "x"},
        {"opened_on__year": "99999999999999999999"},
        {"opened_on__month": "13", "opened_on__year": "2022"},
        {"status__exact": "bogus"},
        {"mine": "perhaps"},
        {"p": "999"},
        {"o": "99.x"},
        {"last_activity_at__gte": "yesterday"},
        {"q": "\x00"},
    ],
)
def test_a_bad_filter_value_is_a_message_never_an_error_page(staff, confidential, params):
    response = listing(staff, **params)
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 302:
        page = staff.get(response.url)
        assert page.status_code == 200
        assert "cannot be filtered by" in page.content.decode()
        assert "Database error" not in page.content.decode()


def test_the_mine_filter_lists_what_i_am_case_officer_of_or_my_teams_work_on(django_user_model, public_negotiation, confidential):
    desk = Team.objects.create(name="Gulf desk")
    me = django_user_model.objects.create_user(username="me", is_staff=True)
    me.groups.add(Group.objects.get(name="Editor"))
    desk.members.add(me)
    officer_of = NegotiationFactory(title="Mine as officer", case_officer=me)
    of_my_team = NegotiationFactory(title="My team's", teams=[desk])
    client = Client()
    client.force_login(me)
    shown = set(listing(client, mine="yes").context["cl"].result_list)
    assert shown == {officer_of, of_my_team}
    board = client.get(reverse("admin:index")).content.decode()
    mine = board[board.index('id="my-work"') : board.index('id="attention"')]
    assert "Mine as officer" in mine and "My team&#x27;s" in mine and public_negotiation.reference not in mine
    assert "?mine=yes" in mine


def test_acknowledged_flags_no_longer_ring_the_dashboards_alarm(staff, staff_user):
    NegotiationFactory(title="Silent", opened_on=timezone.localdate() - timedelta(days=90))
    scan_stalls()
    page = staff.get(reverse("admin:index")).content.decode()
    assert re.search(r'class="alarm"><strong>1</strong> stalled negotiation flagged', page)
    from tracker.models import Flag

    services_flag = __import__("tracker.services", fromlist=["flag_acknowledge"])
    services_flag.flag_acknowledge(flag=Flag.objects.get(), actor=staff_user)
    page = staff.get(reverse("admin:index")).content.decode()
    assert re.search(r'class=""><strong>1</strong> stalled negotiation flagged', page)


def test_counts_use_the_languages_plural_forms(staff):
    for days in (1, 3, 5, 21):
        NegotiationFactory(title=f"Silent {days}", opened_on=timezone.localdate() - timedelta(days=90))
    scan_stalls()
    page = staff.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<strong>4</strong> stalled negotiations flagged" in page
    with translation.override("uk"):
        from django.utils.translation import ngettext

        forms = {n: ngettext("%(n)d client revoked.", "%(n)d clients revoked.", n) % {"n": n} for n in (1, 3, 5, 21)}
    assert [forms[n].split()[-1] for n in (1, 3, 5, 21)] == ["клієнт.", "клієнти.", "клієнтів.", "клієнт."], forms


def test_dates_read_year_month_day_in_every_language(staff, confidential):
    url = reverse("admin:exchanges_negotiation_change", args=[confidential.pk])
    opened = confidential.opened_on.isoformat()
    for language in ("en", "uk", "fr"):
        page = staff.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert f'value="{opened}"' in page, language  # the date field, typed year first
        last = confidential.last_activity_at.strftime("%Y-%m-%d %H:%M")
        assert last in page, language


def test_the_404_page_is_translated_and_carries_the_request_id(client):
    response = client.get("/admin-nothing-here/", HTTP_ACCEPT_LANGUAGE="uk", HTTP_X_REQUEST_ID="req-12345678")
    assert response.status_code == 404
    page = response.content.decode()
    assert "req-12345678" in page and 'lang="uk"' in page and "Page not found" not in page


def test_the_500_page_is_translated_carries_the_request_id_and_logs_it(staff, monkeypatch, caplog):
    from exchanges.admin import NegotiationAdmin

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(NegotiationAdmin, "get_queryset", broken)
    staff.raise_request_exception = False
    response = staff.get(reverse("admin:exchanges_negotiation_changelist"), HTTP_ACCEPT_LANGUAGE="fr", HTTP_X_REQUEST_ID="req-87654321")
    assert response.status_code == 500
    page = response.content.decode()
    assert "req-87654321" in page and 'lang="fr"' in page and "Something went wrong" not in page
    assert any("req-87654321" in record.getMessage() for record in caplog.records)


def _rect_widths(svg):
    return [float(width) for width in re.findall(r'<rect [^>]*width="([\d.]+)"', str(svg))]


def test_the_timeline_draws_no_segment_of_no_width_and_shows_the_final_status(confidential):
    now = timezone.now()
    services.negotiation_change_status(negotiation=confidential, to_status="in_talks", actor=None, occurred_at=now - timedelta(days=10))
    services.negotiation_change_status(negotiation=confidential, to_status="collapsed", actor=None, occurred_at=now - timedelta(days=2))
    confidential.refresh_from_db()
    changes = list(confidential.status_changes.order_by("sequence"))
    with translation.override("en"):
        svg = charts.negotiation_timeline(confidential, changes=changes, events=[], now=now)
    widths = _rect_widths(svg)
    assert len(widths) == 3 and min(widths) > 1.5, widths  # proposed, in talks, collapsed
    assert widths[-1] >= 10 and "Collapsed:" in str(svg)  # the final status is seen, not a sliver


def test_pages_are_compressed_and_the_javascript_catalog_is_cached(staff, confidential):
    url = reverse("admin:exchanges_negotiation_change", args=[confidential.pk])
    response = staff.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert response["Content-Encoding"] == "gzip"
    html = gzip.decompress(response.content)
    assert b'id="case-file"' in html
    assert len(response.content) < 25_000, len(response.content)  # the case file on the wire
    catalog = staff.get(reverse("admin:jsi18n"))
    assert catalog.status_code == 200 and "max-age=86400" in catalog["Cache-Control"]
    again = staff.get(reverse("admin:jsi18n"), HTTP_IF_NONE_MATCH=catalog["ETag"])
    assert again.status_code == 304
    in_ukrainian = staff.get(reverse("admin:jsi18n"), HTTP_ACCEPT_LANGUAGE="uk", HTTP_IF_NONE_MATCH=catalog["ETag"])
    assert in_ukrainian.status_code == 200  # another language, another catalog
