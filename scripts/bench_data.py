"""The benchmark's dataset (`scripts/bench.py`): `load` fills an empty, migrated database
by COPY with `size` negotiations and everything around them, deterministically per size."""
import contextlib
import random
import uuid
from datetime import datetime, timedelta, timezone

OPEN = ["proposed", "in_talks", "agreed_in_principle", "lists_exchanged", "agreed", "implementing", "suspended"]
PATH = ["in_talks", "agreed_in_principle", "lists_exchanged", "agreed", "implementing", "completed"]


def _status_months_fill():
    """The statement migration exchanges 0022 fills the chart's monthly deltas with."""
    import importlib
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return importlib.import_module("exchanges.migrations.0022_status_months").FILL


def load(url, size, now):
    """COPY parties, groups, negotiations with participants, covered groups, status history
    and events, and the agreements carried out: commitments, handovers and their transfers.

    One connection per table, all committed at the end: foreign keys (Django's, and the
    deferred participant keys of commitments and transfers) are checked at commit, and
    the stack commits last-entered first, so entering children first makes every parent
    (parties, groups, negotiations, participants, handovers) commit before its children.
    """
    import psycopg
    from psycopg.types.json import Jsonb

    rnd = random.Random(size)
    parties = [(uuid.UUID(int=rnd.getrandbits(128)), f"B{n}") for n in range(50)]
    group_count = max(100, size // 10) // 50 * 50
    groups = [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(group_count)]
    wounded = set(rnd.sample(range(group_count), group_count // 20))
    group_wounded = [0] * group_count  # seriously wounded held in each group
    tables = {
        "party": "exchanges_party (id, created_at, updated_at, name, short_name, kind, country, aliases)",
        "group": "exchanges_detaineegroup (id, created_at, updated_at, name, held_by_id, affiliated_with_id, category, detained_since, location, estimated_count, seriously_wounded_count, notes)",
        "negotiation": "exchanges_negotiation (id, created_at, updated_at, reference, title, summary, status, priority, visibility, opened_on, next_step, next_step_due, last_activity_at, stalled, stalled_since, created_by_party_id, party_ids, agreed_at, activity_count, usual_gap, handovers_recorded)",
        "participant": "exchanges_participant (negotiation_id, party_id, role)",
        "covered": "exchanges_coveredgroup (negotiation_id, group_id, proposed_count, released_count)",
        "change": "exchanges_statuschange (id, created_at, updated_at, negotiation_id, sequence, from_status, to_status, occurred_at, recorded_at, note, source)",
        "event": "exchanges_event (id, created_at, updated_at, negotiation_id, kind, occurred_at, summary, source)",
        "commitment": "exchanges_commitment (negotiation_id, party_id, count, seriously_wounded_count, notes)",
        "handover": "exchanges_handover (id, created_at, updated_at, negotiation_id, sequence, state, planned_on, occurred_on, location, verified_by_id, source, notes)",
        "transfer": "exchanges_transfer (handover_id, negotiation_id, from_party_id, to_party_id, planned_count, released_count, received_count, verified_count, seriously_wounded_count, civilians_count)",
    }
    with psycopg.connect(url, autocommit=True) as admin:
        # The chart's monthly deltas (migration exchanges 0022) are filled once after the
        # load, not by a trigger per row (a change's negotiation is not committed yet then).
        for table in ("exchanges_negotiation", "exchanges_statuschange"):
            admin.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    connections = {name: psycopg.connect(url) for name in tables}
    with contextlib.ExitStack() as stack:
        # Foreign keys are checked at commit, and the stack commits last-entered first:
        # entering children first makes parents (parties, groups, negotiations) commit first.
        for connection in reversed(list(connections.values())):
            stack.enter_context(connection)
        copies = {name: stack.enter_context(connections[name].cursor().copy(f"COPY {spec} FROM STDIN")) for name, spec in tables.items()}
        write = {name: copy.write_row for name, copy in copies.items()}
        total = 0
        for party, short in parties:
            write["party"]((party, now, now, f"Bench party {short}", short, "state", None, Jsonb([])))
        for n, group in enumerate(groups):
            estimate = rnd.randint(10, 2000)
            group_wounded[n] = rnd.randint(1, 9) if n in wounded else 0
            write["group"]((group, now - timedelta(days=1), now - timedelta(days=1), f"Bench group {n}", parties[n % 50][0], parties[(n + 1) % 50][0], "combatants", None, "", estimate, group_wounded[n], ""))
        kinds = ["meeting", "proposal", "statement", "counter_proposal", "verification"]
        for n in range(size):
            negotiation = uuid.UUID(int=rnd.getrandbits(128))
            age = rnd.randint(0, 1500)
            opened = (now - timedelta(days=age)).date()
            start = datetime(opened.year, opened.month, opened.day, tzinfo=timezone.utc)
            # Older negotiations have mostly ended; recent ones are mostly open.
            steps = rnd.randint(0, 6)
            if age > 180 and rnd.random() < 0.85:
                steps = 6
            times = sorted(start + timedelta(seconds=rnd.randint(0, max(1, age * 86400))) for _ in range(steps + rnd.randint(0, 6)))
            change_times, event_times = times[:steps], times[steps:]
            status, previous, agreed_at = "proposed", "proposed", None
            for sequence, when in enumerate(change_times, start=1):
                target = PATH[sequence - 1]
                if sequence == steps and steps < 6 and rnd.random() < 0.2:
                    target = rnd.choice(["suspended", "collapsed"]) if previous != "proposed" else "rejected"
                write["change"]((uuid.UUID(int=rnd.getrandbits(128)), when, when, negotiation, sequence, previous, target, when, when, "", ""))
                previous = status = target
                if target == "agreed":
                    agreed_at = when  # the latest change to `agreed` (there is one at most here)
                if target in ("suspended", "collapsed", "rejected"):
                    break
            for when in event_times:
                write["event"]((uuid.UUID(int=rnd.getrandbits(128)), when, when, negotiation, rnd.choice(kinds), when, "Bench event", ""))
            taking_part = rnd.sample(range(50), 3)
            sides = [(index, parties[index][0]) for index in taking_part if index % 3][:2]
            mediator = next((parties[index][0] for index in taking_part if not index % 3), None)
            # Covered groups: held by one of the two sides when there are two (what they
            # exchange); otherwise any group, as before.
            if len(sides) == 2:
                covered = {rnd.choice(sides)[0] + 50 * rnd.randrange(group_count // 50) for _ in range(rnd.randint(1, 2))}
            else:
                covered = set(rnd.sample(range(group_count), rnd.randint(1, 2)))
            proposed = {index: rnd.randint(1, 100) for index in sorted(covered)}
            handover_days, handovers = [], 0
            carried_out = rnd.random() < (0.5 if status == "completed" else 0.9)
            if agreed_at is not None and status in ("agreed", "implementing", "completed") and len(sides) == 2 and carried_out:
                handovers, handover_days, rows = agreement(rnd, negotiation, status, change_times, sides, mediator, proposed, group_wounded, write, now)
                total += rows
            moments = sorted([*times, *handover_days])
            gaps = sorted(later - earlier for earlier, later in zip(moments, moments[1:]))
            usual_gap = None if not gaps else (gaps[len(gaps) // 2] if len(gaps) % 2 else (gaps[len(gaps) // 2 - 1] + gaps[len(gaps) // 2]) / 2)
            last = max([start, *moments])
            created = start + timedelta(seconds=n % 86400)
            visibility = rnd.choices(["all_partners", "participants", "staff_only"], [60, 35, 5])[0]
            due = opened + timedelta(days=rnd.randint(5, 90)) if status in OPEN and rnd.random() < 0.5 else None
            party_ids = Jsonb(sorted(str(parties[index][0]) for index in taking_part))
            write["negotiation"]((negotiation, created, last, f"NEG-{opened.year}-{n + 1:07d}", f"Bench negotiation {n}", "", status, rnd.choice(["routine", "routine", "high", "urgent"]), visibility, opened, "", due, last, False, None, None, party_ids, agreed_at, len(moments), usual_gap, handovers))
            for party_index in taking_part:
                write["participant"]((negotiation, parties[party_index][0], "side" if party_index % 3 else "mediator"))
            for group_index, count in proposed.items():
                write["covered"]((negotiation, groups[group_index], count, None))
            total += 1 + 3 + len(proposed) + len(times)
    with psycopg.connect(url, autocommit=True) as admin:
        for table in ("exchanges_negotiation", "exchanges_statuschange"):
            admin.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        admin.execute(_status_months_fill())
    return total


def agreement(rnd, negotiation, status, change_times, sides, mediator, proposed, group_wounded, write, now):
    """An agreement carried out: each side's commitment (the groups it holds here and some
    others; one in ten open-ended), then 1-4 handovers, each side releasing to the other.

    Agreed: all still planned (one in ten postponed). Implementing: the first done and each
    later one four times in five, else planned, the done ones between the start of the
    implementation and now. Completed: all done, between the start of the implementation
    and the completion. A done transfer's counts disagree one time in ten (disputed). The
    seriously wounded a side holds here go first, in its first done handovers; one side in
    ten releases only half of them (wounded still waiting), and a side whose handovers so
    far are too small for them has some waiting too.
    Returns (handovers, the start of each done handover's day, rows written)."""
    begun = change_times[4] if status != "agreed" else None
    end = change_times[5] if status == "completed" else now
    count = rnd.randint(1, 4)
    if status == "agreed":
        states = ["postponed" if rnd.random() < 0.1 else "planned" for _ in range(count)]
    elif status == "implementing":
        states = ["done" if index == 0 or rnd.random() < 0.8 else "planned" for index in range(count)]
        states.sort(key=lambda state: state != "done")  # the done ones first
    else:
        states = ["done"] * count
    days = sorted((begun + (end - begun) * rnd.random()).date() for state in states if state == "done")
    rows, plan = 0, {}
    for side, party in sides:
        held = [index for index in proposed if index % 50 == side]
        holds_wounded = sum(group_wounded[index] for index in held)
        committed = max(sum(proposed[index] for index in held) + rnd.randint(0, 200), holds_wounded, 1)
        open_ended = rnd.random() < 0.1
        write["commitment"]((negotiation, party, None if open_ended else committed, None if open_ended else holds_wounded, ""))
        rows += 1
        # [per handover planned, wounded still to release]
        plan[side] = [max(1, committed // count), holds_wounded if rnd.random() < 0.9 else holds_wounded // 2]
    done_days = []
    for sequence, state in enumerate(states, start=1):
        handover = uuid.UUID(int=rnd.getrandbits(128))
        if state == "done":
            day = days[len(done_days)]
            occurred, planned_on = day, day - timedelta(days=rnd.randint(0, 7))
            done_days.append(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
            stamp = max(done_days[-1], begun)
        else:
            occurred, planned_on, stamp = None, now.date() + timedelta(days=rnd.randint(1, 60)), change_times[3]
        write["handover"]((handover, stamp, stamp, negotiation, sequence, state, planned_on, occurred, "Bench crossing", mediator if state == "done" else None, "", ""))
        rows += 1
        for (source, source_party), (_target, target_party) in (sides, sides[::-1]):
            planned, waiting = plan[source]
            if state == "done":
                released = planned if rnd.random() < 0.9 else planned - rnd.randint(0, planned // 5)
                wounded = min(waiting, released)
                plan[source][1] -= wounded
                received = released if rnd.random() < 0.9 else max(0, released - rnd.randint(1, 5))  # disputed
                verified = received if mediator else None
                counts = (planned, released, received, verified, wounded, rnd.randint(0, released // 10))
            else:
                counts = (planned, None, None, None, None, None)
            write["transfer"]((handover, negotiation, source_party, target_party, *counts))
            rows += 1
    return len(states), done_days, rows
