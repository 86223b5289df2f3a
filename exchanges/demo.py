"""Demo data: the Azovstal story and a few more negotiations, written through the services.

The Azovstal negotiation is reconstructed from public reporting of May-June 2022 for
demonstration; wording and some dates are simplified. The other negotiations are
illustrative, dated relative to today so that one of them is always silent for over a
month. Loading twice changes nothing: what exists (by name or title) is left alone.

Staff work in teams ("desks"). The demo login (`ensure_staff_login`, printed by `make
run`) is a Coordinator in DEMO_LOGIN_TEAMS only; one staff-only negotiation belongs to
the Protection unit alone, so that login does not see it: need-to-know at work.
"""
from datetime import date, datetime, timedelta, timezone as dt_timezone

from django.db import transaction
from django.utils import timezone

from . import services
from .models import DetaineeGroup, Negotiation, Party, Team

EASTERN_EUROPE = "Eastern Europe desk"
MIDDLE_EAST = "Middle East desk"
PROTECTION = "Protection unit"

TEAMS = [
    {"name": EASTERN_EUROPE, "description": "Negotiations between Ukraine, Russia and the authorities they back."},
    {"name": MIDDLE_EAST, "description": "Mediation through T\u00fcrkiye and the Gulf states."},
    {
        "name": PROTECTION,
        "description": "The seriously wounded, medical personnel and civilians: their protection under the Geneva Conventions.",
    },
]

#: The demo staff login (`ensure_staff_login`): a Coordinator in these teams, not in the
#: Protection unit, so the Protection unit's staff-only negotiation stays hidden from it.
DEMO_LOGIN_ROLE = "coordinator"
DEMO_LOGIN_TEAMS = (EASTERN_EUROPE, MIDDLE_EAST)

PARTIES = [
    {"name": "Government of Ukraine", "short_name": "UA", "kind": "state", "country": "UA", "aliases": ["Ukraine", "Україна"]},
    {"name": "Russian Federation", "short_name": "RU", "kind": "state", "country": "RU", "aliases": ["Russia", "Росія", "Russie"]},
    {
        "name": "Donetsk \u201cPeople's Republic\u201d authorities",
        "short_name": "DPR",
        "kind": "de_facto_authority",
        "country": None,
    },
    {"name": "United Nations", "short_name": "UN", "kind": "intergovernmental", "country": None},
    {"name": "International Committee of the Red Cross", "short_name": "ICRC", "kind": "humanitarian", "country": None, "aliases": ["Red Cross", "CICR", "МКЧХ"]},
    {"name": "Republic of T\u00fcrkiye", "short_name": "TR", "kind": "state", "country": "TR", "aliases": ["Turkey", "T\u00fcrkiye", "Туреччина", "Turquie"]},
    {"name": "United Arab Emirates", "short_name": "AE", "kind": "state", "country": "AE", "aliases": ["UAE", "Emirates", "ОАЕ", "EAU"]},
]


def at(day, hour=12):
    return datetime(day.year, day.month, day.day, hour, tzinfo=dt_timezone.utc)


def _party(short_name):
    return Party.objects.get(short_name=short_name)


def _ensure_parties():
    for spec in PARTIES:
        if not Party.objects.filter(name=spec["name"]).exists():
            services.party_create(actor=None, **spec)


def _ensure_group(spec, figures):
    group = DetaineeGroup.objects.filter(name=spec["name"]).first()
    if group:
        return group
    group = services.detainee_group_create(actor=None, **spec)
    for figure in figures:
        services.figure_create(group=group, actor=None, **figure)
    return group


def _ensure_teams():
    for spec in TEAMS:
        if not Team.objects.filter(name=spec["name"]).exists():
            services.create_record(Team(), actor=None, fields=spec, allowed=("name", "description"))


def _teams(names):
    return list(Team.objects.filter(name__in=names).order_by("name"))


