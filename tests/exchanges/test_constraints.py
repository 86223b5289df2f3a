"""What the database itself refuses, whatever code tries to write."""
import pytest
from django.db import IntegrityError, transaction

from exchanges.models import DetaineeGroup, Participant, ReportedFigure
from tests.factories import DetaineeGroupFactory, NegotiationFactory, PartyFactory

pytestmark = pytest.mark.django_db


def refuses(write):
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


def test_wounded_above_the_estimate_is_refused_by_the_database():
    group = DetaineeGroupFactory(estimated_count=10, seriously_wounded_count=5)
    refuses(lambda: DetaineeGroup.objects.filter(pk=group.pk).update(seriously_wounded_count=11))
    group.refresh_from_db()
    assert group.seriously_wounded_count == 5


def test_negative_counts_are_refused_by_the_database():
    group = DetaineeGroupFactory()
    refuses(lambda: DetaineeGroup.objects.filter(pk=group.pk).update(estimated_count=-1))
    refuses(lambda: ReportedFigure.objects.create(group=group, metric="total", value=-5, reported_on="2022-05-01"))


def test_one_role_per_party_per_negotiation():
    party = PartyFactory()
    negotiation = NegotiationFactory(participants=[(party, "side")])
    refuses(lambda: Participant.objects.create(negotiation=negotiation, party=party, role="observer"))


def test_short_names_are_unique_when_given_but_may_be_empty_for_many():
    PartyFactory(short_name="")
    PartyFactory(short_name="")
    PartyFactory(short_name="UN")
    refuses(lambda: PartyFactory(short_name="UN"))


def test_a_country_must_be_two_capital_letters():
    refuses(lambda: PartyFactory(country="ua"))
