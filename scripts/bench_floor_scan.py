"""The floor for the stall scan benchmark (`scripts/bench.py`): bare SQL that raises the
same flags as `tracker.services.scan_stalls` from a clean slate, marks the negotiations
stalled, and writes the change rows a partner's feed needs of it."""

FLOOR_SCAN = """
WITH rules AS (SELECT
    max(overdue_days) FILTER (WHERE key = 'urgent') AS u1, max(very_overdue_days) FILTER (WHERE key = 'urgent') AS u2,
    max(overdue_days) FILTER (WHERE key = 'high') AS h1, max(very_overdue_days) FILTER (WHERE key = 'high') AS h2,
    max(overdue_days) FILTER (WHERE key = 'routine') AS r1, max(very_overdue_days) FILTER (WHERE key = 'routine') AS r2,
    max(overdue_days) FILTER (WHERE key = 'deadline') AS d1, max(very_overdue_days) FILTER (WHERE key = 'deadline') AS d2
  FROM tracker_stallrule),
candidates AS (
  SELECT n.id, n.last_activity_at, n.next_step_due, n.activity_count, n.usual_gap, n.status, n.agreed_at,
         CASE WHEN n.priority = 'urgent' OR EXISTS (SELECT 1 FROM exchanges_coveredgroup c JOIN exchanges_detaineegroup g ON g.id = c.group_id
                                                    WHERE c.negotiation_id = n.id AND g.seriously_wounded_count > 0) THEN 'urgent'
              ELSE n.priority END AS effective
  FROM exchanges_negotiation n WHERE n.status NOT IN ('completed', 'rejected', 'collapsed')),
silence AS (
  SELECT c.id, c.last_activity_at, c.next_step_due, now() - c.last_activity_at AS silent, c.activity_count, c.usual_gap,
         CASE c.effective WHEN 'urgent' THEN r.u1 WHEN 'high' THEN r.h1 ELSE r.r1 END AS o,
         CASE c.effective WHEN 'urgent' THEN r.u2 WHEN 'high' THEN r.h2 ELSE r.r2 END AS v, r.d1, r.d2
  FROM candidates c, rules r),
inserted AS (
  INSERT INTO tracker_flag (id, created_at, updated_at, negotiation_id, kind, level, raised_at, silent_since, due_on, resolution)
  SELECT gen_random_uuid(), now(), now(), id, 'no_activity', CASE WHEN silent >= make_interval(days => v) THEN 'very_overdue' ELSE 'overdue' END,
         now(), last_activity_at, NULL, ''
  FROM silence WHERE silent >= make_interval(days => o)
  UNION ALL
  SELECT gen_random_uuid(), now(), now(), id, 'deadline_missed', CASE WHEN current_date - next_step_due >= d2 THEN 'very_overdue' ELSE 'overdue' END,
         now(), last_activity_at, next_step_due, ''
  FROM silence WHERE next_step_due IS NOT NULL AND current_date - next_step_due >= d1
  UNION ALL
  SELECT gen_random_uuid(), now(), now(), id, 'off_rhythm',
         CASE WHEN silent > usual_gap * 6 AND silent >= interval '14 days' THEN 'very_overdue' ELSE 'overdue' END,
         now(), last_activity_at, NULL, ''
  FROM silence WHERE activity_count >= 5 AND usual_gap IS NOT NULL AND silent > usual_gap * 3 AND silent >= interval '7 days'
  UNION ALL
  SELECT gen_random_uuid(), now(), now(), c.id, 'wounded_waiting',
         CASE WHEN c.agreed_at <= now() - interval '7 days' THEN 'very_overdue' ELSE 'overdue' END, now(), c.last_activity_at, NULL, ''
  FROM candidates c WHERE c.status IN ('agreed', 'implementing') AND c.agreed_at <= now() - interval '3 days'
    AND c.id IN (SELECT cg.negotiation_id FROM exchanges_coveredgroup cg JOIN exchanges_detaineegroup g ON g.id = cg.group_id
                 JOIN exchanges_negotiation n2 ON n2.id = cg.negotiation_id
                 WHERE n2.status IN ('agreed', 'implementing') AND g.seriously_wounded_count > 0
                 GROUP BY cg.negotiation_id, g.held_by_id
                 HAVING sum(g.seriously_wounded_count) > coalesce((SELECT sum(t.seriously_wounded_count) FROM exchanges_transfer t
                        JOIN exchanges_handover h ON h.id = t.handover_id AND h.state = 'done'
                        WHERE t.negotiation_id = cg.negotiation_id AND t.from_party_id = g.held_by_id), 0))
  ON CONFLICT DO NOTHING RETURNING negotiation_id)
UPDATE exchanges_negotiation SET stalled = true, stalled_since = now(), updated_at = now()
WHERE id IN (SELECT negotiation_id FROM inserted)
"""


FLOOR_CHANGES = """
INSERT INTO exchanges_change (at, object_type, object_id, action, negotiation_id, audience_mode, audience)
SELECT now(), 'flag', f.id, 'created', f.negotiation_id, '', '' FROM tracker_flag f
UNION ALL
SELECT now(), 'negotiation', n.id, 'updated', n.id, '', '' FROM exchanges_negotiation n WHERE n.stalled
"""
