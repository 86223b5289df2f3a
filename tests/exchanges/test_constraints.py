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


def test_handovers_and_transfers_are_held_by_the_database(ukraine, russia, icrc, outsider):
    from datetime import date

    from django.db import connection

    from exchanges.models import Commitment, Handover, Transfer

    negotiation = NegotiationFactory(participants=[(ukraine, "side"), (russia, "side")])
    refuses(lambda: Handover.objects.create(negotiation=negotiation, sequence=1, state="done"))  # done without a date
    refuses(lambda: Handover.objects.create(negotiation=negotiation, sequence=1, state="finished"))
    handover = Handover.objects.create(negotiation=negotiation, sequence=1, state="done", occurred_on=date(2022, 6, 1))
    refuses(lambda: Handover.objects.create(negotiation=negotiation, sequence=1, state="planned"))  # one sequence
    pair = {"handover": handover, "negotiation": negotiation, "from_party": ukraine, "to_party": russia}
    refuses(lambda: Transfer.objects.create(**{**pair, "to_party": ukraine}))  # to itself
    refuses(lambda: Transfer.objects.create(**pair, released_count=-1))
    refuses(lambda: Transfer.objects.create(**pair, released_count=5, seriously_wounded_count=6))
    refuses(lambda: Transfer.objects.create(**pair, planned_count=5, civilians_count=6))
    refuses(lambda: Commitment.objects.create(negotiation=negotiation, party=ukraine, count=5, seriously_wounded_count=6))
    if connection.vendor != "postgresql":
        return
    # Deferred to commit (participants are replaced within a transaction); checked here at once.
    def immediately(write):
        def run():
            write()
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        refuses(run)

    immediately(lambda: Transfer.objects.create(**{**pair, "to_party": outsider}))  # does not take part
    immediately(lambda: Commitment.objects.create(negotiation=negotiation, party=icrc, count=1))
    other = NegotiationFactory(participants=[(ukraine, "side"), (russia, "side")])
    immediately(lambda: Transfer.objects.create(**{**pair, "negotiation": other}))  # not its handover's negotiation
    Transfer.objects.create(**pair)

    def remove_russia():
        Participant.objects.filter(negotiation=negotiation, party=russia).delete()

    immediately(remove_russia)  # a party with transfers stays among the participants
