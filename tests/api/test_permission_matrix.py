"""Who may change what, read from one table: endpoint x action x principal -> status.

Every refusal (4xx) is checked to have written nothing; every 403 says why (`detail`).

The world (`world` below): an `all_partners` negotiation N between Ukraine and Russia
(sides) with the ICRC observing; a `participants` negotiation H between Ukraine and
Russia covering group G; a `staff_only` negotiation S of the team "Desk A". Russia's
client recorded the event E on N, the group G (held by Russia, affiliated with
Ukraine), the figure F on G, an uncovered group G3 of its own, and the planned handover
K on N; N and S each have an open flag.

Principals: API clients of a bystander state (OUT, takes part in nothing), the ICRC
(observer on N), Ukraine (side), Russia (side, and the recorder), and a read-only
Ukrainian client; staff logins with no permission, each of the four roles (members of
"Desk A"), and an Editor outside "Desk A".
"""
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.core import serializers as django_serializers
from django.utils import timezone
from rest_framework.test import APIClient

from exchanges import services
from exchanges.models import Team
from tests.factories import NegotiationFactory, PartyFactory
from tracker.models import Flag

pytestmark = pytest.mark.django_db

PRINCIPALS = ("bystander", "observer", "side", "recorder", "read_only", "no_perms", "viewer", "editor", "coordinator", "auditor", "non_member")  # fmt: skip

# fmt: off
#  action                        bystnd  obsrv  side  recrd  r-o   none  viewr  editr  coord  audit  nonmem
MATRIX = """
list negotiations               200     200    200   200    200   403   200    200    200    403    200
read N                          200     200    200   200    200   403   200    200    200    403    200
read H                          404     404    200   200    200   403   200    200    200    403    200
read S                          404     404    404   404    404   403   200    200    200    403    404
list events of S                404     404    404   404    404   403   200    200    200    403    404
change N title                  403     403    200   200    403   403   403    200    200    403    200
change N visibility             403     403    403   403    403   403   403    403    200    403    403
remove observer from N          403     403    403   403    403   403   403    403    200    403    403
demote Russia on N              403     403    403   200    403   403   403    403    200    403    403
add a party to N                403     403    200   200    403   403   403    403    200    403    403
change own role on N            403     403    200   200    403   403   403    403    200    403    403
record status change on N       403     403    201   201    403   403   403    201    201    403    201
record event on N               403     403    201   201    403   403   403    201    201    403    201
change event E                  403     403    403   200    403   403   403    200    200    403    200
delete event E                  403     403    403   204    403   403   403    403    204    403    403
change S title                  404     404    404   404    403   403   403    200    200    403    404
acknowledge flag on N           403     403    200   200    403   403   403    200    200    403    200
acknowledge flag on S           404     404    404   404    403   403   403    200    200    403    404
read group G                    404     404    200   200    200   403   200    200    200    403    200
record group                    201     201    201   201    403   403   403    201    201    403    201
change group G                  404     404    403   200    403   403   403    200    200    403    200
delete group G                  404     404    403   409    403   403   403    403    409    403    403
delete group G3                 404     404    404   204    403   403   403    403    204    403    403
list figures of G               404     404    200   200    200   403   200    200    200    403    200
add figure to G                 404     404    201   201    403   403   403    201    201    403    201
change figure F                 404     404    403   200    403   403   403    200    200    403    200
withdraw figure F               404     404    403   204    403   403   403    403    204    403    403
add party                       201     201    201   201    403   403   403    403    201    403    403
rename party OUT                403     403    403   403    403   403   403    403    200    403    403
delete unused party             403     403    403   403    403   403   403    403    204    403    403
delete party OUT                403     403    403   403    403   403   403    403    409    403    403
record handover on N            403     403    201   201    403   403   403    201    201    403    201
change handover K               403     403    403   200    403   403   403    200    200    403    200
delete handover K               403     403    403   204    403   403   403    403    204    403    403
set Ukraine's commitment on N   403     403    200   403    403   403   403    200    200    403    200
"""
# fmt: on
TABLE = [
    (line[:32].strip(), dict(zip(PRINCIPALS, map(int, line[32:].split()))))
    for line in MATRIX.strip().splitlines()
]


