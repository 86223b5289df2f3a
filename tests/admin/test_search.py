"""The admin's search boxes: an exact reference or id answers at once, words match titles,
names and aliases by substring (any length), and nothing a login may not see is found.
On PostgreSQL the searches read the indexes of migrations exchanges 0020 and tracker 0012."""
import itertools

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.urls import reverse

from exchanges import services
from exchanges.admin import counts
from exchanges.admin import search as search_module
from exchanges.models import AuditEntry, Negotiation, StatusChange, Team
from tests.factories import NegotiationFactory, PartyFactory

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def login(django_user_model):
    def make(role, *, teams=()):
        user = django_user_model.objects.create_user(username=f"searcher-{next(_numbers)}", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        for team in teams:
            team.members.add(user)
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def team(db):
    return Team.objects.create(name="Protection unit")


@pytest.fixture
def hidden(team, ukraine):
    """A staff-only negotiation of the Protection unit, with a status change."""
    negotiation = NegotiationFactory(
        title="Quiet channel via Oman", summary="Kept to the unit", visibility="staff_only", teams=[team],
        participants=[(ukraine, "side")],
    )  # fmt: skip
    services.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None)
    return negotiation


def found(client, model, term, **params):
    response = client.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"), {"q": term, **params})
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def test_a_negotiation_is_found_by_its_exact_reference_in_any_case_and_by_part_of_it(staff):
    first, second = NegotiationFactory(title="First"), NegotiationFactory(title="Second")
    assert found(staff, Negotiation, first.reference) == [first]
    assert found(staff, Negotiation, f"  {first.reference.lower()} ") == [first]
    shared = first.reference[: first.reference.rindex("-") + 1]  # "NEG-2026-"
    assert set(found(staff, Negotiation, shared)) == {first, second}


def test_a_quoted_phrase_finds_the_phrase_in_one_column_not_its_words_apart(staff):
    """A title pasted whole: found by its words from their indexes, checked whole."""
    wanted = NegotiationFactory(title="Bench negotiation 518188", summary="")
    NegotiationFactory(title="Bench negotiation 5181880", summary="")  # holds the phrase too
    NegotiationFactory(title="Negotiation at the bench 518188", summary="")  # the words, not the phrase
    NegotiationFactory(title="Bench talks", summary="a negotiation, 518188")  # the words across columns
    assert {n.title for n in found(staff, Negotiation, '"bench NEGOTIATION 518188"')} == {wanted.title, "Bench negotiation 5181880"}
    assert found(staff, Negotiation, '"negotiation 518188"') and found(staff, Negotiation, '"ch negotiation 51"')
    assert found(staff, Negotiation, '"no such phrase"') == []
    phrase_in_summary = NegotiationFactory(title="Other", summary="Lists handed over at the Sea of Azov")
    assert found(staff, Negotiation, '"Sea of Azov"') == [phrase_in_summary]
    assert len(found(staff, StatusChange, '"Bench negotiation 518188"')) == 0  # through the negotiation: none recorded
    services.negotiation_change_status(negotiation=wanted, to_status="in_talks", actor=None)
    assert [change.negotiation for change in found(staff, StatusChange, '"bench negotiation 518188"')] == [wanted]


def test_a_negotiation_is_found_by_its_id(staff):
    wanted = NegotiationFactory(title="Wanted")
    NegotiationFactory(title="Other")
    assert found(staff, Negotiation, str(wanted.pk)) == [wanted]
    assert found(staff, Negotiation, str(wanted.pk).upper()) == [wanted]


def test_a_negotiation_is_found_by_words_of_its_title_or_summary_or_its_parties_names(staff, confidential, public_negotiation):
    emirates = PartyFactory(name="United Arab Emirates", short_name="AE", aliases=["UAE", "الإمارات"])
    mediated = NegotiationFactory(title="Gulf-mediated swap", summary="Lists exchanged in Abu Dhabi", participants=[(emirates, "mediator")])
    assert found(staff, Negotiation, "ounded fo") == [confidential]  # part of a word, across words
    assert found(staff, Negotiation, "wounded WOUNDED for") == [confidential]  # every word, case aside
    assert found(staff, Negotiation, "abu dhabi") == [mediated]
    assert found(staff, Negotiation, "Emirates") == [mediated]
    assert found(staff, Negotiation, "الإمارات") == [mediated]
    assert set(found(staff, Negotiation, "Ukraine")) == {confidential, public_negotiation}
    assert found(staff, Negotiation, "no such words") == []


