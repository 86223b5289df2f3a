"""The negotiation's case file in a real browser (Debian's Chromium, Playwright) against the
live server: what a staff member sees above the fold at 1366x768, acknowledging a flag
from its banner, recording an event and changing the status without leaving the case
file, the pages at 390 px (a phone), and the pages in Ukrainian and French with no
English interface string left among the visible ones.
"""
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from exchanges import services
from exchanges.models import DetaineeGroup, Event, Negotiation, Party, ReportedFigure, StatusChange, Team
from tests.factories import DetaineeGroupFactory, NegotiationFactory, PartyFactory, ReportedFigureFactory
from tracker.models import Flag
from tracker.services import scan_stalls

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PASSWORD = "Case-file-pw-2026"

#: Every text node the reader can see (rendered, not hidden by CSS), and the labels of
#: visible buttons; the language switcher names each language in itself, so it is left out.
VISIBLE_STRINGS = """() => {
  const strings = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, element = node.parentElement;
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (!text || !element || element.closest('script, style, noscript, template, select, #language-switcher')) continue;
    if (!element.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) continue;
    strings.push(text);
  }
  for (const input of document.querySelectorAll('input[type=submit], input[type=button], input[type=reset]')) {
    if (input.checkVisibility() && input.value.trim()) strings.push(input.value.trim());
  }
  return strings;
}"""
NO_HORIZONTAL_SCROLL = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"


@pytest.fixture
def record(transactional_db, django_user_model):
    """A case officer's flagged negotiation with a full case file: parties, a disputed group,
    events, a status change, a next step; and the officer's login (a Coordinator)."""
    today = timezone.localdate()
    now = timezone.now()
    desk = Team.objects.create(name="Eastern Europe desk")
    officer = django_user_model.objects.create_user(
        username="okovalenko", first_name="Olena", last_name="Kovalenko", password=PASSWORD, is_staff=True
    )
    officer.groups.add(Group.objects.get(name="Coordinator"))
    officer.tracker_teams.add(desk)
    ukraine = PartyFactory(name="Government of Ukraine", short_name="UA")
    russia = PartyFactory(name="Russian Federation", short_name="RU")
    icrc = PartyFactory(name="International Committee of the Red Cross", short_name="ICRC", kind="humanitarian")
    garrison = DetaineeGroupFactory(name="Azovstal garrison", held_by=russia, affiliated_with=ukraine, estimated_count=265, seriously_wounded_count=52)
    ReportedFigureFactory(group=garrison, value=1730, source_party=russia)
    ReportedFigureFactory(group=garrison, value=265, source_party=ukraine)
    flagged = NegotiationFactory(
        title="Wounded for wounded through the ICRC",
        summary="Seriously wounded prisoners for seriously wounded prisoners, with the ICRC as intermediary.",
        priority="high", visibility="all_partners", opened_on=today - timedelta(days=90),
        next_step="Ask both sides for their lists of the seriously wounded", next_step_due=today + timedelta(days=5),
        case_officer=officer, teams=[desk],
        participants=[(ukraine, "side"), (russia, "side"), (icrc, "facilitator")], groups=[garrison],
    )  # fmt: skip
    services.negotiation_change_status(
        negotiation=flagged, to_status="in_talks", actor=None, occurred_at=now - timedelta(days=80), note="Talks opened in Geneva"
    )
    for days, summary in ((70, "Ukraine proposes a first exchange of the seriously wounded."), (60, "Russia asks for the ICRC to verify the lists.")):
        services.event_create(negotiation=flagged, actor=None, kind="statement", occurred_at=now - timedelta(days=days), summary=summary, parties=[ukraine])
    scan_stalls()  # silent for 60 days at high priority: very overdue
    flagged.refresh_from_db()
    assert flagged.stalled
    return {"negotiation": flagged, "officer": officer, "parties": [ukraine, russia, icrc], "group": garrison}


def open_page(browser, live_server, viewport=LAPTOP, locale="en-GB"):
    context = browser.new_context(viewport=viewport, locale=locale)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "okovalenko")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
    return page


@pytest.fixture
def laptop(browser, live_server, record):
    page = open_page(browser, live_server)
    yield page
    page.context.close()


@pytest.fixture
def phone(browser, live_server, record):
    page = open_page(browser, live_server, viewport=PHONE)
    yield page
    page.context.close()


def case_file_url(live_server, negotiation):
    return f"{live_server.url}/admin/exchanges/negotiation/{negotiation.pk}/change/"


def above_the_fold(page, selector, height=LAPTOP["height"], width=LAPTOP["width"]):
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    assert box["y"] >= 0 and box["y"] + box["height"] <= height, f"{selector} ends at {box['y'] + box['height']:.0f} px, below {height}"
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{selector} is cut off at the side"


