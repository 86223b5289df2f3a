"""Exports of big lists as jobs: queued, written by a worker as the login who asked, shown
with their progress, downloaded by their owner only once complete (issue 17)."""
import csv
import io
import os
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from exchanges import exports, spreadsheets
from exchanges.models import AccessLogEntry, ExportJob, Team
from exchanges.spreadsheets import CsvExportMixin
from exchanges.tasks import export_csv, tend_exports
from tests.factories import DetaineeGroupFactory, NegotiationFactory

pytestmark = pytest.mark.django_db

EXPORT = "admin:exchanges_negotiation_export"
EXPORTS = "admin:exchanges_exportjob_changelist"


@pytest.fixture(autouse=True)
def _big_lists(settings, tmp_path, monkeypatch):
    """Every list counts as big (a job, not a download in the request); files in tmp."""
    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(CsvExportMixin, "csv_inline_rows", 0)


@pytest.fixture
def login(django_user_model):
    """`login(role=None, teams=(), superuser=False, language="en")`: a logged-in client."""
    made = []

    def make(role=None, *, teams=(), superuser=False, language="en"):
        user = django_user_model.objects.create_user(
            username=f"login-{len(made)}", password="pw-staff-123", is_staff=True, is_superuser=superuser
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        for team in teams:
            team.members.add(user)
        client = Client()
        client.force_login(user)
        client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = language
        client.user = user
        made.append(user)
        return client

    return make


def queue(client, **query):
    response = client.get(reverse(EXPORT), query)
    assert response.status_code == 302 and response["Location"] == reverse(EXPORTS)
    return ExportJob.objects.filter(user=client.user).latest("created_at")


def download(client, job):
    return client.get(reverse("admin:exchanges_exportjob_download", args=[job.pk]))


def read(response):
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


def test_a_big_export_is_queued_written_by_the_task_and_downloaded_with_the_lists_rows(login, confidential, public_negotiation):
    NegotiationFactory(title='=HYPERLINK("http://evil.example")', visibility="participants")
    staff = login(superuser=True, language="uk")
    job = queue(staff, visibility__exact="participants")
    page = staff.get(reverse(EXPORTS)).content.decode()
    assert job.state == "queued" and 'http-equiv="refresh"' in page  # the page refreshes itself meanwhile
    assert "download/" not in page

    assert export_csv(str(job.pk)) == {"state": "done", "rows": 2}
    page = staff.get(reverse(EXPORTS)).content.decode()
    assert 'http-equiv="refresh"' not in page and job.file_name in page
    response = download(staff, job)
    assert response["Content-Disposition"] == f'attachment; filename="negotiations-{timezone.localdate().isoformat()}.csv"'
    rows = read(response)
    assert sorted(row["title"] for row in rows) == ["'=HYPERLINK(\"http://evil.example\")", "Wounded for wounded"]
    row = next(row for row in rows if row["reference"] == confidential.reference)
    # The user's language: labels of choices, of yes/no and of the participants' roles.
    assert (row["status"], row["visibility"], row["stalled"]) == ("Запропоновано", "Лише учасники", "ні")
    assert row["participants"] == "Government of Ukraine (Сторона); Russian Federation (Сторона); International Committee of the Red Cross (Фасилітатор)"
    assert row["groups"] == "Azovstal garrison"


def test_the_export_is_the_list_as_its_owner_sees_it(login, staff_only, public_negotiation):
    desk = Team.objects.create(name="Another desk")
    outsider = login("Coordinator", teams=[desk])
    job = queue(outsider)
    export_csv(str(job.pk))
    assert [row["title"] for row in read(download(outsider, job))] == ["All-for-all"]  # not the staff-only one
    assert not AccessLogEntry.objects.exists()


def test_an_export_that_includes_staff_only_negotiations_is_in_the_access_log(login, staff_only, public_negotiation):
    staff = login(superuser=True)
    job = queue(staff)
    export_csv(str(job.pk))
    entries = AccessLogEntry.objects.filter(channel="export")
    assert [(entry.negotiation_id, entry.user_id) for entry in entries] == [(staff_only.pk, staff.user.pk)]
    assert {row["title"] for row in read(download(staff, job))} == {"Internal assessment", "All-for-all"}


def test_another_login_can_neither_see_nor_download_an_export(login, public_negotiation):
    owner, other = login(superuser=True), login(superuser=True)
    job = queue(owner)
    export_csv(str(job.pk))
    assert job.file_name in owner.get(reverse(EXPORTS)).content.decode()
    assert job.file_name not in other.get(reverse(EXPORTS)).content.decode()
    assert download(other, job).status_code == 404
    assert download(owner, job).status_code == 200


def test_the_owner_no_longer_allowed_to_view_the_list_cannot_download(login, public_negotiation):
    viewer = login("Viewer")
    job = queue(viewer)
    export_csv(str(job.pk))
    viewer.user.groups.clear()
    assert download(viewer, job).status_code == 404


def test_an_export_whose_owner_lost_the_permission_before_it_ran_fails_and_says_why(login, public_negotiation):
    viewer = login("Viewer")
    job = queue(viewer)
    viewer.user.groups.clear()
    assert export_csv(str(job.pk)) == {"state": "failed"}
    job.refresh_from_db()
    assert job.state == "failed" and job.error == "You may no longer view this list."
    assert not job.path.exists() and not job.partial_path.exists()


def test_an_export_that_breaks_while_writing_leaves_no_file_and_says_so(login, public_negotiation, confidential, monkeypatch):
    staff = login(superuser=True)
    job = queue(staff)

    def broken(self, values):
        raise OSError("disk full")

    monkeypatch.setattr(spreadsheets._Columns, "cells", broken)
    assert export_csv(str(job.pk)) == {"state": "failed"}
    job.refresh_from_db()
    assert job.state == "failed" and "OSError" in job.error
    assert not job.path.exists() and not job.partial_path.exists()
    response = download(staff, job)
    assert response.status_code == 302  # back to the exports page, with a message, never a file
    assert "OSError" in staff.get(reverse(EXPORTS)).content.decode()


def test_an_export_whose_worker_died_is_shown_interrupted_and_its_partial_file_never_offered(login, public_negotiation):
    staff = login(superuser=True)
    job = queue(staff)
    # The worker took it, wrote part of the file, and was killed.
    ExportJob.objects.filter(pk=job.pk).update(
        state="running", rows_written=5000, progress_at=timezone.now() - timedelta(seconds=exports.STALE_SECONDS + 1)
    )
    job.partial_path.parent.mkdir(parents=True, exist_ok=True)
    job.partial_path.write_text("\ufeffreference\nNEG-1\n", encoding="utf-8")

    page = staff.get(reverse(EXPORTS)).content.decode()
    job.refresh_from_db()
    assert job.state == "interrupted" and "Interrupted before the file was complete" in page
    assert not job.partial_path.exists() and not job.path.exists()
    assert download(staff, job).status_code == 302
    assert export_csv(str(job.pk)) == {"state": "skipped"}  # a late redelivery writes nothing


def test_a_job_running_twice_writes_once(login, public_negotiation):
    staff = login(superuser=True)
    job = queue(staff)
    assert export_csv(str(job.pk))["state"] == "done"
    assert export_csv(str(job.pk)) == {"state": "skipped"}


def test_two_clicks_make_one_export(login, public_negotiation):
    staff = login(superuser=True)
    first = queue(staff, status__exact="proposed")
    second = queue(staff, status__exact="proposed")
    assert first.pk == second.pk and ExportJob.objects.count() == 1


def test_the_owner_is_told_on_the_next_list_page_once(login, public_negotiation):
    staff = login(superuser=True)
    job = queue(staff)
    export_csv(str(job.pk))
    changelist = reverse("admin:exchanges_negotiation_changelist")
    page = staff.get(changelist).content.decode()
    assert "is ready" in page and reverse("admin:exchanges_exportjob_download", args=[job.pk]) in page
    assert "is ready" not in staff.get(changelist).content.decode()


def test_old_exports_are_deleted_with_their_files(login, public_negotiation):
    staff = login(superuser=True)
    job = queue(staff)
    export_csv(str(job.pk))
    assert job.path.exists()
    assert tend_exports() == {"interrupted": 0, "deleted": 0, "orphans": 0}
    ExportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=exports.KEEP_DAYS + 1))
    assert tend_exports()["deleted"] == 1
    assert not job.path.exists() and not ExportJob.objects.exists()


