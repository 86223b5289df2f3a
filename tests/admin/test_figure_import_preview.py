"""The figures import in two steps: a checked file is previewed and kept in the session; only
its confirm, the file checked again, records it (exchanges/figure_import.py)."""
import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from exchanges import figure_import, services
from exchanges.models import AuditEntry, ReportedFigure

pytestmark = pytest.mark.django_db

URL = "admin:exchanges_reportedfigure_import"
FILE = (
    "group,metric,value,source_party,source,reported_on,reliability,notes\n"
    "Azovstal garrison,total,1730,RU,Ministry of Defence briefing,2022-05-20,unverified,\n"
    'Azovstal garrison,Total,265,Government of Ukraine,General Staff,17.05.2022,,"incl. 52 seriously wounded"\n'
    "azovstal garrison,Seriously wounded,52,UA,,17/05/2022,Corroborated,\n"
)


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def upload(client, text=FILE, name="figures.csv"):
    file = SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")
    return client.post(reverse(URL), {"file": file})


def confirm(client, token, **kwargs):
    return client.post(reverse(URL), {"token": token}, **kwargs)


def previewed(client, text=FILE):
    response = upload(client, text)
    assert response.status_code == 200 and "token" in response.context, response.context.get("problems")
    return response


def written():
    return ReportedFigure.objects.count(), AuditEntry.objects.count()


