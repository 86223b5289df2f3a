"""Reported figures are claims: kept side by side, never overwritten, the dispute visible."""
import pytest

pytestmark = pytest.mark.django_db


def test_both_sides_claims_are_kept_and_the_summary_shows_the_dispute(ukraine, russia, garrison, make_api):
    api = make_api(ukraine)
    url = f"/api/v1/detainee-groups/{garrison.pk}/figures/"
    claims = [
        {"metric": "total", "value": 1730, "source_party": str(russia.pk), "source": "Russian MoD briefing", "reported_on": "2022-05-19", "reliability": "disputed"},
        {"metric": "total", "value": 265, "source_party": str(ukraine.pk), "source": "General Staff", "reported_on": "2022-05-17"},
        {"metric": "seriously_wounded", "value": 52, "source_party": str(ukraine.pk), "reported_on": "2022-05-17"},
    ]
    for claim in claims:
        response = api.post(url, claim, format="json")
        assert response.status_code == 201, response.content
    assert response.json()["reliability"] == "unverified"
    listed = api.get(url).json()["results"]
    assert sorted(f["value"] for f in listed) == [52, 265, 1730]
    summary = api.get(f"/api/v1/detainee-groups/{garrison.pk}/").json()["figures_summary"]
    assert summary["total"] == {"lowest": 265, "highest": 1730, "reports": 2, "sources": 2, "disputed": True}
    assert summary["seriously_wounded"] == {"lowest": 52, "highest": 52, "reports": 1, "sources": 1, "disputed": False}
    assert api.get("/api/v1/detainee-groups/", {"search": "Azovstal"}).json()["results"][0]["figures_summary"] == summary


def test_a_claim_cannot_be_overwritten_but_its_assessment_can_change(ukraine, russia, garrison, make_api):
    api = make_api(ukraine)
    url = f"/api/v1/detainee-groups/{garrison.pk}/figures/"
    figure = api.post(url, {"metric": "total", "value": 1730, "source_party": str(russia.pk), "reported_on": "2022-05-19"}, format="json").json()
    refused = api.patch(f"{url}{figure['id']}/", {"value": 265}, format="json")
    assert refused.status_code == 400 and "value" in refused.json()
    assessed = api.patch(f"{url}{figure['id']}/", {"reliability": "disputed", "notes": "ICRC registered far fewer"}, format="json")
    assert assessed.status_code == 200
    assert assessed.json()["value"] == 1730 and assessed.json()["reliability"] == "disputed"
    assert api.put(f"{url}{figure['id']}/", {"value": 1}, format="json").status_code == 405


def test_only_the_recording_party_withdraws_a_claim_and_the_trail_keeps_it(ukraine, russia, garrison, make_api):
    from exchanges.models import AuditEntry, ReportedFigure

    url = f"/api/v1/detainee-groups/{garrison.pk}/figures/"
    figure = make_api(russia).post(url, {"metric": "total", "value": 1730, "reported_on": "2022-05-19"}, format="json").json()
    assert figure["recorded_by_party"] == str(russia.pk)
    refused = make_api(ukraine).delete(f"{url}{figure['id']}/")
    assert refused.status_code == 403 and "recorded" in refused.json()["detail"]
    assert make_api(russia).delete(f"{url}{figure['id']}/").status_code == 204
    assert not ReportedFigure.objects.filter(pk=figure["id"]).exists()
    withdrawn = AuditEntry.objects.get(model="exchanges.reportedfigure", object_id=figure["id"], action="delete")
    assert withdrawn.changes["value"] == [1730, None]


def test_a_figure_read_through_another_group_is_404(ukraine, garrison, make_api):
    from tests.factories import DetaineeGroupFactory, ReportedFigureFactory

    figure = ReportedFigureFactory(group=garrison)
    other = DetaineeGroupFactory()
    assert make_api(ukraine).get(f"/api/v1/detainee-groups/{other.pk}/figures/{figure.pk}/").status_code == 404


def test_parties_and_groups_can_be_created_and_read(ukraine, make_api):
    api = make_api(ukraine)
    party = api.post("/api/v1/parties/", {"name": "Republic of T\u00fcrkiye", "kind": "state", "country": "tr"}, format="json")
    assert party.status_code == 201 and party.json()["country"] == "TR" and party.json()["short_name"] == ""
    minimal = api.post("/api/v1/parties/", {"name": "Donetsk authorities", "kind": "de_facto_authority"}, format="json").json()
    assert minimal["country"] is None
    group = api.post(
        "/api/v1/detainee-groups/",
        {"name": "Medics", "held_by": minimal["id"], "affiliated_with": str(ukraine.pk), "category": "medical_personnel"},
        format="json",
    )
    assert group.status_code == 201, group.content
    assert group.json()["estimated_count"] is None and group.json()["figures_summary"] == {}
    assert api.get("/api/v1/parties/", {"kind": "de_facto_authority"}).json()["results"][0]["id"] == minimal["id"]


def test_a_groups_etag_and_updated_at_move_when_its_figures_do(ukraine, russia, garrison, make_api):
    api = make_api(russia)
    group_url = f"/api/v1/detainee-groups/{garrison.pk}/"
    first = api.get(group_url)
    tag, stamp = first["ETag"], first.json()["updated_at"]
    figure = api.post(f"{group_url}figures/", {"metric": "total", "value": 1730, "reported_on": "2022-05-19"}, format="json").json()
    assert api.get(group_url, HTTP_IF_NONE_MATCH=tag).status_code == 200  # not a stale 304
    after_claim = api.get(group_url)
    assert after_claim.json()["figures_summary"]["total"]["highest"] == 1730 and after_claim.json()["updated_at"] > stamp
    synced = api.get("/api/v1/detainee-groups/", {"updated_since": after_claim.json()["updated_at"]}).json()["results"]
    assert [row["id"] for row in synced] == [str(garrison.pk)]
    api.patch(f"{group_url}figures/{figure['id']}/", {"reliability": "disputed"}, format="json")
    assert api.get(group_url)["ETag"] != after_claim["ETag"]
    tag = api.get(group_url)["ETag"]
    assert api.delete(f"{group_url}figures/{figure['id']}/").status_code == 204
    assert api.get(group_url)["ETag"] != tag


def test_a_figure_patched_back_as_read_is_accepted(russia, garrison, make_api):
    api = make_api(russia)
    url = f"/api/v1/detainee-groups/{garrison.pk}/figures/"
    figure = api.post(url, {"metric": "total", "value": 1730, "reported_on": "2022-05-19"}, format="json").json()
    body = {name: value for name, value in figure.items() if name not in ("id", "group", "created_at", "updated_at", "recorded_by_party")}
    response = api.patch(f"{url}{figure['id']}/", {**body, "reliability": "disputed"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["reliability"] == "disputed"
    changed = api.patch(f"{url}{figure['id']}/", {**body, "reported_on": "2022-05-20"}, format="json")
    assert changed.status_code == 400 and "reported_on" in changed.json()