def test_a_party_search_counts_each_negotiation_once_within_the_filters_and_what_the_login_sees(login, team, ukraine, staff, monkeypatch):
    omani = PartyFactory(name="Sultanate of Oman", short_name="OM")
    both = NegotiationFactory(title="Oman channel", participants=[(omani, "mediator")])  # by title and by party
    crescent = PartyFactory(name="Oman Red Crescent", short_name="ORC")  # a second party the term finds
    muscat = NegotiationFactory(title="Via Muscat", participants=[(omani, "mediator"), (crescent, "observer")])
    services.negotiation_change_status(negotiation=muscat, to_status="in_talks", actor=None)
    NegotiationFactory(title="Oman, second channel")
    NegotiationFactory(title="Elsewhere")
    NegotiationFactory(title="Oman, staff only", visibility="staff_only", teams=[team], participants=[(omani, "mediator")])
    outsider, member = login("Viewer"), login("Viewer", teams=[team])
    url = reverse("admin:exchanges_negotiation_changelist")

    def counted(client, **params):
        response = client.get(url, {"q": "Oman", **params})
        assert response.status_code == 200
        return response.context["cl"].result_count, len(response.context["cl"].result_list)

    assert counted(outsider) == (3, 3)
    assert counted(member) == (4, 4)
    assert counted(member, status__exact="in_talks") == (1, 1)
    assert counted(staff) == (4, 4)  # a superuser: nothing narrows the list (the count reads no filter)
    monkeypatch.setattr(counts, "CAP", 2)  # past the cap, either part alone says "more than"
    response = staff.get(url, {"q": "Oman"})
    assert response.context["cl"].paginator.approximate and "more than 2" in response.content.decode()
    assert both in found(outsider, Negotiation, "oman")


def test_a_term_of_one_or_two_characters_finds_the_words_it_starts(staff, ukraine):
    swap = NegotiationFactory(title="Swap of 12 medics")
    NegotiationFactory(title="Swap of medics")
    NegotiationFactory(title="Swap of 412 medics")  # "12" inside a word: not found
    ua = NegotiationFactory(title="UA-RU talks (ua) on the «Ua» list")
    uae = NegotiationFactory(title="Talks in the UAE")
    guam = NegotiationFactory(title="Guam")
    assert found(staff, Negotiation, "12") == [swap]
    assert found(staff, Negotiation, "x") == []
    assert set(found(staff, Negotiation, "ua")) == {ua, uae}
    assert set(found(staff, Negotiation, "UA")) == {ua, uae}
    assert found(staff, Negotiation, "G") == [guam]
    assert found(staff, Negotiation, "guam") != []  # three characters: any substring again
    assert found(staff, Negotiation, "uam") != []
    services.negotiation_change_status(negotiation=swap, to_status="in_talks", actor=None)
    assert [row.negotiation for row in found(staff, StatusChange, "12")] == [swap]


def test_a_search_never_finds_a_negotiation_the_login_may_not_see(login, team, hidden):
    outsider, member = login("Viewer"), login("Viewer", teams=[team])
    for term in (hidden.reference, str(hidden.pk), "Oman", "to the unit", "Ukraine"):
        assert found(outsider, Negotiation, term) == [], term
        assert found(member, Negotiation, term) == [hidden], term
    for term in (hidden.reference, str(hidden.pk), "Oman"):
        assert found(outsider, StatusChange, term) == [], term
        assert [change.negotiation for change in found(member, StatusChange, term)] == [hidden], term


def test_the_lists_of_a_negotiations_records_are_searched_by_its_reference_id_or_title(staff, confidential, public_negotiation):
    services.negotiation_change_status(negotiation=confidential, to_status="in_talks", actor=None, note="Lists checked by phone")
    services.negotiation_change_status(negotiation=public_negotiation, to_status="in_talks", actor=None)
    for term in (confidential.reference, str(confidential.pk), "Wounded for", "by phone"):
        assert [change.negotiation for change in found(staff, StatusChange, term)] == [confidential], term