def _ensure_negotiation(spec, *, teams, participants, groups, history):
    """Create it once in its teams, then play its history (status changes and events) in
    time order. One loaded before the demo had teams gets its teams, once."""
    existing = Negotiation.objects.filter(title=spec["title"]).first()
    if existing is not None:
        if not existing.teams.exists():
            services.negotiation_update(negotiation=existing, actor=None, teams=_teams(teams))
        return None
    negotiation = services.negotiation_create(
        actor=None, participants=participants, groups=groups, teams=_teams(teams), **spec
    )
    for when, entry in sorted(history, key=lambda item: item[0]):
        if "to_status" in entry:
            services.negotiation_change_status(negotiation=negotiation, actor=None, occurred_at=when, **entry)
        else:
            services.event_create(negotiation=negotiation, actor=None, occurred_at=when, **entry)
    return negotiation


def azovstal():
    ua, ru, un, icrc, tr = (_party(code) for code in ("UA", "RU", "UN", "ICRC", "TR"))
    garrison = _ensure_group(
        {
            "name": "Azovstal garrison (Mariupol)",
            "held_by": ru,
            "affiliated_with": ua,
            "category": "combatants",
            "detained_since": date(2022, 5, 16),
            "location": "Olenivka (Donetsk region); the seriously wounded in hospital in Novoazovsk",
            "estimated_count": 265,
            "seriously_wounded_count": 52,
            "notes": (
                "The two sides' counts of those who left the plant differ by a factor of six; "
                "the working figures follow the Ukrainian report until the ICRC registration is shared."
            ),
        },
        [
            {
                "metric": "total",
                "value": 1730,
                "source_party": ru,
                "source": "Russian Ministry of Defence briefing",
                "reported_on": date(2022, 5, 19),
                "reliability": "disputed",
            },
            {
                "metric": "total",
                "value": 265,
                "source_party": ua,
                "source": "General Staff of the Armed Forces of Ukraine, statement",
                "reported_on": date(2022, 5, 17),
                "reliability": "unverified",
            },
            {
                "metric": "seriously_wounded",
                "value": 52,
                "source_party": ua,
                "source": "General Staff of the Armed Forces of Ukraine, statement",
                "reported_on": date(2022, 5, 17),
                "reliability": "unverified",
            },
        ],
    )
    return _ensure_negotiation(
        {
            "title": "Evacuation and exchange of the seriously wounded Azovstal defenders",
            "summary": (
                "Ukraine sought the evacuation of about fifty seriously wounded defenders of the "
                "Azovstal plant, to be exchanged for Russian prisoners; the UN and the ICRC "
                "facilitated. Reconstructed from public reporting for demonstration."
            ),
            "priority": "urgent",
            "visibility": "all_partners",
            "opened_on": date(2022, 5, 6),
            "next_step": "",
        },
        teams=[EASTERN_EUROPE, PROTECTION],
        participants=[
            {"party": ua, "role": "side"},
            {"party": ru, "role": "side"},
            {"party": un, "role": "facilitator"},
            {"party": icrc, "role": "facilitator"},
            {"party": tr, "role": "mediator"},
        ],
        groups=[{"group": garrison, "proposed_count": 52, "released_count": None}],
        history=[
            (at(date(2022, 5, 6), 10), {"kind": "proposal", "summary": "Ukraine proposes evacuating the seriously wounded defenders in exchange for Russian prisoners of war.", "parties": [ua], "source": "Deputy Prime Minister of Ukraine, public statement"}),
            (at(date(2022, 5, 9), 12), {"to_status": "in_talks", "note": "Talks through the UN and the ICRC on the wounded.", "source": "Public reporting"}),
            (at(date(2022, 5, 11), 15), {"kind": "proposal", "summary": "T\u00fcrkiye offers to evacuate the wounded by sea.", "parties": [tr], "source": "Turkish presidency, public statement"}),
            (at(date(2022, 5, 12), 9), {"kind": "rejection", "summary": "The Russian side does not accept an evacuation outside surrender; the sea route is not agreed.", "parties": [ru], "source": "Public reporting"}),
            (at(date(2022, 5, 16), 21), {"to_status": "agreed_in_principle", "note": "Seriously wounded to be taken to Novoazovsk, to be exchanged later.", "source": "General Staff of the Armed Forces of Ukraine"}),
            (at(date(2022, 5, 17), 8), {"kind": "statement", "summary": "Ukraine reports 265 defenders left the plant, 52 of them seriously wounded.", "parties": [ua], "source": "General Staff of the Armed Forces of Ukraine"}),
            (at(date(2022, 5, 18), 10), {"kind": "verification", "summary": "The ICRC registers prisoners of war leaving the plant, at the parties' request.", "parties": [icrc], "source": "ICRC statement"}),
            (at(date(2022, 5, 19), 11), {"kind": "statement", "summary": "The Russian side claims 1,730 fighters have surrendered.", "parties": [ru], "source": "Russian Ministry of Defence briefing"}),
            (at(date(2022, 6, 20), 12), {"to_status": "lists_exchanged", "note": "Lists of the wounded to be exchanged passed through the facilitators.", "source": "Illustrative"}),
            (at(date(2022, 6, 27), 12), {"to_status": "agreed", "source": "Illustrative"}),
            (at(date(2022, 6, 29), 8), {"to_status": "implementing", "source": "Illustrative"}),
            (at(date(2022, 6, 29), 18), {"kind": "release", "summary": "Exchange: 144 Ukrainian defenders return, 95 of them from Azovstal, most seriously wounded.", "parties": [ua, ru], "source": "Coordination Headquarters for the Treatment of Prisoners of War, Ukraine"}),
            (at(date(2022, 6, 29), 19), {"to_status": "completed", "source": "Public reporting"}),
        ],
    )


