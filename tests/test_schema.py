"""The OpenAPI schema documents the contract's paths and validates."""
import pytest
import yaml  # noqa: F401  (installed with drf-spectacular)
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in (
        "/api/v1/parties/",
        "/api/v1/detainee-groups/",
        "/api/v1/detainee-groups/{group_pk}/figures/",
        "/api/v1/negotiations/",
        "/api/v1/negotiations/{negotiation_pk}/status-changes/",
        "/api/v1/negotiations/{negotiation_pk}/events/",
    ):
        assert f"{path}:" in text, path
    assert "bearerAuth" in text
