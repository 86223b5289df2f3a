"""Make sure a staff login exists for the admin and print it (used by `make run`)."""
import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or reset the local staff login and print it. Password from TRACKER_STAFF_PASSWORD or random."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("TRACKER_STAFF_USERNAME", "staff"))

    def handle(self, *args, username, **options):
        password = os.environ.get("TRACKER_STAFF_PASSWORD") or secrets.token_urlsafe(12)
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@localhost"})
        user.is_staff = True
        user.is_superuser = True
        user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Staff login: {username} / {password}")
