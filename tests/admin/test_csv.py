"""CSV out of the admin's lists (as filtered) and reported figures in, all rows or none
(after a preview: tests/admin/test_figure_import_preview.py)."""
import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from exchanges.models import AuditEntry, ExportJob, ReportedFigure
from tests.factories import DetaineeGroupFactory, NegotiationFactory, ReportedFigureFactory
from tracker.services import scan_stalls

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def read_csv(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


def upload(staff, text, name="figures.csv"):
    file = SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")
    return staff.post(reverse("admin:exchanges_reportedfigure_import"), {"file": file})


def import_file(staff, text, name="figures.csv"):
    """Upload, then confirm the preview (the import's two steps); the confirm's response, or
    the upload's when it found problems and showed no preview."""
    response = upload(staff, text, name)
    if response.status_code != 200 or "token" not in response.context:
        return response
    return staff.post(reverse("admin:exchanges_reportedfigure_import"), {"token": response.context["token"]})


def test_the_negotiations_export_follows_the_lists_filters_and_search(staff, confidential, public_negotiation):
    url = reverse("admin:exchanges_negotiation_export")
    everything = read_csv(staff.get(url))
    assert {row["reference"] for row in everything} == {confidential.reference, public_negotiation.reference}
    filtered = read_csv(staff.get(url, {"visibility__exact": "all_partners"}))
    assert [row["reference"] for row in filtered] == [public_negotiation.reference]
    searched = read_csv(staff.get(url, {"q": "Wounded for"}))
    assert [row["reference"] for row in searched] == [confidential.reference]
    row = searched[0]
    assert row["status"] == "Proposed" and row["visibility"] == "Participants only"
    assert "Government of Ukraine (Side)" in row["participants"] and row["groups"] == "Azovstal garrison"


def test_the_list_page_links_to_the_export_with_its_filters(staff, confidential):
    page = staff.get(reverse("admin:exchanges_negotiation_changelist"), {"status__exact": "proposed"}).content.decode()
    assert reverse("admin:exchanges_negotiation_export") + "?status__exact=proposed" in page


def test_a_small_list_downloads_at_once_and_is_listed_among_the_exports(staff, staff_user, public_negotiation):
    rows = read_csv(staff.get(reverse("admin:exchanges_negotiation_export")))
    assert [row["reference"] for row in rows] == [public_negotiation.reference]
    job = ExportJob.objects.get(user=staff_user)
    assert (job.state, job.rows_written, job.list_name) == ("done", 1, "exchanges.negotiation")
    page = staff.get(reverse("admin:exchanges_exportjob_changelist")).content.decode()
    assert reverse("admin:exchanges_exportjob_download", args=[job.pk]) in page
    assert "is ready" not in page  # downloaded already: no message about it


def test_an_export_never_hands_a_spreadsheet_a_formula(staff):
    NegotiationFactory(title='=HYPERLINK("http://evil.example","click")')
    rows = read_csv(staff.get(reverse("admin:exchanges_negotiation_export")))
    assert rows[0]["title"].startswith("'=HYPERLINK")


def test_the_flags_export_lists_open_flags_with_their_silence(staff):
    NegotiationFactory(title="Silent", opened_on=timezone.localdate() - timedelta(days=45))
    scan_stalls()
    rows = read_csv(staff.get(reverse("admin:tracker_flag_export"), {"open": "yes"}))
    assert len(rows) == 1 and rows[0]["kind"] == "No activity" and int(rows[0]["days_silent"]) >= 45
    assert read_csv(staff.get(reverse("admin:tracker_flag_export"), {"open": "no"})) == []


def test_the_export_is_for_staff_only(client, confidential):
    response = client.get(reverse("admin:exchanges_negotiation_export"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_importing_figures_records_every_row_with_its_source(staff, garrison, russia, ukraine):
    text = (
        "group,metric,value,source_party,source,reported_on,reliability,notes\n"
        "Azovstal garrison,total,1730,RU,Ministry of Defence briefing,2022-05-20,unverified,\n"
        'Azovstal garrison,Total,265,Government of Ukraine,General Staff,17.05.2022,,"incl. 52 seriously wounded"\n'
        "azovstal garrison,Seriously wounded,52,UA,,17/05/2022,Corroborated,\n"
    )
    response = import_file(staff, text)
    assert response.status_code == 302
    figures = ReportedFigure.objects.filter(group=garrison).order_by("value")
    assert [(f.metric, f.value, f.source_party.short_name, f.reliability) for f in figures] == [
        ("seriously_wounded", 52, "UA", "corroborated"),
        ("total", 265, "UA", "unverified"),
        ("total", 1730, "RU", "unverified"),
    ]
    assert AuditEntry.objects.filter(model="exchanges.reportedfigure", action="create", channel="admin").count() == 3


def test_one_bad_row_imports_nothing_and_every_problem_is_listed(staff, garrison, russia):
    ReportedFigureFactory(group=garrison, value=999, source_party=russia, reported_on=timezone.localdate() - timedelta(days=10))
    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    text = (
        "group,metric,value,source_party,reported_on\n"
        "Azovstal garrison,total,1730,RU,2022-05-20\n"  # fine
        "Nowhere group,total,10,RU,2022-05-20\n"  # line 3: unknown group
        "Azovstal garrison,prisoners,10,RU,2022-05-20\n"  # line 4: unknown metric
        "Azovstal garrison,total,-5,RU,2022-05-20\n"  # line 5: negative
        "Azovstal garrison,total,10,Atlantis,2022-05-20\n"  # line 6: unknown party
        f"Azovstal garrison,total,10,RU,{future}\n"  # line 7: future
        "Azovstal garrison,total,1730,RU,2022-05-20\n"  # line 8: repeats line 2
        f"Azovstal garrison,total,999,RU,{(timezone.localdate() - timedelta(days=10)).isoformat()}\n"  # line 9: recorded
        "Azovstal garrison,total,10,RU,May 2022\n"  # line 10: not a date
    )
    response = upload(staff, text)
    assert response.status_code == 200
    problems = [(problem.line, problem.column) for problem in response.context["problems"]]
    assert problems == [
        (3, "group"), (4, "metric"), (5, "value"), (6, "source_party"), (7, "reported_on"), (8, ""), (9, ""), (10, "reported_on"),
    ]
    page = response.content.decode()
    assert "Nothing was imported: 8 problems" in page and "repeats line 2" in page and "already recorded" in page
    assert ReportedFigure.objects.count() == 1


def test_a_file_with_a_wrong_header_or_encoding_is_refused_whole(staff, garrison):
    response = upload(staff, "group,metric,valeu,reported_on\nAzovstal garrison,total,1,2022-05-20\n")
    messages = [problem.message for problem in response.context["problems"]]
    assert any("Unknown column" in message for message in messages)
    assert any("required" in message for message in messages)
    latin1 = SimpleUploadedFile("f.csv", "group,metric,value,reported_on\nGarnison é,total,1,2022-05-20\n".encode("latin-1"))
    response = staff.post(reverse("admin:exchanges_reportedfigure_import"), {"file": latin1})
    assert "UTF-8" in response.content.decode()
    assert not ReportedFigure.objects.exists()


def test_an_ambiguous_group_name_asks_for_the_id(staff, garrison):
    DetaineeGroupFactory(name="Azovstal garrison")
    response = upload(staff, "group,metric,value,reported_on\nAzovstal garrison,total,1,2022-05-20\n")
    assert "give its group_id" in response.content.decode()
    response = import_file(staff, f"group_id,metric,value,reported_on\n{garrison.pk},total,1,2022-05-20\n")
    assert response.status_code == 302 and garrison.figures.count() == 1


def test_a_semicolon_file_from_a_french_spreadsheet_imports(staff, garrison):
    response = import_file(staff, "group;metric;value;reported_on;reliability\nAzovstal garrison;Total;1 730;20/05/2022;Contesté\n")
    assert response.status_code == 302, response.context and response.context["problems"]
    figure = garrison.figures.get()
    assert (figure.value, figure.reliability) == (1730, "disputed")


def test_an_exported_figures_file_can_be_edited_and_imported_back(staff, garrison, russia):
    ReportedFigureFactory(group=garrison, value=1730, source_party=russia, source="=briefing", reported_on=timezone.localdate() - timedelta(days=3))
    exported = b"".join(staff.get(reverse("admin:exchanges_reportedfigure_export")).streaming_content).decode("utf-8")
    assert "'=briefing" in exported
    again = upload(staff, exported)
    assert "already recorded" in again.content.decode()
    edited = exported.replace("1730", "1700")
    assert import_file(staff, edited).status_code == 302
    assert sorted(garrison.figures.values_list("value", "source")) == [(1700, "=briefing"), (1730, "=briefing")]
