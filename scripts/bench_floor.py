"""The floor for the list and detail benchmarks: a bare WSGI app that answers the same
50 negotiations (or one), with their commitments and each releasing side's sums over
done handovers, with one SQL query and orjson. Served by gunicorn exactly like
the tracker. Not used in production."""
import os
from urllib.parse import parse_qs

import orjson
import psycopg

DSN = os.environ["FLOOR_DSN"]
_connection = None

COLUMNS = """n.id, n.reference, n.title, n.summary, n.status, n.priority, n.visibility, n.opened_on,
    n.next_step, n.next_step_due, n.last_activity_at, n.stalled, n.stalled_since, n.created_at, n.updated_at,
    (SELECT coalesce(json_agg(json_build_object('party', p.party_id, 'role', p.role) ORDER BY p.id), '[]')
       FROM exchanges_participant p WHERE p.negotiation_id = n.id) AS participants,
    (SELECT coalesce(json_agg(json_build_object('group', g.group_id, 'proposed_count', g.proposed_count,
            'released_count', g.released_count) ORDER BY g.id), '[]')
       FROM exchanges_coveredgroup g WHERE g.negotiation_id = n.id) AS groups,
    (SELECT coalesce(json_agg(json_build_object('party', c.party_id, 'count', c.count,
            'seriously_wounded_count', c.seriously_wounded_count, 'notes', c.notes) ORDER BY c.id), '[]')
       FROM exchanges_commitment c WHERE c.negotiation_id = n.id) AS commitments,
    (SELECT coalesce(json_agg(json_build_object('party', t.from_party_id, 'released', t.released,
            'verified', t.verified) ORDER BY t.from_party_id), '[]')
       FROM (SELECT tr.from_party_id, sum(tr.released_count) AS released, sum(tr.verified_count) AS verified
             FROM exchanges_transfer tr JOIN exchanges_handover h ON h.id = tr.handover_id AND h.state = 'done'
             WHERE tr.negotiation_id = n.id GROUP BY tr.from_party_id) t) AS progress"""


def _cursor():
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(DSN, autocommit=True)
    return _connection.cursor()


def application(environ, start_response):
    path = environ["PATH_INFO"]
    with _cursor() as cursor:
        if path.startswith("/floor/negotiations/") and len(path) > len("/floor/negotiations/"):
            cursor.execute(f"SELECT {COLUMNS} FROM exchanges_negotiation n WHERE n.id = %s", [path.rsplit("/", 2)[-2]])
        else:
            size = int(parse_qs(environ.get("QUERY_STRING", "")).get("page_size", ["50"])[0])
            cursor.execute(
                f"SELECT {COLUMNS} FROM exchanges_negotiation n WHERE n.visibility = 'all_partners' "
                "ORDER BY n.created_at DESC, n.id DESC LIMIT %s",
                [size],
            )
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    body = orjson.dumps({"next": None, "previous": None, "results": rows}, option=orjson.OPT_NAIVE_UTC)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
