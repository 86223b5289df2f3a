"""Make sure the local demo staff login exists and print it (used by `make run`).

It is a Coordinator in the demo's desks (`exchanges.demo.DEMO_LOGIN_TEAMS`), not a
superuser: it sees what those teams see, so the demo's staff-only negotiation of
another team stays hidden from it. It goes through the same code as
`create_staff_login`. Its password stays the same from one `make run` to the next: it is
kept in the runtime folder (`var/staff-login-password`) unless TRACKER_STAFF_PASSWORD
gives one.
"""
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from exchanges.demo import DEMO_LOGIN_ROLE, DEMO_LOGIN_TEAMS

from .create_staff_login import new_password, set_staff_login


def kept_password():
    """TRACKER_STAFF_PASSWORD when set; else the password an earlier run kept in the runtime
    folder; else a new random one, kept there (readable by its owner only)."""
    if os.environ.get("TRACKER_STAFF_PASSWORD"):
        return new_password()
    path = Path(settings.VAR_DIR) / "staff-login-password"
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    password = new_password()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password


class Command(BaseCommand):
    help = (
        "Create or reset the local demo staff login (a Coordinator in the demo teams, not a superuser) "
        "and print it. Password from TRACKER_STAFF_PASSWORD, else the one kept in var/, else a new one kept there."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("TRACKER_STAFF_USERNAME", "staff"))

    def handle(self, *args, username, **options):
        password = kept_password()
        user, _created, _notes = set_staff_login(
            username, role=DEMO_LOGIN_ROLE, teams=DEMO_LOGIN_TEAMS, password=password, email=f"{username}@localhost"
        )
        self.stdout.write(f"Staff login: {user.get_username()} / {password}")
