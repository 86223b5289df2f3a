"""Parties have aliases (other names, abbreviations, spellings in any script) and search
finds a party by any of them."""
import pytest

from exchanges.models import Party

pytestmark = pytest.mark.django_db


def test_a_party_is_found_by_any_of_its_aliases(ukraine, make_api):
    api = make_api(ukraine)
    created = api.post(
        "/api/v1/parties/", {"name": "United Arab Emirates", "kind": "state", "country": "AE", "aliases": [" UAE ", "Emirates", "ОАЕ", "uae"]}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["aliases"] == ["UAE", "Emirates", "ОАЕ"]  # trimmed, the same name once
    for term in ("UAE", "emirates", "ОАЕ", "Arab"):
        found = api.get("/api/v1/parties/", {"search": term}).json()["results"]
        assert [party["name"] for party in found] == ["United Arab Emirates"], term
    assert api.get("/api/v1/parties/", {"search": "Qatar"}).json()["results"] == []


@pytest.mark.parametrize("aliases", [["x" * 201], [""], "UAE", [None], [["nested"]], [f"n{i}" for i in range(51)]])
def test_bad_aliases_get_400_and_nothing_is_written(ukraine, make_api, aliases):
    response = make_api(ukraine).post("/api/v1/parties/", {"name": "New state", "kind": "state", "aliases": aliases}, format="json")
    assert response.status_code == 400 and "aliases" in response.json()
    assert not Party.objects.filter(name="New state").exists()


def test_staff_edit_aliases_one_per_line_in_the_admin(client, staff_user, ukraine):
    from django.urls import reverse

    client.force_login(staff_user)
    url = reverse("admin:exchanges_party_change", args=[ukraine.pk])
    response = client.post(url, {"name": ukraine.name, "short_name": "UA", "kind": "state", "country": "UA", "aliases": "Ukraine\nУкраїна\n\n"})
    assert response.status_code == 302, response.content.decode()[:2000]
    ukraine.refresh_from_db()
    assert ukraine.aliases == ["Ukraine", "Україна"]
    assert "Україна" in client.get(url).content.decode()
    assert client.get(reverse("admin:exchanges_party_changelist"), {"q": "Україна"}).context["cl"].result_count == 1
