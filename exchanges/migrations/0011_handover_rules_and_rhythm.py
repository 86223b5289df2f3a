"""What the database enforces beyond Django's constraints on PostgreSQL, and the rhythm
and agreement times of the negotiations recorded before handovers existed.

- A commitment's party and a transfer's parties take part in the negotiation: foreign
  keys to the participants' (negotiation, party), deferred to commit, so replacing the
  participants within one transaction passes, and removing a party with commitments or
  transfers does not (the services refuse it first with a 400).
- A transfer's negotiation is its handover's.
- `agreed_at`, `activity_count` and `usual_gap` (the median gap between activities),
  computed from the status history and the timeline.
"""
import statistics

from django.db import migrations

FOREIGN_KEYS = [
    ("exchanges_commitment", "commitment_party_takes_part", "(negotiation_id, party_id)",
     "exchanges_participant (negotiation_id, party_id)"),
    ("exchanges_transfer", "transfer_from_party_takes_part", "(negotiation_id, from_party_id)",
     "exchanges_participant (negotiation_id, party_id)"),
    ("exchanges_transfer", "transfer_to_party_takes_part", "(negotiation_id, to_party_id)",
     "exchanges_participant (negotiation_id, party_id)"),
    ("exchanges_transfer", "transfer_same_negotiation_as_handover", "(handover_id, negotiation_id)",
     "exchanges_handover (id, negotiation_id)"),
]  # fmt: skip

RHYTHM_SQL = """
WITH acts AS (
    SELECT negotiation_id, occurred_at AS t FROM exchanges_statuschange
    UNION ALL SELECT negotiation_id, occurred_at FROM exchanges_event
), gaps AS (
    SELECT negotiation_id, t - lag(t) OVER (PARTITION BY negotiation_id ORDER BY t) AS gap FROM acts
), stats AS (
    SELECT negotiation_id, count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM gap)) FILTER (WHERE gap IS NOT NULL) AS median
    FROM gaps GROUP BY negotiation_id
)
UPDATE exchanges_negotiation n SET activity_count = s.n, usual_gap = make_interval(secs => s.median)
FROM stats s WHERE s.negotiation_id = n.id
"""
AGREED_SQL = """
UPDATE exchanges_negotiation n SET agreed_at = a.at
FROM (SELECT negotiation_id, max(occurred_at) AS at FROM exchanges_statuschange WHERE to_status = 'agreed'
      GROUP BY negotiation_id) a
WHERE a.negotiation_id = n.id
"""


def add_foreign_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE exchanges_handover ADD CONSTRAINT handover_id_negotiation UNIQUE (id, negotiation_id)")
    for table, name, columns, target in FOREIGN_KEYS:
        schema_editor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY {columns} REFERENCES {target} "
            "DEFERRABLE INITIALLY DEFERRED"
        )


def drop_foreign_keys(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name, _columns, _target in FOREIGN_KEYS:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
    schema_editor.execute("ALTER TABLE exchanges_handover DROP CONSTRAINT IF EXISTS handover_id_negotiation")


def backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RHYTHM_SQL)
        schema_editor.execute(AGREED_SQL)
        return
    Negotiation = apps.get_model("exchanges", "Negotiation")
    StatusChange = apps.get_model("exchanges", "StatusChange")
    Event = apps.get_model("exchanges", "Event")
    for negotiation in Negotiation.objects.all().iterator():
        times = sorted(
            [*StatusChange.objects.filter(negotiation=negotiation).values_list("occurred_at", flat=True),
             *Event.objects.filter(negotiation=negotiation).values_list("occurred_at", flat=True)]
        )  # fmt: skip
        gaps = [later - earlier for earlier, later in zip(times, times[1:])]
        agreed = StatusChange.objects.filter(negotiation=negotiation, to_status="agreed").order_by("-occurred_at").first()
        Negotiation.objects.filter(pk=negotiation.pk).update(
            activity_count=len(times),
            usual_gap=statistics.median(gaps) if gaps else None,
            agreed_at=agreed.occurred_at if agreed else None,
        )


class Migration(migrations.Migration):
    dependencies = [("exchanges", "0010_handovers")]
    operations = [
        migrations.RunPython(add_foreign_keys, drop_foreign_keys),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
