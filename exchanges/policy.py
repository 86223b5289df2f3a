"""Who may see and do what: the one place the tracker answers it.

Two kinds of principal ask: a staff `User` (Django model permissions, given through the
four roles in `exchanges.roles`, and teams) and an `ApiClient` (its party's current
participation, nothing else). `None` is the system (commands, tasks, the demo loader).

- Reading: `restrict(queryset, principal)` narrows any queryset of the record to what the
  principal may see (NetBox's `RestrictedQuerySet.restrict`); `negotiation_visibility_q`
  is the rule for negotiations, also compiled into the fast read path's SQL.
- Writing: `require(principal, action, target)` raises `Refused` (HTTP 403 with the
  reason) unless the principal may do `action` ("add", "change", "delete",
  "acknowledge", "manage_access") to `target` (an instance, or a model for "add");
  `allows(...)` is the same question as a bool, for the admin's buttons.

The API views, the admin and the services all ask here; nothing else decides.
"""
import uuid

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Exists, Func, JSONField, OuterRef, Q, TextField, Value
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from .choices import ParticipantRole, Visibility
from .models import ApiClient, CoveredGroup, DetaineeGroup, Negotiation, Participant

SEE_ALL_STAFF_ONLY = "exchanges.see_all_staff_only"
MANAGE_ACCESS = "exchanges.manage_access"


class Refused(PermissionDenied):
    """The principal may see the object but not do this to it (HTTP 403, nothing written)."""

    def __init__(self, detail):
        self.detail = str(detail)
        super().__init__(self.detail)


# Principals ---------------------------------------------------------------------------


def is_client(principal):
    return isinstance(principal, ApiClient)


def is_staff(principal):
    """An active staff login (API clients and anonymous users are not)."""
    return (
        isinstance(principal, get_user_model())
        and principal.is_active
        and principal.is_staff
    )


def team_ids(user):
    """The ids of the teams a staff login belongs to, read once per request object."""
    if not hasattr(user, "_tracker_team_ids"):
        user._tracker_team_ids = frozenset(user.tracker_teams.values_list("pk", flat=True)) if user.pk else frozenset()
    return user._tracker_team_ids


def sees_every_staff_only(user):
    return is_staff(user) and user.has_perm(SEE_ALL_STAFF_ONLY)


def _perm(model, action):
    meta = model._meta
    if action == "manage_access":
        return MANAGE_ACCESS
    if action == "acknowledge":
        action = "change"
    return f"{meta.app_label}.{action}_{meta.model_name}"


def has_model_perm(user, model, action="view"):
    return is_staff(user) and user.has_perm(_perm(model, action))


# Seeing -------------------------------------------------------------------------------


def client_negotiation_q(party, prefix=""):
    """Negotiations an API client of `party` sees: `all_partners` ones, and `participants`
    ones its party takes part in now. `party` is a party id or an SQL expression for one
    (the fast read path passes the token's client's column). Having recorded a
    negotiation gives no access of its own."""
    if not hasattr(party, "resolve_expression"):
        party = Value(str(party)) if connection.vendor == "postgresql" else uuid.UUID(str(party))
    if connection.vendor == "postgresql":
        # A per-row check on the negotiation's own list of party ids (jsonb @>), kept by
        # the participants service: PostgreSQL would otherwise hash all of the party's
        # participations before returning a page. The list holds text ids.
        takes_part = Q(
            **{
                f"{prefix}party_ids__contains": Func(
                    Cast(party, output_field=TextField()), function="jsonb_build_array", output_field=JSONField()
                )
            }
        )
    else:
        takes_part = Q(Exists(Participant.objects.filter(negotiation=OuterRef(f"{prefix}pk"), party=party)))
    return Q(**{f"{prefix}visibility": Visibility.ALL_PARTNERS}) | (
        Q(**{f"{prefix}visibility": Visibility.PARTICIPANTS}) & takes_part
    )


