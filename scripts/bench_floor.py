"""The floor for the list and detail benchmarks: a bare WSGI app that answers the same
50 negotiations (or one), with their commitments and each releasing side's sums over
done handovers, with one SQL query and orjson. Served by gunicorn exactly like
the tracker. Not used in production.

The writes' floor: `POST /floor/negotiations/<id>/status-changes/` (or `events/`) reads
the JSON body and does a bare INSERT of an equivalent row and a COMMIT, into a copy of
the table with its indexes and constraints but no foreign keys (`FLOOR_WRITE_TABLES`,
created and dropped by scripts/bench.py), so the dataset is not changed."""
import os
from urllib.parse import parse_qs

import orjson
import psycopg

DSN = os.environ.get("FLOOR_DSN")  # set when served (bench.py imports the table names only)
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


#: The copies the writes' floor inserts into: (copy, table it copies).
FLOOR_WRITE_TABLES = (("bench_floor_statuschange", "exchanges_statuschange"), ("bench_floor_event", "exchanges_event"))
FLOOR_WRITES = {
    "status-changes": "INSERT INTO bench_floor_statuschange (id, created_at, updated_at, negotiation_id, sequence, "
    "from_status, to_status, occurred_at, recorded_at, note, source) VALUES (gen_random_uuid(), now(), now(), %s, "
    "nextval('bench_floor_sequence'), %s, %s, now(), now(), %s, '')",
    "events": "INSERT INTO bench_floor_event (id, created_at, updated_at, negotiation_id, kind, occurred_at, summary, "
    "source) VALUES (gen_random_uuid(), now(), now(), %s, %s, %s, %s, '')",
}


def _write(environ, start_response):
    negotiation_id, kind = environ["PATH_INFO"].rstrip("/").rsplit("/", 2)[-2:]
    body = orjson.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
    if kind == "status-changes":
        to_status = body["to_status"]
        params = [negotiation_id, "in_talks" if to_status == "suspended" else "suspended", to_status, body.get("note", "")]
    else:
        params = [negotiation_id, body["kind"], body["occurred_at"], body["summary"]]
    with _cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            cursor.execute(FLOOR_WRITES[kind], params)
        except Exception:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
    answer = orjson.dumps({"negotiation": negotiation_id})
    start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if environ["REQUEST_METHOD"] == "POST":
        return _write(environ, start_response)
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
