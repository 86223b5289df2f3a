"""The four staff roles as Django groups, and the permissions each one carries.

Migrations call `sync_roles` (idempotent: a role gets exactly these permissions, other
groups are left alone); `create_staff_login --role` puts a login in one. A role is a
set of model permissions, so the admin and the API honour it the same way.
"""
#: What a Viewer reads: the record and the flags, not the trail, clients or outbox.
RECORD = {
    "exchanges": ["party", "detaineegroup", "reportedfigure", "negotiation", "participant", "coveredgroup",
                  "statuschange", "event", "team", "commitment", "handover", "transfer"],
    "tracker": ["flag", "stallrule"],
}  # fmt: skip


def _perms(app, actions, models):
    return {f"{app}.{action}_{model}" for action in actions for model in models}


VIEWER = {f"{app}.view_{model}" for app, models in RECORD.items() for model in models}

EDITOR = VIEWER | {
    "exchanges.add_negotiation",
    "exchanges.change_negotiation",
    "exchanges.add_statuschange",
    "exchanges.add_coveredgroup",
    "exchanges.change_coveredgroup",
    "exchanges.delete_coveredgroup",
    "tracker.change_flag",  # acknowledging a flag
} | _perms("exchanges", ["add", "change"], ["event", "detaineegroup", "reportedfigure", "handover"])

COORDINATOR = EDITOR | {
    "exchanges.manage_access",  # participants, visibility and teams
    "exchanges.delete_negotiation",  # one entered by mistake, while nothing has happened in it
    "exchanges.view_auditentry",
    "exchanges.view_apiclient",
    "exchanges.add_apiclient",
    "exchanges.change_apiclient",
    "tracker.change_stallrule",
    "tracker.view_webhookdelivery",
    "tracker.change_webhookdelivery",  # redelivering
    "tracker.view_emailnotification",
    "tracker.view_scanrun",
    "tracker.view_deliveryattempt",  # the attempts under each delivery
    # Staff logins' two-factor devices, listed (never their keys or codes), and removed for
    # someone who lost their phone (exchanges/admin/two_factor.py).
    "otp_totp.view_totpdevice",
    "otp_totp.delete_totpdevice",
    "otp_static.view_staticdevice",
    "otp_static.delete_staticdevice",
} | _perms("exchanges", ["add", "change", "delete"], ["participant", "party", "team"]) | _perms(
    "exchanges", ["delete"], ["event", "detaineegroup", "reportedfigure", "handover"]
) | _perms("tracker", ["view", "add", "change", "delete"], ["webhooksubscription"])

AUDITOR = {"exchanges.view_auditentry", "exchanges.view_accesslogentry"}

#: role key -> (group name, permissions). The group names are what the admin shows.
ROLES = {
    "viewer": ("Viewer", VIEWER),
    "editor": ("Editor", EDITOR),
    "coordinator": ("Coordinator", COORDINATOR),
    "auditor": ("Auditor", AUDITOR),
}


def sync_roles(Group, Permission, *, strict=True):
    """Create or correct the four role groups; `Group` and `Permission` may be the
    historical models of a migration. Returns {role key: group}.

    `strict=False` (the migration that first creates them) skips permissions that do not
    exist yet: a later migration may add a model a role names, and the sync after every
    `migrate` (tracker.apps) then completes the roles."""
    groups = {}
    for key, (name, wanted) in ROLES.items():
        group, _created = Group.objects.get_or_create(name=name)
        permissions = []
        for label in sorted(wanted):
            app_label, codename = label.split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is None:
                if not strict:
                    continue
                raise LookupError(f"Permission {label} does not exist; run the migrations of {app_label} first.")
            permissions.append(permission)
        group.permissions.set(permissions)
        groups[key] = group
    return groups