def staff_negotiation_scope_q(user, prefix=""):
    """Negotiations a staff login's teams let it see, whatever its model permissions: all
    but the `staff_only` ones of teams it is not in (unless it may see every one)."""
    if sees_every_staff_only(user):
        return Q()
    in_team = Exists(
        Negotiation.teams.through.objects.filter(negotiation=OuterRef(f"{prefix}pk"), team__in=team_ids(user))
    )
    return ~Q(**{f"{prefix}visibility": Visibility.STAFF_ONLY}) | Q(in_team)


def negotiation_visibility_q(principal, prefix=""):
    """A Q over negotiations (through `prefix`, e.g. "negotiation__") the principal may see."""
    if is_client(principal):
        return client_negotiation_q(principal.party_id, prefix)
    if has_model_perm(principal, Negotiation):
        return staff_negotiation_scope_q(principal, prefix)
    return Q(**{f"{prefix}pk__in": []})


def negotiations_visible_to(principal):
    return Negotiation.objects.filter(negotiation_visibility_q(principal))


def may_see_negotiation(principal, negotiation):
    if principal is None:
        return True
    return negotiations_visible_to(principal).filter(pk=negotiation.pk).exists()


def in_staff_scope(user, negotiation):
    """Whether a staff login's teams let it see this negotiation (no database read when
    the negotiation is not staff-only)."""
    if negotiation.visibility != Visibility.STAFF_ONLY or sees_every_staff_only(user):
        return True
    return Negotiation.teams.through.objects.filter(negotiation=negotiation, team__in=team_ids(user)).exists()


class EachRowExists(Exists):
    """EXISTS asked of each row a page walks, for an EXISTS under an OR. Left alone,
    PostgreSQL may instead hash the whole subquery first (every negotiation a client
    sees) because it costs the rows before the LIMIT: the groups list took 88 ms at 100k
    negotiations that way, 0.7 ms row by row. `OFFSET 0` is its documented fence."""

    template = "EXISTS(%(subquery)s OFFSET 0)"  # after the LIMIT 1 of every EXISTS


def client_group_q(party_id, prefix=""):
    """Detainee groups an API client of `party_id` sees: those its party holds, is
    affiliated with or recorded, and those covered by a negotiation it sees."""
    covered = CoveredGroup.objects.filter(group=OuterRef(f"{prefix}pk")).filter(
        client_negotiation_q(party_id, prefix="negotiation__")
    )
    return (
        Q(**{f"{prefix}held_by": party_id})
        | Q(**{f"{prefix}affiliated_with": party_id})
        | Q(**{f"{prefix}recorded_by_party": party_id})
        | Q(EachRowExists(covered))
    )


def _hidden_negotiation_q(user, field):
    """Rows whose `field` (a negotiation id column, or null) the login may not see: a
    negotiation of a team it is not in, and one deleted since (it may have been staff-only:
    what it was is no longer there to ask), unless it may see every staff-only one."""
    if sees_every_staff_only(user):
        return Q(pk__in=[])
    hidden = Negotiation.objects.filter(pk=OuterRef(field)).exclude(staff_negotiation_scope_q(user))
    gone = Q(**{f"{field}__isnull": False}) & ~Q(Exists(Negotiation.objects.filter(pk=OuterRef(field))))
    return Q(Exists(hidden)) | gone


#: Rows that hang off a negotiation: seen with their own view permission and the
#: negotiation's visibility.
NEGOTIATION_CHILDREN = {
    "exchanges.statuschange", "exchanges.event", "exchanges.participant", "exchanges.coveredgroup",
    "exchanges.commitment", "exchanges.handover", "exchanges.transfer",
    "tracker.flag", "tracker.webhookdelivery", "tracker.emailnotification",
}  # fmt: skip
#: Logs that name a negotiation by id (no foreign key): seen with their view permission,
#: except the entries about negotiations the login may not see.
NEGOTIATION_LOGS = {"exchanges.auditentry": "negotiation_id", "exchanges.accesslogentry": "negotiation_id"}