def test_the_flags_and_handovers_exports_run_as_jobs_too(login, public_negotiation):
    staff = login(superuser=True)
    for name in ("admin:tracker_flag_export", "admin:exchanges_handover_export", "admin:exchanges_reportedfigure_export"):
        assert staff.get(reverse(name)).status_code == 302
    jobs = ExportJob.objects.filter(user=staff.user)
    assert {job.list_name for job in jobs} == {"tracker.flag", "exchanges.handover", "exchanges.reportedfigure"}
    for job in jobs:
        assert export_csv(str(job.pk))["state"] == "done"


def _queries_writing(user, parties, count):
    """Add `count` negotiations, each with three participants and a group; export them all:
    (the queries of writing the export, the rows it wrote)."""
    group = DetaineeGroupFactory()
    for _number in range(count):
        NegotiationFactory(participants=[(party, "side") for party in parties], groups=[group], visibility="staff_only")
    job = ExportJob.objects.create(user=user, list_name="exchanges.negotiation", language="en", file_name="n.csv")
    with CaptureQueriesContext(connection) as captured:
        result = exports.run_export(job.pk)
    return len(captured), result["rows"]


def test_the_row_writer_needs_as_many_queries_for_30_rows_as_for_3(django_user_model, ukraine, russia, icrc):
    user = django_user_model.objects.create_user(username="exporter", is_staff=True, is_superuser=True)
    few = _queries_writing(user, [ukraine, russia, icrc], 3)
    many = _queries_writing(user, [ukraine, russia, icrc], 27)
    assert few[1] == 3 and many[1] == 30
    assert many[0] == few[0]