def test_a_word_matching_more_negotiations_than_are_listed_is_still_searched_completely(staff, monkeypatch):
    many = [NegotiationFactory(title=f"Common word {index}") for index in range(3)]
    for negotiation in many:
        services.negotiation_change_status(negotiation=negotiation, to_status="in_talks", actor=None)
    monkeypatch.setattr(search_module, "RELATED_IDS", 2)  # more match than are passed as a list: a subquery
    assert {change.negotiation for change in found(staff, StatusChange, "common")} == set(many)


def test_the_audit_trail_is_searched_by_entry_id_record_id_negotiation_id_and_words(login, team, hidden, public_negotiation):
    auditor, outsider = login("Auditor", teams=[team]), login("Auditor")
    change = StatusChange.objects.get(negotiation=hidden)
    entry = AuditEntry.objects.get(model="exchanges.statuschange", object_id=str(change.pk))
    assert entry in found(auditor, AuditEntry, str(entry.pk))  # a number also matches text ("NEG-2022-0002")
    assert found(auditor, AuditEntry, str(change.pk)) == [entry]
    by_negotiation = found(auditor, AuditEntry, str(hidden.pk))
    assert entry in by_negotiation and {row.negotiation_id for row in by_negotiation} == {hidden.pk}
    assert {row.negotiation_id for row in found(auditor, AuditEntry, "Oman")} == {hidden.pk}
    for term in (str(entry.pk), str(change.pk), str(hidden.pk), "Oman"):
        assert hidden.pk not in {row.negotiation_id for row in found(outsider, AuditEntry, term)}, term


def test_the_search_of_negotiations_adds_no_distinct(staff, confidential):
    response = staff.get(reverse("admin:exchanges_negotiation_changelist"), {"q": "ICRC"})
    changelist = response.context["cl"]
    assert list(changelist.result_list) == [confidential]
    assert not changelist.queryset.query.distinct


postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the indexes are PostgreSQL's (pg_trgm)")


def plan(queryset):
    """The plan PostgreSQL chooses with sequential scans priced out (a test table is tiny)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        try:
            return queryset.explain()
        finally:
            cursor.execute("SET LOCAL enable_seqscan = on")


@postgresql_only
def test_on_postgresql_a_title_word_reads_the_trigram_index(staff, confidential):
    spec = admin.site._registry[Negotiation].search
    explained = plan(search_module.search(Negotiation.objects.all(), spec, "Wounded")[0].order_by())
    assert "negotiation_title_trgm" in explained, explained
    assert "negotiation_reference_trgm" in explained and "negotiation_summary_trgm" in explained, explained


@postgresql_only
def test_on_postgresql_a_two_letter_word_is_answered_by_the_trigram_index_alone(staff, confidential):
    """Not a walk through every entry of the index with each row checked again (what
    `~ '\\mUA'` or a substring of two letters gets): nothing is rechecked and dropped."""
    NegotiationFactory(title="Talks in Guam")
    spec = admin.site._registry[Negotiation].search
    queryset = search_module.search(Negotiation.objects.all(), spec, "ZQ")[0].order_by()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        explained = queryset.explain(analyze=True)
        cursor.execute("SET LOCAL enable_seqscan = on")
    assert "negotiation_title_trgm" in explained, explained
    assert "Rows Removed by Index Recheck" not in explained and "Rows Removed by Filter" not in explained, explained


@postgresql_only
def test_on_postgresql_the_audit_trail_finds_an_id_from_indexes(staff, public_negotiation):
    spec = admin.site._registry[AuditEntry].search
    explained = plan(search_module.search(AuditEntry.objects.all(), spec, str(public_negotiation.pk))[0].order_by())
    assert "audit_object_id" in explained and "Seq Scan" not in explained, explained
    words = plan(search_module.search(AuditEntry.objects.all(), spec, "All-for-all")[0].order_by())
    assert "audit_object_repr_trgm" in words, words