def restrict(queryset, principal):
    """`queryset` narrowed to what `principal` may see (none for anyone else)."""
    model = queryset.model
    label = model._meta.label_lower
    if principal is None:
        return queryset
    if is_client(principal):
        return _restrict_for_client(queryset, principal, label)
    if not has_model_perm(principal, model):
        return queryset.none()
    if label == "exchanges.negotiation":
        return queryset.filter(staff_negotiation_scope_q(principal))
    if label in NEGOTIATION_CHILDREN:
        return queryset.filter(staff_negotiation_scope_q(principal, prefix="negotiation__"))
    if label in NEGOTIATION_LOGS:
        return queryset.exclude(_hidden_negotiation_q(principal, NEGOTIATION_LOGS[label]))
    return queryset


def _restrict_for_client(queryset, client, label):
    if label == "exchanges.party":
        return queryset
    if label == "exchanges.negotiation":
        return queryset.filter(client_negotiation_q(client.party_id))
    if label in NEGOTIATION_CHILDREN - {"tracker.webhookdelivery", "tracker.emailnotification"}:
        return queryset.filter(client_negotiation_q(client.party_id, prefix="negotiation__"))
    if label == "tracker.webhookdelivery":
        return queryset.filter(subscription__client=client).filter(
            client_negotiation_q(client.party_id, prefix="negotiation__")
        )
    if label == "tracker.webhooksubscription":
        return queryset.filter(client=client)
    if label == "exchanges.detaineegroup":
        return queryset.filter(client_group_q(client.party_id))
    if label == "exchanges.reportedfigure":
        return queryset.filter(client_group_q(client.party_id, prefix="group__"))
    return queryset.none()


def groups_visible_to(principal):
    return restrict(DetaineeGroup.objects.all(), principal)


# Doing --------------------------------------------------------------------------------


def allows(principal, action, target, **context):
    try:
        require(principal, action, target, **context)
    except Refused:
        return False
    return True


def require(principal, action, target, *, negotiation=None):
    """Raise `Refused` unless `principal` may do `action` to `target` (an instance, or
    the model itself for "add"). `negotiation`: the one a new row would belong to."""
    if principal is None:
        return
    model = target if isinstance(target, type) else type(target)
    instance = None if isinstance(target, type) else target
    if negotiation is None:
        negotiation = instance if isinstance(instance, Negotiation) else getattr(instance, "negotiation", None)
    if is_client(principal):
        _require_for_client(principal, action, model, instance, negotiation)
    elif is_staff(principal):
        _require_for_staff(principal, action, model, negotiation)
    else:
        raise Refused(_("Only staff and API clients may do this."))


def _require_for_staff(user, action, model, negotiation):
    if not user.has_perm(_perm(model, action)):
        raise Refused(
            _("Your login lacks the permission to %(action)s %(what)s.")
            % {"action": _action_label(action), "what": model._meta.verbose_name_plural}
        )
    if negotiation is not None and not in_staff_scope(user, negotiation):
        raise Refused(_("This staff-only negotiation belongs to teams you are not in."))


def _action_label(action):
    return {
        "view": _("view"),
        "add": _("add"),
        "change": _("change"),
        "delete": _("delete"),
        "acknowledge": _("acknowledge"),
        "manage_access": _("change who takes part in and who sees"),
    }.get(action, action)


#: Rows only the party that recorded them changes or deletes.
RECORDED_BY_PARTY = {"exchanges.detaineegroup", "exchanges.reportedfigure", "exchanges.event", "exchanges.handover"}


