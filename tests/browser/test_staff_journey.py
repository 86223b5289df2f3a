"""A staff member's day in a real browser: Debian's Chromium driven by Playwright against
the app served over HTTP (pytest-django's live server: the whole WSGI app, static files
included, on a real socket).

Log in, read the dashboard (kept as a screenshot), see a flag, change a status, switch to
Ukrainian and export a CSV in that language.
"""
import csv
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from exchanges.models import Negotiation
from tests.factories import DetaineeGroupFactory, NegotiationFactory, PartyFactory, ReportedFigureFactory
from tracker.services import scan_stalls

ARTIFACTS = Path(os.environ.get("TRACKER_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "var" / "test-artifacts"))

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True, locale="en-GB")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def record(transactional_db, django_user_model):
    """What a morning's dashboard is made of: a silent negotiation (flagged by the scan, as
    beat would), one to move on, a disputed group, and a staff login."""
    today = timezone.localdate()
    ukraine = PartyFactory(name="Government of Ukraine", short_name="UA")
    russia = PartyFactory(name="Russian Federation", short_name="RU")
    garrison = DetaineeGroupFactory(name="Azovstal garrison", held_by=russia, affiliated_with=ukraine, estimated_count=265, seriously_wounded_count=52)
    ReportedFigureFactory(group=garrison, value=1730, source_party=russia)
    ReportedFigureFactory(group=garrison, value=265, source_party=ukraine)
    silent = NegotiationFactory(title="Release of detained civilians", opened_on=today - timedelta(days=75))
    moving = NegotiationFactory(
        title="Wounded for wounded", priority="urgent", opened_on=today - timedelta(days=2),
        next_step="Exchange lists", next_step_due=today + timedelta(days=2),
        participants=[(ukraine, "side"), (russia, "side")], groups=[garrison],
    )
    scan_stalls()
    from django.contrib.auth.models import Group

    officer = django_user_model.objects.create_user(username="officer", password="Journey-pw-2026", is_staff=True)
    officer.groups.add(Group.objects.get(name="Coordinator"))  # the role a case officer works in, not a superuser
    return {"silent": silent, "moving": moving}


def log_in(page, live_server):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "officer")
    page.fill("#id_password", "Journey-pw-2026")
    page.click("input[type=submit]")
    page.wait_for_selector("#attention")


def test_log_in_and_read_what_needs_attention_on_the_dashboard(page, live_server, record):
    log_in(page, live_server)
    assert page.locator("h1").first.inner_text() == "What needs attention today"
    flags = page.locator("#open-flags")
    assert record["silent"].reference in flags.inner_text() and "Very overdue" in flags.inner_text()
    assert record["moving"].reference in page.locator("#next-steps").inner_text()
    assert "Azovstal garrison" in page.locator("#disputed-groups").inner_text()
    assert page.locator("#status-chart svg rect").count() >= 1
    # The admin's own stylesheet is served (a styled page, not bare HTML).
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).display") == "flex"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_see_a_flag_and_follow_it_to_the_flags_list(page, live_server, record):
    log_in(page, live_server)
    page.click("#attention a >> nth=0")
    page.wait_for_url("**/admin/tracker/flag/**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and record["silent"].reference in rows.first.inner_text()


def test_change_a_negotiations_status_from_its_page(page, live_server, record):
    log_in(page, live_server)
    page.click(f"#next-steps a:has-text('{record['moving'].reference}')")
    page.click("text=Change status…")
    page.select_option("#id_to_status", "in_talks")
    page.fill("#id_note", "Both sides agreed to talk through the ICRC")
    page.click("input[type=submit]")
    assert "Status changed to In talks." in page.locator(".messagelist").inner_text()
    assert Negotiation.objects.get(pk=record["moving"].pk).status == "in_talks"
    assert "Both sides agreed to talk through the ICRC" in page.locator("section#timeline").inner_text()


def test_switch_to_ukrainian_and_export_a_csv(page, live_server, record):
    log_in(page, live_server)
    page.select_option("#language-select", "uk")
    page.wait_for_selector("text=Що потребує уваги сьогодні")
    assert "Відкриті позначки" in page.locator("#open-flags").text_content()
    page.goto(f"{live_server.url}/admin/exchanges/negotiation/?stalled=yes")
    assert "Переговори" in page.locator("h1").inner_text() or "переговори" in page.locator("h1").inner_text()
    with page.expect_download() as download_info:
        page.click("text=Експорт CSV")
    download = download_info.value
    assert download.suggested_filename.startswith("negotiations-") and download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert [row["reference"] for row in rows] == [record["silent"].reference]  # the list's filter applied
    assert rows[0]["status"] == "Запропоновано" and rows[0]["stalled"] == "так"
