"""Two-factor login for staff: Coordinators and Auditors must enrol a TOTP app before
using the admin; anyone enrolled enters a code (or a backup code, once) after the
password; wrong codes count toward the login lockout; the API asks the same of sessions."""
from datetime import UTC, datetime
from itertools import count

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from exchanges.models import AuditEntry

pytestmark = pytest.mark.django_db

_numbers = count(1)
PASSWORD = "pw-staff-123"
ENROL = reverse("admin:two_factor")
VERIFY = reverse("admin:two_factor_verify")


@pytest.fixture(autouse=True)
def required(settings):
    """The requirement is on here, as in production (the test settings turn it off)."""
    settings.TRACKER_REQUIRE_2FA = True
    settings.TRACKER_REQUIRE_2FA_ROLES = ["coordinator", "auditor"]


@pytest.fixture
def clock():
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture
def staff(django_user_model):
    """`staff(role)` -> a new staff login in that role (a group made by the migrations)."""

    def make(role=None, **extra):
        user = django_user_model.objects.create_user(
            username=f"{(role or 'nobody').lower()}-{next(_numbers)}", password=PASSWORD, is_staff=True, **extra
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def code_of(device):
    device.refresh_from_db()
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def enrol(client, clock):
    """Enrol through the page, as a staff member would; returns the backup codes."""
    assert client.get(ENROL).status_code == 200
    device = TOTPDevice.objects.get(user=client.session["_auth_user_id"], confirmed=False)
    response = client.post(ENROL, {"action": "confirm", "code": code_of(device)})
    assert response.status_code == 200
    clock.shift(31)  # the next code is a new one (a code is never accepted twice)
    return response.context["codes"]


def password_login(user):
    client = Client()
    response = client.post(reverse("admin:login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, "the password is accepted"
    return client


@pytest.mark.parametrize("role", ["Coordinator", "Auditor"])
def test_a_coordinator_or_auditor_without_a_device_is_sent_to_enrolment_from_every_admin_page(staff, role):
    client = logged_in(staff(role))
    pages = [
        reverse("admin:index"),
        reverse("admin:app_list", args=["exchanges"]),
        reverse("admin:exchanges_negotiation_changelist"),
        reverse("admin:exchanges_auditentry_changelist"),
        reverse("admin:exchanges_negotiation_add"),
        reverse("admin:password_change"),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith(ENROL + "?next="), page
    assert client.post(reverse("admin:exchanges_negotiation_add"), {}).status_code == 302
    page = client.get(ENROL).content.decode()
    assert "Your role requires two-factor authentication" in page
    assert "<svg" in page and "otpauth://totp/" in page


def test_an_unenrolled_coordinator_session_gets_403_with_the_reason_on_the_api(staff):
    response = logged_in(staff("Coordinator")).get("/api/v1/negotiations/")
    assert response.status_code == 403
    assert "enrol a device" in response.json()["detail"]


def test_enrolment_needs_a_current_code_and_shows_ten_backup_codes_once(staff, clock):
    user = staff("Coordinator")
    client = logged_in(user)
    page = client.get(ENROL).content.decode()
    device = TOTPDevice.objects.get(user=user)
    secret = page.split("<code style=\"font-size:1.1rem\">")[1].split("</code>")[0]
    assert secret.replace(" ", "") in device.config_url

    wrong = client.post(ENROL, {"action": "confirm", "code": "000000" if code_of(device) != "000000" else "111111"})
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get(reverse("admin:index")).status_code == 302

    clock.shift(2)  # django-otp slows down after a wrong code
    response = client.post(ENROL, {"action": "confirm", "code": code_of(device)})
    codes = response.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(code in response.content.decode() for code in codes)
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("admin:index")).status_code == 200  # this session is verified
    again = client.get(ENROL).content.decode()
    assert "Two-factor authentication is on" in again and codes[0] not in again  # shown once
    entry = AuditEntry.objects.get(model="otp_totp.totpdevice", action="create")
    assert entry.actor_label == user.username and "key" not in entry.changes


def test_after_enrolment_the_login_asks_for_a_code_before_any_admin_page(staff, clock):
    user = staff("Coordinator")
    enrol(logged_in(user), clock)
    client = password_login(user)
    index = reverse("admin:exchanges_negotiation_changelist")
    response = client.get(index)
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    assert client.get("/api/v1/negotiations/").status_code == 403

    wrong = client.post(VERIFY, {"code": "12345x", "next": index})
    assert wrong.status_code == 200 and "That code is not right" in wrong.content.decode()
    assert client.get(index).status_code == 302

    clock.shift(2)
    response = client.post(VERIFY, {"code": code_of(TOTPDevice.objects.get(user=user)), "next": index})
    assert response.status_code == 302 and response["Location"] == index
    assert client.get(index).status_code == 200
    assert client.get("/api/v1/negotiations/").status_code == 200


def test_the_code_page_never_sends_elsewhere_than_this_site(staff, clock):
    user = staff("Auditor")
    enrol(logged_in(user), clock)
    client = password_login(user)
    response = client.post(VERIFY, {"code": code_of(TOTPDevice.objects.get(user=user)), "next": "https://evil.example/"})
    assert response["Location"] == reverse("admin:index")


def test_a_backup_code_works_once(staff, clock):
    user = staff("Coordinator")
    codes = enrol(logged_in(user), clock)
    first = password_login(user)
    assert first.post(VERIFY, {"code": codes[0].upper()}).status_code == 302
    assert first.get(reverse("admin:index")).status_code == 200
    assert StaticToken.objects.filter(device__user=user).count() == 9

    clock.shift(60)
    second = password_login(user)
    refused = second.post(VERIFY, {"code": codes[0]})
    assert refused.status_code == 200 and "That code is not right" in refused.content.decode()
    assert second.get(reverse("admin:index")).status_code == 302


def test_wrong_codes_count_toward_the_login_lockout(staff, clock, settings):
    settings.TRACKER_LOGIN_MAX_FAILURES = 3
    user = staff("Coordinator")
    enrol(logged_in(user), clock)
    client = password_login(user)
    for _ in range(3):
        assert "That code is not right" in client.post(VERIFY, {"code": "999999x"}).content.decode()
        clock.shift(120)  # past django-otp's own slowing down: only the lockout is left
    locked = client.post(VERIFY, {"code": code_of(TOTPDevice.objects.get(user=user))})
    assert "Too many failed logins" in locked.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302
    # The password step from that address is locked for this username too.
    again = Client().post(reverse("admin:login"), {"username": user.username, "password": PASSWORD})
    assert again.status_code == 200


def test_removing_the_device_needs_a_code_and_is_audited(staff, clock):
    user = staff("Coordinator")
    client = logged_in(user)
    enrol(client, clock)
    refused = client.post(ENROL, {"action": "remove", "code": "nonsense"})
    assert "the device was not removed" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=user).exists()

    clock.shift(60)
    response = client.post(ENROL, {"action": "remove", "code": code_of(TOTPDevice.objects.get(user=user))})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert AuditEntry.objects.filter(model="otp_totp.totpdevice", action="delete", actor_label=user.username).exists()
    # A Coordinator must enrol again before anything else.
    assert client.get(reverse("admin:index"))["Location"].startswith(ENROL)


def test_a_viewer_is_not_forced_but_may_enrol(staff, clock):
    user = staff("Viewer")
    client = logged_in(user)
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get("/api/v1/negotiations/").status_code == 200
    assert "Two-factor authentication" in client.get(reverse("admin:index")).content.decode()  # the user menu
    enrol(client, clock)
    later = password_login(user)
    assert later.get(reverse("admin:index"))["Location"].startswith(VERIFY)


def test_the_setting_off_disables_the_requirement(staff, settings):
    settings.TRACKER_REQUIRE_2FA = False
    client = logged_in(staff("Coordinator"))
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get("/api/v1/negotiations/").status_code == 200


def test_superusers_are_required_only_when_listed(staff, settings):
    superuser = logged_in(staff(is_superuser=True))
    assert superuser.get(reverse("admin:index")).status_code == 200
    settings.TRACKER_REQUIRE_2FA_ROLES = ["coordinator", "auditor", "superuser"]
    assert superuser.get(reverse("admin:index"))["Location"].startswith(ENROL)


def test_api_clients_with_a_token_are_unaffected(make_api, ukraine):
    assert make_api(ukraine).get("/api/v1/negotiations/").status_code == 200


def test_a_login_owing_a_code_can_still_log_out(staff):
    client = logged_in(staff("Coordinator"))
    assert client.post(reverse("admin:logout")).status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("code", ["\x00\x00", "\ufffd", "1" * 5000, "", "--  --", "<script>"])
def test_odd_codes_and_next_addresses_are_refused_without_an_error(staff, clock, code):
    user = staff("Coordinator")
    enrol(logged_in(user), clock)
    client = password_login(user)
    for target in ["/admin/\r\nX-Injected: 1", "//evil.example/", "\x00"]:
        response = client.post(VERIFY, {"code": code, "next": target})
        assert response.status_code == 200 and "That code is not right" in response.content.decode()
    assert client.post(ENROL, {"action": "remove", "code": code}).status_code == 302  # a code is due first
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()


# Devices in the admin: listed for Coordinators and superusers, never their secrets;
# removal (a lost phone) through the service, audited, as the policy allows.


def enrolled(staff, clock, role=None, **extra):
    """A login with a device, enrolled through its page; returns (user, its verified client)."""
    user = staff(role, **extra)
    client = logged_in(user)
    enrol(client, clock)
    return user, client


def secrets_of(user):
    """Every form a login's secrets could take on a page: the key in hex and base32, the
    provisioning address, the backup codes."""
    from exchanges.two_factor import secret_text

    device = TOTPDevice.objects.get(user=user)
    return [device.key, secret_text(device), secret_text(device).replace(" ", ""), device.config_url,
            *StaticToken.objects.filter(device__user=user).values_list("token", flat=True)]  # fmt: skip


def delete_url(device):
    return reverse(f"admin:{device._meta.app_label}_{device._meta.model_name}_delete", args=[device.pk])


def test_a_coordinator_removes_a_lost_phone_in_the_admin_and_the_trail_says_who(staff, clock):
    owner, _client = enrolled(staff, clock, "Editor")
    coordinator, client = enrolled(staff, clock, "Coordinator")
    device = TOTPDevice.objects.get(user=owner)
    page = client.get(delete_url(device))
    assert page.status_code == 200
    text = page.content.decode()
    assert f"The two-factor authentication of {owner.username}" in text
    assert not any(secret in text for secret in secrets_of(owner))

    response = client.post(delete_url(device), {"post": "yes"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=owner).exists()
    assert not StaticDevice.objects.filter(user=owner).exists()  # the backup codes go with the app
    removed = AuditEntry.objects.filter(action="delete", actor_label=coordinator.username)
    assert {entry.model for entry in removed} == {"otp_totp.totpdevice", "otp_static.staticdevice"}
    assert all(entry.changes["user"] == [owner.username, None] and "key" not in entry.changes for entry in removed)
    assert TOTPDevice.objects.filter(user=coordinator, confirmed=True).exists()  # only the owner's


def test_removing_several_devices_with_the_list_action_goes_through_the_service(staff, clock):
    owners = [enrolled(staff, clock, "Viewer")[0] for _ in range(2)]
    coordinator, client = enrolled(staff, clock, "Coordinator")
    devices = StaticDevice.objects.filter(user__in=owners)
    changelist = reverse("admin:otp_static_staticdevice_changelist")
    form = {"action": "delete_selected", "_selected_action": [device.pk for device in devices]}
    confirm = client.post(changelist, form)
    assert confirm.status_code == 200
    assert not any(secret in confirm.content.decode() for owner in owners for secret in secrets_of(owner))
    assert client.post(changelist, {**form, "post": "yes"}).status_code == 302
    assert not TOTPDevice.objects.filter(user__in=owners).exists() and not StaticDevice.objects.filter(user__in=owners).exists()
    assert AuditEntry.objects.filter(action="delete", actor_label=coordinator.username, model="otp_totp.totpdevice").count() == 2


def test_a_viewer_may_not_see_or_remove_someone_elses_device(staff, clock):
    owner, _client = enrolled(staff, clock, "Editor")
    viewer, client = enrolled(staff, clock, "Viewer")
    device = TOTPDevice.objects.get(user=owner)
    assert client.get(reverse("admin:otp_totp_totpdevice_changelist")).status_code == 403
    assert client.get(delete_url(device)).status_code == 403
    assert client.post(delete_url(device), {"post": "yes"}).status_code == 403
    assert TOTPDevice.objects.filter(user=owner, confirmed=True).exists()
    assert not AuditEntry.objects.filter(action="delete", actor_label=viewer.username).exists()


def test_a_coordinator_may_not_remove_a_superusers_device(staff, clock):
    boss, _client = enrolled(staff, clock, is_superuser=True)
    _coordinator, client = enrolled(staff, clock, "Coordinator")
    device = TOTPDevice.objects.get(user=boss)
    assert client.post(delete_url(device), {"post": "yes"}).status_code == 403
    changelist = reverse("admin:otp_totp_totpdevice_changelist")
    refused = client.post(changelist, {"action": "delete_selected", "_selected_action": [device.pk], "post": "yes"})
    assert refused.status_code == 200 and "Only a superuser may remove" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=boss, confirmed=True).exists()


def test_no_admin_page_shows_a_devices_key_qr_code_or_backup_codes(staff, clock):
    owner, _client = enrolled(staff, clock, "Coordinator")
    _boss, client = enrolled(staff, clock, is_superuser=True)
    totp, static = TOTPDevice.objects.get(user=owner), StaticDevice.objects.get(user=owner)
    pages = [
        reverse("admin:otp_totp_totpdevice_changelist"),
        reverse("admin:otp_totp_totpdevice_change", args=[totp.pk]),
        reverse("admin:otp_static_staticdevice_changelist"),
        reverse("admin:otp_static_staticdevice_change", args=[static.pk]),
        f"/admin/otp_totp/totpdevice/{totp.pk}/config/",  # django-otp's key and QR code pages
        f"/admin/otp_totp/totpdevice/{totp.pk}/qrcode/",
    ]
    for page in pages:
        response = client.get(page, follow=True)
        assert response.status_code == 200, page
        text = response.content.decode()
        assert not any(secret in text for secret in secrets_of(owner)), page
        assert "otpauth://" not in text and "/qrcode/" not in text, page
    listed = client.get(reverse("admin:otp_static_staticdevice_changelist")).content.decode()
    assert owner.username in listed
    assert client.get(reverse("admin:otp_totp_totpdevice_add")).status_code == 403  # enrolment is the owner's