def test_a_login_has_at_most_three_exports_waiting(login, public_negotiation):
    staff = login(superuser=True)
    for status in ("proposed", "in_talks", "agreed"):
        queue(staff, status__exact=status)
    response = staff.get(reverse(EXPORT), {"status__exact": "completed"}, follow=True)
    assert "You have 3 exports being prepared" in response.content.decode()
    assert ExportJob.objects.filter(user=staff.user).count() == 3


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_worker_streams_the_rows_and_its_progress_is_seen_meanwhile(login, monkeypatch):
    """As a worker runs it (no transaction around it): a thread of its own reads the rows
    in a transaction, so PostgreSQL streams them instead of building the whole list first
    (a cursor WITH HOLD), while the progress is what other sessions see as it runs; one
    interrupted meanwhile stops the reader and leaves no file."""
    if connection.vendor != "postgresql":
        pytest.skip("the cursor WITH HOLD is PostgreSQL's")
    import threading

    from django.db import connections

    NegotiationFactory.create_batch(12)
    staff = login(superuser=True)
    monkeypatch.setattr(exports, "PROGRESS_SECONDS", 0)
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 5)
    monkeypatch.setattr(exports, "CHUNK_SIZE", 4)
    seen = []
    other = connections.create_connection("default")
    original = exports._progress

    def watched(job, **fields):
        original(job, **fields)
        with other.cursor() as cursor:  # another session, as the exports page reads it
            cursor.execute("SELECT rows_written FROM exchanges_exportjob WHERE id = %s", [job.pk])
            seen.append(cursor.fetchone()[0])

    monkeypatch.setattr(exports, "_progress", watched)
    try:
        job = queue(staff)
        assert export_csv(str(job.pk)) == {"state": "done", "rows": 12}
        assert seen == [0, 5, 10]  # rows expected first (none written yet), then progress
        assert len(read(download(staff, job))) == 12
        assert not any(thread.name == "export-reader" for thread in threading.enumerate())

        def interrupted(job, **fields):
            with other.cursor() as cursor:  # the tender marks it interrupted, as for a dead worker
                cursor.execute("UPDATE exchanges_exportjob SET state = 'interrupted' WHERE id = %s", [job.pk])
            original(job, **fields)

        monkeypatch.setattr(exports, "_progress", interrupted)
        second = queue(staff, o="1")
        assert export_csv(str(second.pk)) == {"state": "interrupted"}
        second.refresh_from_db()
        assert second.state == "interrupted" and not os.path.exists(second.path) and not os.path.exists(second.partial_path)
        assert not any(thread.name == "export-reader" for thread in threading.enumerate())
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_an_export_of_most_of_a_list_reads_the_participants_grouped_and_writes_the_same_file(
    login, monkeypatch, ukraine, russia, icrc, garrison
):
    """An export of most of a big list reads every negotiation's participants and groups
    at once (one grouped read, not a subquery per row); the file is the same, byte for
    byte, in the list's order and the login's language, as the per-row one a small part of
    the list gets; a negotiation with nobody recorded has empty cells."""
    if connection.vendor != "postgresql":
        pytest.skip("the grouped read is PostgreSQL's")
    other_group = DetaineeGroupFactory(name="Olenivka detainees", held_by=russia, affiliated_with=ukraine)
    NegotiationFactory(title="B", participants=[(icrc, "mediator"), (ukraine, "side")], groups=[other_group, garrison])
    NegotiationFactory(title="A", participants=[(russia, "side"), (ukraine, "observer"), (icrc, "guarantor")])
    NegotiationFactory(title="C")  # nobody recorded yet
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE exchanges_negotiation")  # its size known to the planner, as in production
    grouped = []
    real_iterator = exports._GroupedCells.iterator
    monkeypatch.setattr(exports._GroupedCells, "iterator", lambda self, chunk_size: grouped.append(1) or real_iterator(self, chunk_size))
    staff = login(superuser=True, language="uk")
    files = {}
    for share in (0.5, 2):  # all three rows are most of the table; never
        monkeypatch.setattr(exports, "WHOLE_TABLE_SHARE", share)
        for query in ({}, {"o": "2"}):
            job = queue(staff, **query)
            assert export_csv(str(job.pk)) == {"state": "done", "rows": 3}
            files[share, tuple(query.items())] = read(download(staff, job))
    assert len(grouped) == 2  # the two exports with the smaller share
    for query in ({}, {"o": "2"}):
        assert files[0.5, tuple(query.items())] == files[2, tuple(query.items())]
    by_title = {row["title"]: row for row in files[0.5, (("o", "2"),)]}
    assert [row["title"] for row in files[0.5, (("o", "2"),)]] == ["A", "B", "C"]
    assert by_title["A"]["participants"] == "Russian Federation (Сторона); Government of Ukraine (Спостерігач); International Committee of the Red Cross (Гарант)"
    assert by_title["B"]["groups"] == "Olenivka detainees; Azovstal garrison"
    assert by_title["C"]["participants"] == by_title["C"]["groups"] == ""