ISTANBUL_STAGES = [
    (date(2025, 5, 23), 390, 120, "First stage: 390 for 390, 270 servicemen and 120 civilians on each side. "
     "President of Ukraine and Russian Ministry of Defence, statements of 23 May 2025."),
    (date(2025, 5, 24), 307, 0, "Second stage: 307 for 307. President of Ukraine and Russian Ministry of Defence, "
     "statements of 24 May 2025."),
    (date(2025, 5, 25), 303, 0, "Third stage: 303 for 303, the 1,000 for 1,000 completed. President of Ukraine and "
     "Russian Ministry of Defence, statements of 25 May 2025."),
]  # fmt: skip


def istanbul_2025():
    """A real agreement carried out in handovers: 1,000 for 1,000 agreed at the Istanbul
    talks of 16 May 2025, released in three stages on 23-25 May 2025 (public statements
    of both sides; the dates of the intermediate steps are simplified)."""
    ua, ru, tr = (_party(code) for code in ("UA", "RU", "TR"))
    source = "Heads of the Ukrainian and Russian delegations, statements after the Istanbul talks, 16 May 2025"
    negotiation = _ensure_negotiation(
        {
            "title": "1,000 for 1,000: the exchange agreed at the Istanbul talks",
            "summary": (
                "At their first direct talks since 2022, hosted by T\u00fcrkiye in Istanbul on 16 May 2025, "
                "the Ukrainian and Russian delegations agreed to exchange 1,000 prisoners for 1,000. "
                "It was carried out in three stages on 23, 24 and 25 May 2025."
            ),
            "priority": "high",
            "visibility": "all_partners",
            "opened_on": date(2025, 5, 16),
        },
        teams=[EASTERN_EUROPE, MIDDLE_EAST],
        participants=[{"party": ua, "role": "side"}, {"party": ru, "role": "side"}, {"party": tr, "role": "mediator"}],
        groups=[],
        history=[
            (at(date(2025, 5, 16), 10), {"to_status": "in_talks", "note": "Talks open in Istanbul, hosted by T\u00fcrkiye.", "source": source}),
            (at(date(2025, 5, 16), 15), {"kind": "meeting", "summary": "The delegations meet for about two hours in Istanbul.", "parties": [ua, ru, tr], "source": source}),
            (at(date(2025, 5, 16), 16), {"to_status": "agreed_in_principle", "note": "1,000 prisoners for 1,000.", "source": source}),
            (at(date(2025, 5, 20), 12), {"to_status": "lists_exchanged", "note": "Lists prepared and exchanged (date simplified).", "source": "Public reporting"}),
            (at(date(2025, 5, 22), 12), {"to_status": "agreed", "note": "Stages and route agreed (date simplified).", "source": "Public reporting"}),
            (at(date(2025, 5, 23), 8), {"to_status": "implementing", "source": "Public reporting"}),
        ],
    )
    if negotiation is None:
        return None
    services.negotiation_update(
        negotiation=negotiation,
        actor=None,
        commitments=[
            {"party": ua, "count": 1000, "notes": source},
            {"party": ru, "count": 1000, "notes": source},
        ],
    )
    for day, count, civilians, stage_source in ISTANBUL_STAGES:
        services.handover_create(
            negotiation=negotiation,
            actor=None,
            state="done",
            planned_on=day,
            occurred_on=day,
            location="Belarus\u2013Ukraine border",
            source=stage_source,
            transfers=[
                {"from_party": ru, "to_party": ua, "released_count": count, "received_count": count, "civilians_count": civilians},
                {"from_party": ua, "to_party": ru, "released_count": count, "received_count": count, "civilians_count": civilians},
            ],
        )
    services.negotiation_change_status(
        negotiation=negotiation, actor=None, to_status="completed", occurred_at=at(date(2025, 5, 25), 20), source=ISTANBUL_STAGES[-1][3]
    )
    return negotiation