def actions(w):
    """action -> (method, url, body) in the world `w`."""
    n, h, s = f"/api/v1/negotiations/{w['N'].pk}/", f"/api/v1/negotiations/{w['H'].pk}/", f"/api/v1/negotiations/{w['S'].pk}/"
    g = f"/api/v1/detainee-groups/{w['G'].pk}/"
    ua, ru, icrc, out = (str(w[name].pk) for name in ("UA", "RU", "ICRC", "OUT"))
    now = timezone.now().replace(microsecond=0).isoformat()
    members = [{"party": ua, "role": "side"}, {"party": ru, "role": "side"}]
    observer = {"party": icrc, "role": "observer"}
    return {
        "list negotiations": ("get", "/api/v1/negotiations/", None),
        "read N": ("get", n, None),
        "read H": ("get", h, None),
        "read S": ("get", s, None),
        "list events of S": ("get", s + "events/", None),
        "change N title": ("patch", n, {"title": "Renamed"}),
        "change N visibility": ("patch", n, {"visibility": "participants"}),
        "remove observer from N": ("patch", n, {"participants": members}),
        "demote Russia on N": ("patch", n, {"participants": [members[0], {"party": ru, "role": "observer"}, observer]}),
        "add a party to N": ("patch", n, {"participants": [*members, observer, {"party": out, "role": "observer"}]}),
        # The caller's own role, whichever side it is (staff: Ukraine's).
        "change own role on N": ("patch", n, "own role"),
        "record status change on N": ("post", n + "status-changes/", {"to_status": "in_talks"}),
        "record event on N": ("post", n + "events/", {"kind": "meeting", "occurred_at": now, "summary": "Met"}),
        "change event E": ("patch", n + f"events/{w['E'].pk}/", {"summary": "Rewritten"}),
        "delete event E": ("delete", n + f"events/{w['E'].pk}/", None),
        "change S title": ("patch", s, {"title": "Renamed"}),
        "acknowledge flag on N": ("post", f"/api/v1/flags/{w['flag N'].pk}/acknowledge/", None),
        "acknowledge flag on S": ("post", f"/api/v1/flags/{w['flag S'].pk}/acknowledge/", None),
        "read group G": ("get", g, None),
        "record group": ("post", "/api/v1/detainee-groups/", {"name": "New", "held_by": ru, "affiliated_with": ua, "category": "civilians"}),
        "change group G": ("patch", g, {"location": "Olenivka"}),
        "delete group G": ("delete", g, None),
        "delete group G3": ("delete", f"/api/v1/detainee-groups/{w['G3'].pk}/", None),
        "list figures of G": ("get", g + "figures/", None),
        "add figure to G": ("post", g + "figures/", {"metric": "total", "value": 3, "reported_on": "2022-05-17"}),
        "change figure F": ("patch", g + f"figures/{w['F'].pk}/", {"reliability": "disputed"}),
        "withdraw figure F": ("delete", g + f"figures/{w['F'].pk}/", None),
        "add party": ("post", "/api/v1/parties/", {"name": "Newly recognised", "kind": "state"}),
        "rename party OUT": ("patch", f"/api/v1/parties/{out}/", {"name": "Renamed state"}),
        "delete unused party": ("delete", f"/api/v1/parties/{w['unused'].pk}/", None),
        "delete party OUT": ("delete", f"/api/v1/parties/{out}/", None),
        "record handover on N": ("post", n + "handovers/", {"state": "planned"}),
        "change handover K": ("patch", n + f"handovers/{w['K'].pk}/", {"location": "Elsewhere"}),
        "delete handover K": ("delete", n + f"handovers/{w['K'].pk}/", None),
        "set Ukraine's commitment on N": ("patch", n, {"commitments": [{"party": ua, "count": 10}]}),
    }


ROLE_GROUPS = {"viewer": "Viewer", "editor": "Editor", "coordinator": "Coordinator", "auditor": "Auditor", "non_member": "Editor"}


CLIENTS = {"bystander": ("OUT", False), "observer": ("ICRC", False), "side": ("UA", False), "recorder": ("RU", False), "read_only": ("UA", True)}  # fmt: skip


