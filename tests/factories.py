"""Factories for the record. Negotiations go through the services, like every writer."""
from datetime import date

import factory

from exchanges import services
from exchanges.models import DetaineeGroup, Negotiation, Party, ReportedFigure


class PartyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Party

    name = factory.Sequence(lambda n: f"Party {n}")
    short_name = factory.Sequence(lambda n: f"P{n}")
    kind = "state"
    country = None


class DetaineeGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DetaineeGroup

    name = factory.Sequence(lambda n: f"Group {n}")
    held_by = factory.SubFactory(PartyFactory)
    affiliated_with = factory.SubFactory(PartyFactory)
    category = "combatants"
    estimated_count = 100
    seriously_wounded_count = 10


class ReportedFigureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReportedFigure

    group = factory.SubFactory(DetaineeGroupFactory)
    metric = "total"
    value = 100
    reported_on = date(2022, 5, 17)


class NegotiationFactory(factory.Factory):
    """Builds through `services.negotiation_create`: `participants` is a list of (party, role)."""

    class Meta:
        model = Negotiation

    title = factory.Sequence(lambda n: f"Negotiation {n}")
    priority = "routine"
    visibility = "participants"
    opened_on = date(2022, 5, 6)

    @classmethod
    def _create(cls, model_class, *, participants=(), groups=(), actor=None, **fields):
        return services.negotiation_create(
            actor=actor,
            participants=[{"party": party, "role": role} for party, role in participants],
            groups=[{"group": group, "proposed_count": None, "released_count": None} for group in groups],
            **fields,
        )