def illustrative():
    """Four more negotiations, dated relative to today; two of them staff-only."""
    ua, ru, dpr, un, icrc, ae = (_party(code) for code in ("UA", "RU", "DPR", "UN", "ICRC", "AE"))
    today = timezone.localdate()
    civilians = _ensure_group(
        {
            "name": "Civilians detained in the occupied south",
            "held_by": ru,
            "affiliated_with": ua,
            "category": "civilians",
            "location": "Various facilities, unconfirmed",
            "estimated_count": 400,
            "seriously_wounded_count": 0,
        },
        [
            {"metric": "total", "value": 400, "source_party": ua, "source": "Ombudsman's office", "reported_on": today - timedelta(days=70)},
            {"metric": "total", "value": 120, "source_party": ru, "source": "Statement to the press", "reported_on": today - timedelta(days=60)},
        ],
    )
    medics = _ensure_group(
        {
            "name": "Captured medical personnel",
            "held_by": dpr,
            "affiliated_with": ua,
            "category": "medical_personnel",
            "estimated_count": 31,
            "seriously_wounded_count": 3,
        },
        [{"metric": "total", "value": 31, "source_party": icrc, "source": "ICRC visits", "reported_on": today - timedelta(days=20), "reliability": "corroborated"}],
    )
    soldiers = _ensure_group(
        {
            "name": "Russian servicemen held by Ukraine",
            "held_by": ua,
            "affiliated_with": ru,
            "category": "combatants",
            "estimated_count": 150,
        },
        [],
    )
    _ensure_negotiation(
        {
            "title": "Release of civilians detained in the occupied south",
            "summary": "Illustrative: talks mediated by the United Arab Emirates that went quiet after a counter-proposal.",
            "priority": "high",
            "visibility": "all_partners",
            "opened_on": today - timedelta(days=110),
            "next_step": "Mediator to circulate a revised list.",
        },
        teams=[EASTERN_EUROPE, MIDDLE_EAST],
        participants=[
            {"party": ua, "role": "side"},
            {"party": ru, "role": "side"},
            {"party": ae, "role": "mediator"},
            {"party": icrc, "role": "observer"},
        ],
        groups=[{"group": civilians, "proposed_count": 120}],
        history=[
            (at(today - timedelta(days=100)), {"kind": "proposal", "summary": "Ukraine proposes the release of all detained civilians.", "parties": [ua]}),
            (at(today - timedelta(days=90)), {"to_status": "in_talks"}),
            (at(today - timedelta(days=60)), {"kind": "meeting", "summary": "Meeting in Abu Dhabi.", "parties": [ua, ru, ae]}),
            (at(today - timedelta(days=45)), {"kind": "counter_proposal", "summary": "Counter-proposal: 120 civilians in a first stage.", "parties": [ru]}),
        ],
    )
    _ensure_negotiation(
        {
            "title": "Return of captured medical personnel",
            "summary": "Illustrative: Geneva Convention I protects medical personnel; lists agreed, verification pending.",
            "priority": "urgent",
            "visibility": "participants",
            "opened_on": today - timedelta(days=40),
            "next_step": "ICRC to confirm the identities on the exchanged lists.",
            "next_step_due": today - timedelta(days=3),
        },
        teams=[EASTERN_EUROPE, PROTECTION],
        participants=[{"party": ua, "role": "side"}, {"party": dpr, "role": "side"}, {"party": icrc, "role": "facilitator"}],
        groups=[{"group": medics, "proposed_count": 31}],
        history=[
            (at(today - timedelta(days=35)), {"to_status": "in_talks"}),
            (at(today - timedelta(days=20)), {"to_status": "agreed_in_principle"}),
            (at(today - timedelta(days=5)), {"to_status": "lists_exchanged", "note": "Lists handed over through the ICRC."}),
            (at(today - timedelta(days=2)), {"kind": "statement", "summary": "The ICRC says verification visits are being arranged.", "parties": [icrc]}),
        ],
    )
    _ensure_negotiation(
        {
            "title": "Proposed exchange of servicemen, staff assessment",
            "summary": "Illustrative: an internal assessment of an early proposal, not shared with partners.",
            "priority": "routine",
            "visibility": "staff_only",
            "opened_on": today - timedelta(days=10),
            "next_step": "Decide whether to raise it with the UN.",
            "next_step_due": today + timedelta(days=7),
        },
        teams=[EASTERN_EUROPE],
        participants=[{"party": ua, "role": "side"}, {"party": ru, "role": "side"}, {"party": un, "role": "observer"}],
        groups=[{"group": soldiers, "proposed_count": 50}],
        history=[(at(today - timedelta(days=8)), {"kind": "proposal", "summary": "Informal proposal of a 50-for-50 exchange.", "parties": [ua]})],
    )
    _ensure_negotiation(
        {
            "title": "Medical evacuation of seriously wounded detainees, confidential channel",
            "summary": (
                "Illustrative: a confidential channel for evacuating seriously wounded detainees "
                "before any exchange is agreed. Staff-only and for the Protection unit alone: the "
                "demo login, in the other desks, does not see it."
            ),
            "priority": "high",
            "visibility": "staff_only",
            "opened_on": today - timedelta(days=15),
            "next_step": "ICRC to confirm which hospitals can receive the wounded.",
            "next_step_due": today + timedelta(days=5),
        },
        teams=[PROTECTION],
        participants=[{"party": ua, "role": "side"}, {"party": ru, "role": "side"}, {"party": icrc, "role": "facilitator"}],
        groups=[],
        history=[
            (at(today - timedelta(days=14)), {"kind": "proposal", "summary": "The ICRC proposes evacuating the seriously wounded on both sides, outside any exchange.", "parties": [icrc]}),
            (at(today - timedelta(days=12)), {"to_status": "in_talks", "note": "Both sides agree to talk through the ICRC."}),
        ],
    )


@transaction.atomic
def load_demo():
    """Load every demo object that is not there yet."""
    _ensure_parties()
    _ensure_teams()
    azovstal()
    istanbul_2025()
    illustrative()
