"""PostgreSQL (Django's backend) with a connection health check that costs no round trip.

With `CONN_HEALTH_CHECKS`, Django sends `SELECT 1` before the first query of every request
that reuses a persistent connection: one more round trip per request, a third of the
database time of an API client's detail read. A connection the server has closed (a
restart, `pg_terminate_backend`, an idle timeout) has something to read on its socket
while it sits idle between requests: the server's FATAL message or the end of the stream.
So an idle socket with nothing to read is taken as healthy, and only a socket with
something waiting gets Django's `SELECT 1` to decide.

What neither check sees quickly is a silent network partition; TCP keepalives (libpq's
`keepalives_*` options) are the tool for that.
"""
import select
from functools import lru_cache

import psycopg
from psycopg import _queries
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.pq import Format


@lru_cache(maxsize=64)
def _converted(query, encoding):
    return _queries._query2pg_nocache(query, encoding)


class _FixedStatementQuery(_queries.PostgresQuery):
    """psycopg finds a statement's placeholders with a regular expression on every
    execute, and caches the result only for statements up to 4 KB; the prepared cursor's
    few statements (the fast reads') are longer, so each request scanned about 5 KB of
    SQL again. They are few and fixed, so they are cached here (psycopg 3.2's interface)."""

    __slots__ = ()

    def convert(self, query, vars):
        if vars is None or not isinstance(query, str):
            return super().convert(query, vars)
        self.query, self._want_formats, self._order, self._parts = _converted(query.encode(self._encoding), self._encoding)
        self.dump(vars)


class _PreparedCursor(psycopg.Cursor):
    __slots__ = ()
    _query_cls = _FixedStatementQuery


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        if self.connection is None or self.connection.closed:
            return False
        try:
            poller = select.poll()
            poller.register(self.connection.pgconn.socket, select.POLLIN | select.POLLPRI)
            waiting = poller.poll(0)
        except Exception:  # noqa: BLE001 - no socket to ask: let the query decide
            waiting = True
        return super().is_usable() if waiting else True

    def init_connection_state(self):
        super().init_connection_state()
        with self.connection.cursor() as cursor:
            # Only prepared_cursor()'s statements are prepared (the ORM binds on the client),
            # and they are planned once per connection, whatever their parameters.
            cursor.execute("SET plan_cache_mode = force_generic_plan")

    def prepared_cursor(self):
        """A cursor that binds its parameters on the server, so that psycopg prepares a
        statement after a few runs (`prepare_threshold`) and PostgreSQL plans it once per
        connection (a generic plan) instead of on every request. Only for statements whose
        best plan does not depend on their parameters' values, like a lookup by primary
        key; the ORM keeps Django's client-side binding. Logged and wrapped like any cursor."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            cursor = _PreparedCursor(self.connection)
            tzloader = self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, Format.TEXT)
            if self.timezone != tzloader.timezone:
                register_tzloader(self.timezone, cursor)
            return self._prepare_cursor(cursor)
