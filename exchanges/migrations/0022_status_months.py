"""The dashboard chart's monthly status deltas (`StatusMonth`), kept by triggers.

PostgreSQL only (elsewhere the table stays empty and the chart reads the status changes).
Each trigger adds its rows in one INSERT ... ON CONFLICT, ordered by (month, status,
staff_only), so two writes lock the rows they share in the same order. A negotiation's
update fires only when its opening date or visibility changed (a save writes every
column). The table is filled from the record as it stands, in one statement.
"""
from django.db import migrations, models

MONTH = "date_trunc('month', {} AT TIME ZONE 'UTC')::date"

FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION exchanges_status_month_add(rows jsonb) RETURNS void LANGUAGE sql AS $$
  INSERT INTO exchanges_statusmonth (month, status, staff_only, delta)
  SELECT (r->>0)::date, r->>1, (r->>2)::boolean, sum((r->>3)::bigint)
  FROM jsonb_array_elements(rows) r
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (month, status, staff_only) DO UPDATE SET delta = exchanges_statusmonth.delta + EXCLUDED.delta
$$;

CREATE OR REPLACE FUNCTION exchanges_status_month_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE staff_only boolean;
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    SELECT n.visibility = 'staff_only' INTO staff_only FROM exchanges_negotiation n WHERE n.id = OLD.negotiation_id;
    IF staff_only IS NOT NULL THEN
      PERFORM exchanges_status_month_add(jsonb_build_array(
        jsonb_build_array({MONTH.format('OLD.occurred_at')}, OLD.from_status, staff_only, 1),
        jsonb_build_array({MONTH.format('OLD.occurred_at')}, OLD.to_status, staff_only, -1)));
    END IF;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT n.visibility = 'staff_only' INTO staff_only FROM exchanges_negotiation n WHERE n.id = NEW.negotiation_id;
    PERFORM exchanges_status_month_add(jsonb_build_array(
      jsonb_build_array({MONTH.format('NEW.occurred_at')}, NEW.from_status, coalesce(staff_only, false), -1),
      jsonb_build_array({MONTH.format('NEW.occurred_at')}, NEW.to_status, coalesce(staff_only, false), 1)));
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION exchanges_status_month_negotiation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    PERFORM exchanges_status_month_add(jsonb_build_array(
      jsonb_build_array(date_trunc('month', OLD.opened_on)::date, 'proposed', OLD.visibility = 'staff_only', -1)));
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM exchanges_status_month_add(jsonb_build_array(
      jsonb_build_array(date_trunc('month', NEW.opened_on)::date, 'proposed', NEW.visibility = 'staff_only', 1)));
  END IF;
  IF TG_OP = 'UPDATE' AND (OLD.visibility = 'staff_only') <> (NEW.visibility = 'staff_only') THEN
    -- Its status changes move from one side of the table to the other.
    PERFORM exchanges_status_month_add(coalesce((
      SELECT jsonb_agg(jsonb_build_array(month, status, side, delta)) FROM (
        SELECT {MONTH.format('c.occurred_at')} AS month, m.status, m.side, m.delta
        FROM exchanges_statuschange c CROSS JOIN LATERAL (VALUES
          (c.from_status, OLD.visibility = 'staff_only', 1), (c.to_status, OLD.visibility = 'staff_only', -1),
          (c.from_status, NEW.visibility = 'staff_only', -1), (c.to_status, NEW.visibility = 'staff_only', 1)
        ) AS m (status, side, delta)
        WHERE c.negotiation_id = NEW.id) moved), '[]'::jsonb));
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS status_month_change ON exchanges_statuschange;
CREATE TRIGGER status_month_change AFTER INSERT OR UPDATE OR DELETE ON exchanges_statuschange
  FOR EACH ROW EXECUTE FUNCTION exchanges_status_month_change();
DROP TRIGGER IF EXISTS status_month_negotiation ON exchanges_negotiation;
CREATE TRIGGER status_month_negotiation AFTER INSERT OR DELETE ON exchanges_negotiation
  FOR EACH ROW EXECUTE FUNCTION exchanges_status_month_negotiation();
DROP TRIGGER IF EXISTS status_month_negotiation_moved ON exchanges_negotiation;
CREATE TRIGGER status_month_negotiation_moved AFTER UPDATE OF opened_on, visibility ON exchanges_negotiation
  FOR EACH ROW WHEN (OLD.opened_on IS DISTINCT FROM NEW.opened_on OR OLD.visibility IS DISTINCT FROM NEW.visibility)
  EXECUTE FUNCTION exchanges_status_month_negotiation();
"""

#: The table from the record as it stands (run by the migration, and by the benchmark's
#: loader after a bulk load with the triggers off).
FILL = f"""
DELETE FROM exchanges_statusmonth;  -- not TRUNCATE: the application role may not
INSERT INTO exchanges_statusmonth (month, status, staff_only, delta)
SELECT month, status, staff_only, sum(delta) FROM (
  SELECT date_trunc('month', n.opened_on)::date AS month, 'proposed' AS status, n.visibility = 'staff_only' AS staff_only, count(*) AS delta
  FROM exchanges_negotiation n GROUP BY 1, 3
  UNION ALL
  SELECT month, m.status, staff_only, sum(m.delta) FROM (
    SELECT {MONTH.format('c.occurred_at')} AS month, c.from_status, c.to_status, n.visibility = 'staff_only' AS staff_only, count(*) AS moved
    FROM exchanges_statuschange c JOIN exchanges_negotiation n ON n.id = c.negotiation_id
    GROUP BY 1, 2, 3, 4) grouped
  CROSS JOIN LATERAL (VALUES (grouped.from_status, -grouped.moved), (grouped.to_status, grouped.moved)) AS m (status, delta)
  GROUP BY 1, 2, 3
) deltas GROUP BY 1, 2, 3;
"""

DROP = """
DROP TRIGGER IF EXISTS status_month_change ON exchanges_statuschange;
DROP TRIGGER IF EXISTS status_month_negotiation ON exchanges_negotiation;
DROP TRIGGER IF EXISTS status_month_negotiation_moved ON exchanges_negotiation;
DROP FUNCTION IF EXISTS exchanges_status_month_change();
DROP FUNCTION IF EXISTS exchanges_status_month_negotiation();
DROP FUNCTION IF EXISTS exchanges_status_month_add(jsonb);
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS, params=None)  # several statements: no parameters
        schema_editor.execute(FILL, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("exchanges", "0021_trailhead_labels"),
    ]

    operations = [
        migrations.CreateModel(
            name="StatusMonth",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("month", models.DateField()),
                ("status", models.CharField(max_length=32)),
                ("staff_only", models.BooleanField()),
                ("delta", models.BigIntegerField(default=0)),
            ],
            options={
                "default_permissions": (),
                "constraints": [models.UniqueConstraint(fields=("month", "status", "staff_only"), name="status_month_unique")],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
