"""Create or update a staff login with one role and its teams; print its password last.

    python manage.py create_staff_login USERNAME [--role viewer|editor|coordinator|auditor] [--team NAME]...

The login ends up with exactly that role (one of the groups in `exchanges.roles`; none:
no permission at all) and exactly those teams (missing teams are created). It is never a
superuser. The password is new and random on every run, or TRACKER_STAFF_PASSWORD when
set, and is printed alone on the last line. `ensure_staff_login` (the `make run` login)
goes through `set_staff_login` too.
"""
import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from exchanges import audit, services
from exchanges.models import AuditEntry, Team
from exchanges.roles import ROLES


def new_password():
    """TRACKER_STAFF_PASSWORD when set, otherwise a new random one."""
    return os.environ.get("TRACKER_STAFF_PASSWORD") or secrets.token_urlsafe(16)


def _messages(error):
    return "; ".join(error.messages)


def _snapshot(user):
    return audit.snapshot(
        user,
        groups=sorted(user.groups.values_list("name", flat=True)),
        teams=sorted(user.tracker_teams.values_list("name", flat=True)),
    )


def _teams(names):
    """The `Team` rows named, in the order given, creating the missing ones (audited)."""
    teams = []
    for name in dict.fromkeys(name.strip() for name in names):
        if not name:
            raise CommandError("A team name must not be empty.")
        team = Team.objects.filter(name=name).first()
        if team is None:
            try:
                team = services.create_record(Team(), actor=None, fields={"name": name}, allowed=("name",))
            except ValidationError as error:
                raise CommandError(f"Team {name!r}: {_messages(error)}") from None
        teams.append(team)
    return teams


@transaction.atomic
def set_staff_login(username, *, role=None, teams=(), password, email=None):
    """Create or update the staff login `username`: active, staff, never superuser, in
    exactly the group of `role` (a key of `exchanges.roles.ROLES`, or None for no role and
    so no permission) and exactly the teams named in `teams`, with `password` (and
    `email`, when given, on a new login).

    Returns `(user, created, notes)`; `notes` says what was taken away. Raises
    `CommandError` for an unknown role, a bad username or team name, or missing roles."""
    if role is not None and role not in ROLES:
        raise CommandError(f"Unknown role {role!r}; choose one of: {', '.join(ROLES)}.")
    User = get_user_model()
    try:
        username = User._meta.get_field(User.USERNAME_FIELD).clean(username, None)
    except ValidationError as error:
        raise CommandError(f"Username {username!r}: {_messages(error)}") from None
    role_groups = {group.name: group for group in Group.objects.filter(name__in=[name for name, _perms in ROLES.values()])}
    if role is not None and ROLES[role][0] not in role_groups:
        raise CommandError(f"The role group {ROLES[role][0]!r} does not exist; run `python manage.py migrate` first.")
    team_rows = _teams(teams)

    user = User.objects.select_for_update().filter(**{User.USERNAME_FIELD: username}).first()
    created = user is None
    if created:
        user = User(**{User.USERNAME_FIELD: username})
        if email:
            user.email = email
        before = None
    else:
        before = _snapshot(user)
    notes = []
    if user.is_superuser:
        notes.append("no longer a superuser")
    user.is_staff = True
    user.is_active = True
    user.is_superuser = False
    user.set_password(password)
    user.save()

    wanted = [role_groups[ROLES[role][0]]] if role is not None else []
    if not created:
        dropped = sorted(set(user.groups.values_list("name", flat=True)) - {group.name for group in wanted})
        if dropped:
            notes.append(f"removed from {', '.join(dropped)}")
        if user.user_permissions.exists():
            notes.append("its own permissions removed")
            user.user_permissions.clear()
    user.groups.set(wanted)
    user.tracker_teams.set(team_rows)

    audit.record(
        actor=None,
        action=AuditEntry.Action.CREATE if created else AuditEntry.Action.UPDATE,
        instance=user,
        before=before,
        after=_snapshot(user),
    )
    return user, created, notes


def describe(user):
    groups = sorted(user.groups.values_list("name", flat=True))
    teams = sorted(user.tracker_teams.values_list("name", flat=True))
    return (
        f"role: {', '.join(groups) or 'none (no permission)'}; "
        f"teams: {', '.join(teams) or 'none'}"
    )


class Command(BaseCommand):
    help = (
        "Create or update a staff login with exactly one role (or none: no permission) and exactly "
        "the teams given (missing teams are created). Never a superuser. Its password (new and "
        "random each run, or TRACKER_STAFF_PASSWORD) is printed alone on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="The login's username.")
        parser.add_argument(
            "--role",
            help="viewer, editor, coordinator or auditor; omitted: no role and so no permission.",
        )
        parser.add_argument(
            "--team",
            action="append",
            default=[],
            dest="teams",
            metavar="NAME",
            help="A team the login belongs to (repeatable); the login leaves teams not named.",
        )

    def handle(self, *args, username, role, teams, **options):
        password = new_password()
        role = role.strip().lower() if role else None
        user, created, notes = set_staff_login(username, role=role, teams=teams, password=password)
        self.stdout.write(
            f"{'Created' if created else 'Updated'} staff login {user.get_username()!r} ({describe(user)})"
            f"{'; ' + '; '.join(notes) if notes else ''}."
        )
        self.stdout.write("Its password (sign in at /admin/):")
        self.stdout.write(password)