def test_the_case_file_shows_where_it_stands_above_the_fold_at_1366x768(laptop, live_server, record):
    negotiation = record["negotiation"]
    laptop.goto(case_file_url(live_server, negotiation))
    head = laptop.locator("#case-file")
    assert laptop.locator(".case-ref").inner_text() == negotiation.reference
    assert laptop.locator("#case-title").inner_text() == "Wounded for wounded through the ICRC"
    assert "In talks" in laptop.locator("#case-status").inner_text() and "Stalled" in laptop.locator("#case-status").inner_text()
    assert laptop.locator("#case-status .status-badge.status-stalled").count() == 1  # red, not a green tick
    facts = head.locator(".case-facts").inner_text()
    for expected in ("High", "Olena Kovalenko", "Eastern Europe desk", "Ask both sides for their lists", negotiation.next_step_due.isoformat()):
        assert expected in facts
    banner = head.locator(".case-banner.banner-very_overdue")
    assert "No activity" in banner.inner_text()
    for selector in (".case-ref", "#case-title", "#case-status", ".case-facts", ".case-facts .case-next",
                     ".case-banner.banner-very_overdue", ".case-banner button.acknowledge", "#change-status", "#add-event"):  # fmt: skip
        above_the_fold(laptop, selector)
    assert laptop.evaluate(NO_HORIZONTAL_SCROLL)


def test_acknowledge_a_flag_from_its_banner_on_the_case_file(laptop, live_server, record):
    negotiation = record["negotiation"]
    url = case_file_url(live_server, negotiation)
    laptop.goto(url)
    laptop.click(".case-banner button.acknowledge")
    laptop.wait_for_selector(".messagelist")
    assert laptop.url == url  # back on the case file, not on the flags list
    assert "Flag acknowledged" in laptop.locator(".messagelist").inner_text()
    banner = laptop.locator(".case-banner").first
    assert "banner-acknowledged" in banner.get_attribute("class")
    assert "Acknowledged by Olena Kovalenko" in banner.inner_text()
    assert laptop.locator(".case-banner button.acknowledge").count() == 0
    flag = Flag.objects.get(negotiation=negotiation, resolved_at=None)
    assert flag.acknowledged_by_user == record["officer"] and flag.acknowledged_at is not None


def test_record_an_event_then_change_the_status_each_back_on_the_case_file(laptop, live_server, record):
    negotiation = record["negotiation"]
    url = case_file_url(live_server, negotiation)
    laptop.goto(url)

    laptop.click("#add-event")
    laptop.wait_for_selector("#id_summary")
    when = timezone.localtime() - timedelta(hours=1)
    laptop.select_option("#id_kind", "meeting")
    laptop.fill("#id_occurred_at_0", when.strftime("%Y-%m-%d"))
    laptop.fill("#id_occurred_at_1", when.strftime("%H:%M:%S"))
    laptop.fill("#id_summary", "Delegations met in Istanbul with the ICRC")
    laptop.click("input[name=_save]")
    laptop.wait_for_selector("#case-file")
    assert laptop.url == url
    assert "Delegations met in Istanbul with the ICRC" in laptop.locator("section#timeline").inner_text()
    assert Event.objects.filter(negotiation=negotiation, summary="Delegations met in Istanbul with the ICRC").exists()

    laptop.click("#change-status")
    laptop.select_option("#id_to_status", "agreed_in_principle")
    laptop.fill("#id_note", "Both sides accept the ICRC's lists")
    laptop.click("input[type=submit]")
    laptop.wait_for_selector("#case-file")
    assert laptop.url == url
    assert "Agreed in principle" in laptop.locator("#case-status").inner_text()
    timeline = laptop.locator("section#timeline tbody tr")
    assert "Both sides accept the ICRC's lists" in timeline.first.inner_text()  # newest first
    assert StatusChange.objects.filter(negotiation=negotiation).latest("sequence").to_status == "agreed_in_principle"


#: The lists staff work from, and the columns they cannot do without.
KEY_COLUMNS = {
    "/admin/exchanges/negotiation/": ("reference", "title", "status_column", "stalled_column", "next_step_due", "case_officer"),
    "/admin/exchanges/detaineegroup/": ("name", "held_by", "estimated_count", "disputed"),
    "/admin/tracker/flag/": ("negotiation_reference", "kind", "level", "raised_at", "acknowledged_at", "resolved_at"),
}


@pytest.mark.parametrize(("path", "key_columns"), KEY_COLUMNS.items())
def test_the_lists_keep_their_key_columns_in_sight_at_1366_px(laptop, live_server, record, path, key_columns):
    laptop.goto(f"{live_server.url}{path}")
    assert laptop.evaluate(NO_HORIZONTAL_SCROLL)
    headers = laptop.locator("#result_list thead th")
    classes = " ".join(headers.nth(index).get_attribute("class") or "" for index in range(headers.count()))
    for column in key_columns:
        assert f"column-{column}" in classes, f"{column} is not among the columns of {path}"
        box = laptop.locator(f"#result_list thead th.column-{column}").bounding_box()
        assert box and box["x"] + box["width"] <= LAPTOP["width"], f"{column} of {path} is out of sight"


