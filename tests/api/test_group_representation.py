"""A detainee group's JSON is built directly (DetaineeGroupSerializer.to_representation, for
the speed of the list); it must stay exactly what DRF's fields would write."""
from datetime import date

import pytest
from rest_framework import serializers as drf

from exchanges.api.serializers import DetaineeGroupSerializer
from exchanges.models import DetaineeGroup

pytestmark = pytest.mark.django_db


def _through_the_fields(group):
    return drf.ModelSerializer.to_representation(DetaineeGroupSerializer(), group)


def test_a_group_with_every_field_and_disputed_figures_reads_as_drf_writes_it(ukraine, russia, garrison, make_api):
    api = make_api(ukraine)
    garrison.detained_since = date(2022, 5, 16)
    garrison.location = "Olenivka"
    garrison.estimated_count = 2439
    garrison.seriously_wounded_count = 52
    garrison.notes = "Évacués; “surrendered”"
    garrison.save()
    url = f"/api/v1/detainee-groups/{garrison.pk}/figures/"
    for claim in (
        {"metric": "total", "value": 1730, "source_party": str(russia.pk), "reported_on": "2022-05-19"},
        {"metric": "total", "value": 265, "source": "General Staff", "reported_on": "2022-05-17"},
        {"metric": "seriously_wounded", "value": 52, "source_party": str(ukraine.pk), "reported_on": "2022-05-17"},
    ):
        assert api.post(url, claim, format="json").status_code == 201
    created = api.post(
        "/api/v1/detainee-groups/", {"name": "Recorded by a client", "held_by": str(russia.pk), "affiliated_with": str(ukraine.pk), "category": "civilians"}, format="json"
    )
    assert created.status_code == 201, created.content
    listed = {row["id"]: row for row in api.get("/api/v1/detainee-groups/", {"page_size": 200}).json()["results"]}
    groups = DetaineeGroup.objects.prefetch_related("figures").filter(pk__in=[garrison.pk, created.json()["id"]])
    assert len(groups) == 2
    for group in groups:
        expected = _through_the_fields(group)
        assert DetaineeGroupSerializer().to_representation(group) == expected
        assert listed[str(group.pk)] == expected
        assert api.get(f"/api/v1/detainee-groups/{group.pk}/").json() == expected
    assert listed[created.json()["id"]]["recorded_by_party"] == str(ukraine.pk)
