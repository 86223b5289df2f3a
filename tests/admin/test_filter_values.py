"""A filter value no filter offers (typed, pasted, from an old link) is a message naming
the filter as staff know it, and the list without it: never an empty or unfiltered list
that looks like an answer."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize(
    "url_name, params, label",
    [
        ("admin:exchanges_negotiation_changelist", {"status": "nonsense"}, "status"),
        ("admin:exchanges_negotiation_changelist", {"status__exact": "nonsense"}, "status"),
        ("admin:exchanges_negotiation_changelist", {"status__in": "agreed,nonsense"}, "status"),
        ("admin:exchanges_negotiation_changelist", {"priority": "zzz"}, "priority"),
        ("admin:exchanges_negotiation_changelist", {"visibility": "x"}, "visibility"),
        ("admin:exchanges_negotiation_changelist", {"stalled": "maybe"}, "stalled"),
        ("admin:exchanges_negotiation_changelist", {"next_step": "bad"}, "next step"),
        ("admin:tracker_flag_changelist", {"level": "zz"}, "level"),
        ("admin:exchanges_auditentry_changelist", {"action": "bad"}, "action"),
        ("admin:exchanges_auditentry_changelist", {"actor_type": "bad"}, "actor type"),
    ],
)
def test_a_value_no_filter_offers_is_named_and_the_list_shown_without_it(staff, url_name, params, label):
    url = reverse(url_name)
    response = staff.get(url, {**params, "q": "", "o": "1"})
    assert response.status_code == 302
    assert all(name not in response.url for name in params)
    assert "o=1" in response.url  # the sort is kept
    page = staff.get(response.url).content.decode()
    assert "cannot be filtered by" in page and label in page.lower()


def test_values_the_filters_offer_are_applied(staff, confidential, public_negotiation):
    url = reverse("admin:exchanges_negotiation_changelist")
    for params in ({"status__exact": confidential.status}, {"stalled": "no"}, {"next_step": "none"}, {"status__in": "agreed,in_talks"}):
        response = staff.get(url, params)
        assert response.status_code == 200, params


def test_an_export_with_a_bad_filter_goes_back_to_the_list_that_names_it(staff):
    url = reverse("admin:exchanges_negotiation_changelist")
    response = staff.get(url + "export.csv", {"status": "nonsense"}, follow=True)
    page = response.content.decode()
    assert "cannot be filtered by" in page and "status" in page.lower()
    assert "filtered by ?" not in page


def test_the_trail_says_who_acted_and_how_in_words_in_each_language(client, staff_user, make_api, ukraine, public_negotiation):
    import re

    from django.utils import timezone

    client.force_login(staff_user)
    answer = client.post(
        reverse("admin:exchanges_negotiation_change_status", args=[public_negotiation.pk]),
        {"to_status": "in_talks", "occurred_at": timezone.localtime().strftime("%Y-%m-%d %H:%M:%S.%f")},
    )
    assert answer.status_code == 302, re.findall("errorlist[^<]*<li>([^<]*)", answer.content.decode())
    api = make_api(ukraine)
    api.post(f"/api/v1/negotiations/{public_negotiation.pk}/status-changes/", {"to_status": "agreed_in_principle"}, format="json")
    url = reverse("admin:exchanges_auditentry_changelist")
    cells = lambda page, name: set(re.findall(rf'<td class="field-{name}">([^<]*)</td>', page))  # noqa: E731
    page = client.get(url, {"model": "exchanges.statuschange"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert cells(page, "actor_kind") == {"staff login", "API client"}
    assert cells(page, "via") == {"admin", "API"}
    page = client.get(url, {"model": "exchanges.statuschange"}, HTTP_ACCEPT_LANGUAGE="uk").content.decode()
    assert "staff login" not in cells(page, "actor_kind") and "фонове завдання" in page


def test_the_sites_bare_address_leads_to_the_admin(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url == reverse("admin:index")