def test_the_pages_fit_a_390_px_phone(phone, live_server, record):
    negotiation = record["negotiation"]
    for path in ("/admin/", "/admin/exchanges/negotiation/", f"/admin/exchanges/negotiation/{negotiation.pk}/change/",
                 "/admin/exchanges/detaineegroup/", "/admin/tracker/flag/"):  # fmt: skip
        phone.goto(f"{live_server.url}{path}")
        width = phone.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1], f"{path} scrolls sideways at 390 px: {width[0]} px wide"
        for column in KEY_COLUMNS.get(path, ()):  # shown, if need be by scrolling the table in its box
            header = phone.locator(f"#result_list thead th.column-{column}")
            assert header.count() == 1 and header.is_visible(), f"{column} of {path} is hidden at 390 px"
    # On the case file, what matters is on the screen's width, and the Acknowledge button is within reach.
    phone.goto(case_file_url(live_server, negotiation))
    for selector in ("#case-title", "#case-status", ".case-facts", ".case-banner button.acknowledge", "#change-status"):
        above_the_fold(phone, selector, height=10_000, width=PHONE["width"])


def chart_font_px(page, selector):
    """The size the chart's 11 px text is drawn at, once the SVG is scaled to its box."""
    return page.evaluate(
        """(selector) => { const svg = document.querySelector(selector);
             return 11 * svg.getBoundingClientRect().width / svg.viewBox.baseVal.width; }""",
        selector,
    )


def test_the_charts_stay_readable_at_390_px(phone, live_server, record):
    phone.goto(f"{live_server.url}/admin/")
    assert chart_font_px(phone, "svg.status-chart") >= 9
    assert phone.evaluate(NO_HORIZONTAL_SCROLL)  # the chart scrolls inside its box, not the page
    phone.goto(case_file_url(live_server, record["negotiation"]))
    assert chart_font_px(phone, "svg.negotiation-timeline") >= 9
    assert phone.evaluate(NO_HORIZONTAL_SCROLL)


#: Interface words spelled the same in English and in that language, checked by hand (and
#: the keys Django's Ukrainian names as they are printed on the keyboard).
SAME_IN = {"fr": {"Parties", "Participants", "Note", "Notes", "Source", "Total", "Exports"}, "uk": {"Control", "Command"}}


def words(strings):
    return {word for text in strings for word in re.findall(r"[^\W\d_]{4,}", text)}


def data_words(record):
    """Words of what staff and partners wrote (names, titles, summaries): the same in every language."""
    values = []
    for model, fields in (
        (Party, ("name", "short_name")), (DetaineeGroup, ("name",)), (Team, ("name",)),
        (Negotiation, ("title", "summary", "next_step", "reference")), (Event, ("summary", "source")),
        (StatusChange, ("note", "source")), (ReportedFigure, ("source",)),
    ):  # fmt: skip
        for row in model.objects.values_list(*fields):
            values.extend(value for value in row if value)
    officer = record["officer"]
    values += [officer.username, officer.first_name, officer.last_name]
    return words(values)


@pytest.mark.parametrize("language", ["uk", "fr"])
def test_no_english_interface_string_is_left_on_the_ukrainian_and_french_pages(browser, live_server, record, language):
    """Each page is read in English, then in the other language: every string the English page
    shows that is not data (names, titles, summaries) must be gone. In Ukrainian no English
    word may stay either, data apart."""
    negotiation = record["negotiation"]
    data = data_words(record)
    english, translated = open_page(browser, live_server), open_page(browser, live_server, locale=language)
    left = {}
    try:
        for path in ("/admin/", f"/admin/exchanges/negotiation/{negotiation.pk}/change/"):
            english.goto(f"{live_server.url}{path}")
            translated.goto(f"{live_server.url}{path}")
            assert translated.locator("html").get_attribute("lang") == language
            shown_in_english = english.evaluate(VISIBLE_STRINGS)
            shown = translated.evaluate(VISIBLE_STRINGS)
            interface = {text for text in shown_in_english if words([text]) - data - SAME_IN.get(language, set())}
            assert len(interface) > 40, "the English page shows too little to compare"
            untranslated = interface & set(shown)
            if language == "uk":  # and no English word among the Ukrainian ones
                english_words = (words(shown) & words(shown_in_english)) - data - SAME_IN["uk"]
                untranslated |= {text for text in shown if words([text]) & english_words}
            if untranslated:
                left[path] = sorted(untranslated)
    finally:
        english.context.close()
        translated.context.close()
    assert not left, f"English left on the {language} pages: {left}"
