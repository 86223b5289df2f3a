"""English, Ukrainian and French: every string of the project's own is translated, and
the admin and the API's errors speak the language the user chose."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation

from exchanges.choices import NegotiationStatus
from tests.conftest import services_required

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ["uk", "fr"]


def _gettext_tools():
    if shutil.which("xgettext") and shutil.which("msgfmt"):
        return True
    if services_required():
        pytest.fail("gettext is not installed (apt-get install gettext)")
    pytest.skip("gettext is not installed (apt-get install gettext)")


def test_every_string_in_the_code_is_translated_into_every_language(tmp_path):
    """Extract the strings from the code as it is now (a copy, so nothing here changes) and
    merge them into the committed catalogues: nothing may come out new, fuzzy or empty."""
    _gettext_tools()
    for name in ("config", "exchanges", "tracker", "locale"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "TRACKER_VAR_DIR": str(tmp_path / "var")}
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", *[f"-l{code}" for code in LANGUAGES], "--no-obsolete", "--add-location=file"],
        cwd=tmp_path, env=env, check=True, capture_output=True,
    )
    for code in LANGUAGES:
        catalogue = tmp_path / "locale" / code / "LC_MESSAGES" / "django.po"
        untranslated = subprocess.run(["msgattrib", "--untranslated", "--no-wrap", str(catalogue)], capture_output=True, text=True, check=True).stdout
        fuzzy = subprocess.run(["msgattrib", "--only-fuzzy", "--no-wrap", str(catalogue)], capture_output=True, text=True, check=True).stdout
        missing = [line for line in (untranslated + fuzzy).splitlines() if line.startswith("msgid ") and line != 'msgid ""']
        assert not missing, f"{code}: untranslated or fuzzy (run `make messages` and translate): {missing}"


@pytest.mark.parametrize("code", LANGUAGES)
def test_the_compiled_catalogues_match_their_sources(code, tmp_path):
    _gettext_tools()
    source = ROOT / "locale" / code / "LC_MESSAGES" / "django.po"
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", str(compiled), str(source)], check=True)
    assert compiled.read_bytes() == source.with_suffix(".mo").read_bytes(), "run `make messages` to recompile"


def test_status_names_are_translated():
    with translation.override("uk"):
        assert str(NegotiationStatus.IN_TALKS.label) == "Триває обговорення"
    with translation.override("fr"):
        assert str(NegotiationStatus.IN_TALKS.label) == "En discussion"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language,expected",
    [("uk", "Переговори не можуть перейти"), ("fr", "Une négociation ne peut pas passer"), ("en", "A negotiation cannot move")],
)
def test_api_errors_follow_the_callers_accept_language(make_api, ukraine, confidential, language, expected):
    api = make_api(ukraine)
    response = api.post(
        f"/api/v1/negotiations/{confidential.pk}/status-changes/", {"to_status": "completed"}, format="json", HTTP_ACCEPT_LANGUAGE=language
    )
    assert response.status_code == 409 and response.json()["detail"].startswith(expected)
    assert response.json()["allowed"] == ["in_talks", "rejected", "collapsed"]  # codes stay codes


@pytest.mark.django_db
def test_api_field_errors_are_translated_too(make_api, ukraine):
    api = make_api(ukraine)
    unknown = api.post("/api/v1/negotiations/", {"title": "x", "colour": 1}, format="json", HTTP_ACCEPT_LANGUAGE="fr")
    assert unknown.status_code == 400 and unknown.json()["colour"] == ["Champ inconnu."]
    future = api.post("/api/v1/negotiations/", {"title": "x", "opened_on": "2999-01-01"}, format="json", HTTP_ACCEPT_LANGUAGE="uk")
    assert future.status_code == 400 and future.json()["opened_on"] == ["Не може бути в майбутньому."]
    missing = api.post("/api/v1/negotiations/", {}, format="json", HTTP_ACCEPT_LANGUAGE="uk")
    assert missing.status_code == 400 and missing.json()["title"] == ["Це поле обов'язкове."]


@pytest.mark.django_db
def test_the_admin_switches_language_and_remembers_it(client, staff_user):
    client.force_login(staff_user)
    assert "What needs attention today" in client.get(reverse("admin:index")).content.decode()
    response = client.post(reverse("set_language"), {"language": "uk", "next": reverse("admin:index")})
    assert response.status_code == 302
    page = client.get(reverse("admin:index")).content.decode()
    assert "Що потребує уваги сьогодні" in page and 'lang="uk"' in page
    french = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="fr")
    assert "Що потребує уваги сьогодні" in french.content.decode()  # the switcher's choice wins over the browser


@pytest.mark.django_db
def test_the_admin_follows_the_browser_language_before_any_choice(client, staff_user):
    client.force_login(staff_user)
    page = client.get(reverse("admin:exchanges_negotiation_changelist"), HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").content.decode()
    assert "Exporter en CSV" in page and "Au point mort" in page
