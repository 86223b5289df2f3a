"""The floor for the stall scan benchmark (`scripts/bench.py`): bare SQL that raises the
same flags as `tracker.services.scan_stalls` from a clean slate, marks the negotiations
stalled, and writes the change rows a partner's feed needs of it."""

FLOOR_SCAN = """
WITH rules AS (SELECT
    max(overdue_days) FILTER (WHERE key = 'urgent') AS u1, max(very_overdue_days) FILTER (WHERE key = 'urgent') AS u2,
    max(overdue_days) FILTER (WHERE key = 'high') AS h1, max(very_overdue_days) FILTER (WHERE key = 'high') AS h2,
    max(overdue_days) FILTER (WHERE key = 'routine') AS r1, max(very_overdue_days) FILTER (WHERE key = 'routine') AS r2,
    max(overdue_days) FILTER (WHERE key = 'deadline') AS d1, max(very_overdue_days) FILTER (WHERE key = 'deadline') AS d2,
    max(overdue_days) FILTER (WHERE key = 'rhythm') AS y1, max(very_overdue_days) FILTER (WHERE key = 'rhythm') AS y2,
    max(gap_multiplier) FILTER (WHERE key = 'rhythm') AS gm, max(min_activities) FILTER (WHERE key = 'rhythm') AS ma,
    max(overdue_days) FILTER (WHERE key = 'wounded') AS w1, max(very_overdue_days) FILTER (WHERE key = 'wounded') AS w2
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
         CASE c.effective WHEN 'urgent' THEN r.u2 WHEN 'high' THEN r.h2 ELSE r.r2 END AS v, r.d1, r.d2, r.y1, r.y2, r.gm, r.ma
  FROM candidates c, rules r),
-- Seriously wounded waiting: per agreed or implementing negotiation and holding party, the
-- wounded its covered groups hold against what its done transfers released.
held AS (
  SELECT c.id AS negotiation_id, g.held_by_id, sum(g.seriously_wounded_count) AS wounded
  FROM candidates c JOIN rules r ON c.agreed_at <= now() - make_interval(days => r.w1)
  JOIN exchanges_coveredgroup cg ON cg.negotiation_id = c.id
  JOIN exchanges_detaineegroup g ON g.id = cg.group_id AND g.seriously_wounded_count > 0
  WHERE c.status IN ('agreed', 'implementing')
  GROUP BY c.id, g.held_by_id),
released AS (
  SELECT t.negotiation_id, t.from_party_id, sum(t.seriously_wounded_count) AS wounded
  FROM exchanges_transfer t JOIN exchanges_handover h ON h.id = t.handover_id AND h.state = 'done'
  WHERE t.negotiation_id IN (SELECT negotiation_id FROM held)
  GROUP BY t.negotiation_id, t.from_party_id),
waiting AS (
  SELECT DISTINCT held.negotiation_id FROM held
  LEFT JOIN released ON released.negotiation_id = held.negotiation_id AND released.from_party_id = held.held_by_id
  WHERE held.wounded > coalesce(released.wounded, 0)),
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
         CASE WHEN silent >= make_interval(days => y2) AND silent > usual_gap * (gm * 2) THEN 'very_overdue' ELSE 'overdue' END,
         now(), last_activity_at, NULL, ''
  FROM silence WHERE activity_count >= ma AND usual_gap IS NOT NULL AND silent >= make_interval(days => y1) AND silent > usual_gap * gm
  UNION ALL
  SELECT gen_random_uuid(), now(), now(), c.id, 'wounded_waiting',
         CASE WHEN c.agreed_at <= now() - make_interval(days => r.w2) THEN 'very_overdue' ELSE 'overdue' END, now(), c.last_activity_at, NULL, ''
  FROM candidates c JOIN waiting w ON w.negotiation_id = c.id, rules r
  ON CONFLICT DO NOTHING RETURNING negotiation_id)
UPDATE exchanges_negotiation SET stalled = true, stalled_since = now(), updated_at = now()
WHERE id IN (SELECT negotiation_id FROM inserted)
"""


#: What a partner's change feed needs of the scan: a row per flag raised and per
#: negotiation marked stalled, numbered after the feed's last position (the tracker
#: writes them unnumbered and numbers them once committed).
FLOOR_CHANGES = """
INSERT INTO exchanges_change (position, at, object_type, object_id, action, negotiation_id, audience_mode, audience)
SELECT top.position + row_number() OVER (), now(), written.type, written.id, written.action, written.negotiation_id, '', ''
FROM (SELECT 'flag' AS type, f.id, 'created' AS action, f.negotiation_id FROM tracker_flag f
      UNION ALL
      SELECT 'negotiation', n.id, 'updated', n.id FROM exchanges_negotiation n WHERE n.stalled) written,
     (SELECT coalesce(max(position), 0) AS position FROM exchanges_change) top
"""