def _require_for_client(client, action, model, instance, negotiation):
    if client.read_only and action != "view":
        raise Refused(_("This API client is read-only."))
    label = model._meta.label_lower
    if label == "exchanges.party":
        if action != "add":
            raise Refused(_("Only staff change or delete a party."))
        return
    if label == "exchanges.negotiation":
        if action == "add":
            return  # what it must contain is validated by the service (400)
        if action == "manage_access":
            raise Refused(_("Only staff change who may see a negotiation (its visibility)."))
        if action == "delete":
            raise Refused(_("Only staff delete a negotiation."))
        _require_taking_part(client, instance)
        return
    if label in ("exchanges.detaineegroup", "exchanges.reportedfigure") and action == "add":
        return
    if label in RECORDED_BY_PARTY and action != "add":
        if negotiation is not None:
            _require_taking_part(client, negotiation)
        if instance.recorded_by_party_id != client.party_id:
            raise Refused(
                _("Only the party that recorded this %(what)s may change or delete it.")
                % {"what": model._meta.verbose_name}
            )
        return
    if label == "tracker.webhooksubscription":
        if instance is not None and instance.client_id != client.pk:
            raise Refused(_("A client manages only its own subscriptions."))
        return
    if negotiation is not None and label in NEGOTIATION_CHILDREN:
        _require_taking_part(client, negotiation)  # status changes, events, acknowledging flags
        return
    raise Refused(_("API clients may not do this."))


def participant_role(party_id, negotiation):
    return Participant.objects.filter(negotiation=negotiation, party=party_id).values_list("role", flat=True).first()


def _require_taking_part(client, negotiation):
    role = participant_role(client.party_id, negotiation)
    if role is None:
        raise Refused(_("Your party does not take part in this negotiation."))
    if role == ParticipantRole.OBSERVER:
        raise Refused(_("Your party only observes this negotiation: observers do not change it."))


def require_participants_change(principal, negotiation, participants):
    """A new participants list, checked against the current one: a client may add parties
    and change its own role, never remove or re-role another party; staff need the
    permission to manage access for any change."""
    current = dict(Participant.objects.filter(negotiation=negotiation).values_list("party_id", "role"))
    wanted = {entry["party"].pk: entry["role"] for entry in participants}
    if wanted == current or principal is None:
        return
    if not is_client(principal):
        require(principal, "manage_access", negotiation)
        return
    names = dict(negotiation.parties.values_list("pk", "name"))
    for party_id, role in current.items():
        if party_id == principal.party_id:
            continue
        if party_id not in wanted:
            raise Refused(_("Only staff remove another party from a negotiation (%(party)s).") % {"party": names[party_id]})
        if wanted[party_id] != role:
            raise Refused(_("Only staff change another party's role (%(party)s).") % {"party": names[party_id]})


def require_commitments_change(principal, negotiation, current, wanted):
    """A new commitments list (`wanted`: party id -> entry) against the current one
    (party id -> Commitment): a client adds, changes or removes only its own party's
    commitment; what another party undertook is that party's (or staff's) to record."""
    if not is_client(principal):
        return
    def terms(row):
        return None if row is None else (row.count, row.seriously_wounded_count, row.notes or "")

    def asked(entry):
        if entry is None:
            return None
        return (entry.get("count"), entry.get("seriously_wounded_count"), entry.get("notes") or "")

    for party_id in set(current) | set(wanted):
        if party_id == principal.party_id or terms(current.get(party_id)) == asked(wanted.get(party_id)):
            continue
        party = (wanted.get(party_id) or {}).get("party") or current[party_id].party
        raise Refused(_("Only staff record what another party undertook (%(party)s).") % {"party": party})


#: Removing another login's second factor (a lost phone): Coordinators (exchanges.roles)
#: and superusers.
REMOVE_OTHERS_TWO_FACTOR = "otp_totp.delete_totpdevice"


def require_two_factor_removal(principal, owner):
    """Raise `Refused` unless `principal` may remove the two-factor devices of `owner`:
    staff their own (on their two-factor page, after a code); another login's only with
    the permission to (Coordinators, superusers); a superuser's only a superuser, so that
    no one weakens the login of someone who may do more than they."""
    if principal is None:
        return
    if not is_staff(principal):
        raise Refused(_("Only staff may do this."))
    if principal.pk == owner.pk:
        return
    if not principal.has_perm(REMOVE_OTHERS_TWO_FACTOR):
        raise Refused(_("Only a Coordinator or a superuser may remove another login's two-factor authentication."))
    if owner.is_superuser and not principal.is_superuser:
        raise Refused(_("Only a superuser may remove a superuser's two-factor authentication."))
