"""Make sure the local demo staff login exists and print it (used by `make run`).

It is a Coordinator in the demo's desks (`exchanges.demo.DEMO_LOGIN_TEAMS`), not a
superuser: it sees what those teams see, so the demo's staff-only negotiation of
another team stays hidden from it. It goes through the same code as
`create_staff_login`.
"""
import os

from django.core.management.base import BaseCommand

from exchanges.demo import DEMO_LOGIN_ROLE, DEMO_LOGIN_TEAMS

from .create_staff_login import new_password, set_staff_login


class Command(BaseCommand):
    help = (
        "Create or reset the local demo staff login (a Coordinator in the demo teams, not a superuser) "
        "and print it. Password from TRACKER_STAFF_PASSWORD or random."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("TRACKER_STAFF_USERNAME", "staff"))

    def handle(self, *args, username, **options):
        password = new_password()
        user, _created, _notes = set_staff_login(
            username, role=DEMO_LOGIN_ROLE, teams=DEMO_LOGIN_TEAMS, password=password, email=f"{username}@localhost"
        )
        self.stdout.write(f"Staff login: {user.get_username()} / {password}")