def texts(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_correct_file_is_previewed_as_it_will_be_recorded_and_nothing_is_written(staff, garrison, russia, ukraine):
    before = written()
    response = previewed(staff)
    assert written() == before
    assert response.templates[0].name == "admin/exchanges/reportedfigure/import_preview.html"
    assert response.context["total"] == 3 and response.context["more"] == 0
    row = {name: str(value) for name, value in response.context["rows"][2].items()}
    assert row == {
        "group": "Azovstal garrison",
        "metric": "Seriously wounded",
        "value": "52",
        "source_party": "Government of Ukraine",
        "source": "",
        "reported_on": "2022-05-17",
        "reliability": "Corroborated",
        "notes": "",
    }
    page = response.content.decode()
    assert "3 reported figures will be recorded" in page
    assert "Ministry of Defence briefing" in page and "Russian Federation" in page and "incl. 52 seriously wounded" in page
    assert 'class="table-wrap"' in page  # scrolls sideways on a phone
    assert "Confirm import" in page and f'name="token" value="{response.context["token"]}"' in page
    assert f'href="{reverse(URL)}"' in page  # Cancel: back to the form
    assert "figure_import" not in page and "1730,RU" not in page  # the file stays on the server


def test_the_confirm_records_every_row_once_and_forgets_the_file(staff, garrison, russia, ukraine):
    token = previewed(staff).context["token"]
    assert token in staff.session[figure_import.PENDING_KEY]
    response = confirm(staff, token)
    assert response.status_code == 302 and response["Location"] == reverse("admin:exchanges_reportedfigure_changelist")
    assert texts(response) == ["Imported 3 reported figures."]
    figures = ReportedFigure.objects.filter(group=garrison).order_by("value")
    assert [(f.value, f.source_party.short_name, f.reliability) for f in figures] == [
        (52, "UA", "corroborated"), (265, "UA", "unverified"), (1730, "RU", "unverified"),
    ]
    assert AuditEntry.objects.filter(model="exchanges.reportedfigure", action="create", channel="admin").count() == 3
    assert token not in staff.session.get(figure_import.PENDING_KEY, {})


def test_a_second_confirm_of_the_same_file_records_nothing_more(staff, garrison, russia, ukraine):
    token = previewed(staff).context["token"]
    assert confirm(staff, token).status_code == 302
    after_first = written()
    again = confirm(staff, token, follow=True)
    assert written() == after_first
    assert again.status_code == 200 and again.redirect_chain == [(reverse(URL), 302)]
    assert "no longer waiting for confirmation" in again.content.decode()


@pytest.mark.parametrize("token", ["", "not-a-token", "x" * 500])
def test_a_confirm_with_an_unknown_token_writes_nothing_and_says_so(staff, garrison, russia, ukraine, token):
    previewed(staff)
    before = written()
    response = confirm(staff, token, follow=True)
    assert written() == before
    page = response.content.decode()
    assert response.status_code == 200 and "import-form" in page and "no longer waiting for confirmation" in page


def test_an_expired_file_cannot_be_confirmed(staff, garrison, russia, ukraine):
    token = previewed(staff).context["token"]
    session = staff.session
    session[figure_import.PENDING_KEY][token]["at"] -= figure_import.PENDING_MAX_AGE + 1
    session.save()
    before = written()
    response = confirm(staff, token, follow=True)
    assert written() == before and "no longer waiting for confirmation" in response.content.decode()


def test_the_token_belongs_to_its_session_only(staff, staff_user, garrison, russia, ukraine, django_user_model):
    token = previewed(staff).context["token"]
    before = written()
    colleague = Client()
    colleague.force_login(django_user_model.objects.create_user(username="colleague", password="pw-staff-456", is_staff=True, is_superuser=True))
    same_login_elsewhere = Client()
    same_login_elsewhere.force_login(staff_user)
    for other in (colleague, same_login_elsewhere):
        response = confirm(other, token, follow=True)
        assert response.status_code == 200 and "no longer waiting for confirmation" in response.content.decode()
    assert written() == before
    assert confirm(staff, token).status_code == 302  # still the uploader's to confirm
    assert ReportedFigure.objects.count() == before[0] + 3


def test_claims_recorded_between_preview_and_confirm_are_refused_at_the_confirm(staff, staff_user, garrison, russia, ukraine):
    token = previewed(staff).context["token"]
    services.figures_import(rows=figure_import.check(FILE.encode()).rows[:2], actor=staff_user)  # meanwhile
    before = written()
    response = confirm(staff, token)
    assert response.status_code == 200 and written() == before
    assert [(problem.line, problem.column) for problem in response.context["problems"]] == [(2, ""), (3, "")]
    page = response.content.decode()
    assert "Nothing was imported: 2 problems" in page and "already recorded" in page and "checked again" in page
    assert "no longer waiting" in confirm(staff, token, follow=True).content.decode()  # used up
    assert written() == before


def test_a_long_file_previews_its_first_rows_and_counts_the_rest(staff, garrison):
    rows = "".join(f"Azovstal garrison,total,{n},2022-05-20\n" for n in range(1, figure_import.PREVIEW_ROWS + 6))
    response = previewed(staff, "group,metric,value,reported_on\n" + rows)
    assert response.context["total"] == figure_import.PREVIEW_ROWS + 5
    assert len(response.context["rows"]) == figure_import.PREVIEW_ROWS and response.context["more"] == 5
    assert "and 5 more rows" in response.content.decode()
    assert confirm(staff, response.context["token"]).status_code == 302
    assert garrison.figures.count() == figure_import.PREVIEW_ROWS + 5


def test_a_file_with_problems_gets_no_preview(staff, garrison):
    response = upload(staff, "group,metric,value,reported_on\nNowhere,total,1,2022-05-20\n")
    assert response.status_code == 200 and "token" not in response.context and response.context["problems"]
    assert figure_import.PENDING_KEY not in staff.session
    assert not ReportedFigure.objects.exists()


def test_a_get_with_a_token_only_shows_the_form(staff, garrison, russia, ukraine):
    token = previewed(staff).context["token"]
    before = written()
    response = staff.get(reverse(URL), {"token": token})
    assert response.status_code == 200 and "import-form" in response.content.decode()
    assert written() == before
    assert confirm(staff, token).status_code == 302  # the GET did not use it up


def test_both_steps_need_the_add_permission(client, django_user_model, garrison, russia, ukraine):
    user = django_user_model.objects.create_user(username="viewer", password="pw-staff-789", is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="exchanges", codename="view_reportedfigure"))
    client.force_login(user)
    assert upload(client).status_code == 403
    add = Permission.objects.get(content_type__app_label="exchanges", codename="add_reportedfigure")
    user.user_permissions.add(add)
    token = previewed(client).context["token"]
    user.user_permissions.remove(add)  # taken away between the preview and the confirm
    before = written()
    assert confirm(client, token).status_code == 403
    assert written() == before


def test_the_preview_speaks_ukrainian_and_french(staff, garrison, russia, ukraine):
    for language, button in (("uk", "Підтвердити імпорт"), ("fr", "Confirmer l’importation")):
        response = staff.post(
            reverse(URL), {"file": SimpleUploadedFile("f.csv", FILE.encode())}, HTTP_ACCEPT_LANGUAGE=language
        )
        assert button in response.content.decode()