@pytest.fixture
def world():
    w = {name: PartyFactory(name=label, short_name=name) for name, label in (
        ("UA", "Government of Ukraine"), ("RU", "Russian Federation"), ("ICRC", "ICRC"), ("OUT", "Bystander state"),
    )}  # fmt: skip
    w["unused"] = PartyFactory(name="Unused party")
    ru, w["recorder token"] = services.api_client_create(name="recorder", party=w["RU"])
    w["desk"] = Team.objects.create(name="Desk A")
    w["N"] = NegotiationFactory(title="All for all", visibility="all_partners", participants=[(w["UA"], "side"), (w["RU"], "side"), (w["ICRC"], "observer")])
    w["G"] = services.detainee_group_create(actor=ru, name="Garrison", held_by=w["RU"], affiliated_with=w["UA"], category="combatants")
    w["G3"] = services.detainee_group_create(actor=ru, name="Own detainees", held_by=w["RU"], affiliated_with=w["RU"], category="civilians")
    w["H"] = NegotiationFactory(title="Wounded for wounded", visibility="participants", participants=[(w["UA"], "side"), (w["RU"], "side")], groups=[w["G"]])
    w["S"] = NegotiationFactory(title="Internal assessment", visibility="staff_only", participants=[(w["UA"], "side")])
    w["S"].teams.set([w["desk"]])
    w["E"] = services.event_create(negotiation=w["N"], actor=ru, kind="statement", occurred_at=timezone.now() - timedelta(days=1), summary="Russia's statement", parties=[w["OUT"]])
    w["K"] = services.handover_create(negotiation=w["N"], actor=ru, state="planned")
    w["F"] = services.figure_create(group=w["G"], actor=ru, metric="total", value=1730, reported_on=timezone.localdate())
    for name in ("N", "S"):
        w[f"flag {name}"] = Flag.objects.create(
            negotiation=w[name], kind="no_activity", level="overdue", raised_at=timezone.now(), silent_since=timezone.now() - timedelta(days=40)
        )
    return w


def acting_as(w, principal, django_user_model):
    """An HTTP client for `principal` (only that one is made: the table has hundreds of rows)."""
    api = APIClient()
    if principal in CLIENTS:
        party, read_only = CLIENTS[principal]
        token = w["recorder token"] if principal == "recorder" else services.api_client_create(
            name=principal, party=w[party], read_only=read_only
        )[1]
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return api
    user = django_user_model.objects.create_user(username=principal, password="pw-123456", is_staff=True)
    if principal in ROLE_GROUPS:
        user.groups.add(Group.objects.get(name=ROLE_GROUPS[principal]))
    if principal != "non_member":
        w["desk"].members.add(user)
    api.force_login(user)
    return api


def record_snapshot():
    """Every row of the record and the tracker (not the logs): equal means nothing written."""
    rows = []
    for label in ("exchanges", "tracker"):
        for model in apps.get_app_config(label).get_models():
            if model._meta.model_name in ("auditentry", "accesslogentry", "idempotencykey", "apiclient"):
                continue
            rows.append(django_serializers.serialize("json", model.objects.order_by("pk")))
    return rows


def _own_role_body(w, principal):
    party = {"observer": "ICRC", "recorder": "RU", "bystander": "OUT"}.get(principal, "UA")
    roles = {"UA": "side", "RU": "side", "ICRC": "observer"}
    roles[party] = "mediator"
    return {"participants": [{"party": str(w[name].pk), "role": role} for name, role in roles.items()]}


@pytest.mark.parametrize("action, principal, expected", [
    pytest.param(action, principal, statuses[principal], id=f"{action} | {principal}")
    for action, statuses in TABLE for principal in PRINCIPALS
])  # fmt: skip
def test_the_permission_matrix(world, django_user_model, action, principal, expected):
    method, url, body = actions(world)[action]
    if body == "own role":
        body = _own_role_body(world, principal)
    api = acting_as(world, principal, django_user_model)
    before = record_snapshot()
    response = getattr(api, method)(url, body, format="json") if body is not None else getattr(api, method)(url)
    assert response.status_code == expected, (response.status_code, response.content[:300])
    if expected >= 400:
        assert record_snapshot() == before, "a refused request wrote something"
    if expected == 403:
        assert response.json()["detail"], "a 403 says why"


def test_the_table_covers_every_action_and_principal(world):
    assert [action for action, _ in TABLE] == list(actions(world))
    assert all(set(statuses) == set(PRINCIPALS) for _, statuses in TABLE)
