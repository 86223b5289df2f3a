"""Create or update the least-privilege PostgreSQL role the application connects as.

Run by the owner of the tables (the role that runs `migrate`), after each `migrate`. The
role may read and write the record, but is no superuser, may create no role or database,
owns nothing, holds no TRUNCATE and creates nothing in the schema (no DDL at run time);
on the audit trail and the access log it may only read, append and fill the chain columns
of rows not yet sealed (the trigger refuses anything else). Default privileges give it the
same on tables the owner creates later.

Only a table's owner may ANALYZE it (PostgreSQL 17's MAINTAIN privilege aside), yet the
stall scan refreshes the planner's statistics of the tables it has just rewritten by the
thousand. So the command also (re)creates `tracker_analyze(table)`, a SECURITY DEFINER
function owned by the owner that analyzes only those tables, and lets the role run it."""
import os

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from psycopg import sql

from exchanges import chain
from exchanges.models.trail import TrailHead

ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
FORBIDDEN = ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls")


class Command(BaseCommand):
    help = (
        "Create or update the application's least-privilege database role (PostgreSQL): read and write "
        "the record, append-only on the audit trail and the access log, no TRUNCATE, no DDL. Run it as the "
        "owner of the tables, after migrate."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="The role the application connects as, e.g. tracker_app.")
        parser.add_argument(
            "--password-env", default="TRACKER_APP_DB_PASSWORD",
            help="The environment variable holding its password (default %(default)s); unset: left as it is.",
        )

    def handle(self, *args, role, password_env, **options):
        if connection.vendor != "postgresql":
            raise CommandError("Database roles are a PostgreSQL matter; this database is not PostgreSQL.")
        password = os.environ.get(password_env) or None
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database()")
            owner, database = cursor.fetchone()
            if role == owner:
                raise CommandError(f"{role} is the role running this command (the owner); name another role.")
            self._ensure_role(cursor, role, password)
            self._grant(cursor, role, owner, database)
        self.stdout.write(
            f"Role {role}: may read and write the record in {database}; append-only on the audit trail and "
            f"access log; no TRUNCATE, no DDL. Tables {owner} creates later are granted too."
        )

    def _run(self, cursor, statement, *identifiers, literal=None):
        names = [sql.Identifier(name) for name in identifiers]
        query = sql.SQL(statement).format(*names, password=sql.Literal(literal))
        cursor.execute(query.as_string(cursor.connection))

    def _ensure_role(self, cursor, role, password):
        cursor.execute(f"SELECT {', '.join(FORBIDDEN)} FROM pg_roles WHERE rolname = %s", [role])
        found = cursor.fetchone()
        if found is None:
            self._run(cursor, f"CREATE ROLE {{}} {ATTRIBUTES} PASSWORD {{password}}", role, literal=password)
            return
        granted = [name[3:].upper() for name, value in zip(FORBIDDEN, found) if value]
        if granted:
            raise CommandError(f"Role {role} has {', '.join(granted)}; an application role must not. Remove it first.")
        cursor.execute("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = %s", [role])
        if cursor.fetchone()[0]:
            raise CommandError(f"Role {role} owns tables; the application role must own nothing (REASSIGN OWNED BY it first).")
        self._run(cursor, "ALTER ROLE {} LOGIN", role)
        if password:
            self._run(cursor, "ALTER ROLE {} PASSWORD {password}", role, literal=password)

    def _grant(self, cursor, role, owner, database):
        run = self._run
        run(cursor, "GRANT CONNECT ON DATABASE {} TO {}", database, role)
        # Nobody but the owner creates objects in the schema (PostgreSQL before 15 lets PUBLIC).
        run(cursor, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        run(cursor, "GRANT USAGE ON SCHEMA public TO {}", role)
        # From a clean slate each time, so privileges given by hand or by an older version go.
        run(cursor, "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}", role)
        run(cursor, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}", role)
        run(cursor, "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}", role)
        run(cursor, "REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {}", role)
        for each in chain.CHAINS:
            table = each.model._meta.db_table
            run(cursor, "REVOKE UPDATE, DELETE ON {} FROM {}", table, role)
            run(cursor, "GRANT UPDATE (seq, hash) ON {} TO {}", table, role)
        run(cursor, "REVOKE DELETE ON {} FROM {}", TrailHead._meta.db_table, role)
        self._analyze_function(cursor, role)
        for grant in ("SELECT, INSERT, UPDATE, DELETE ON TABLES", "USAGE, SELECT ON SEQUENCES"):
            run(cursor, f"ALTER DEFAULT PRIVILEGES FOR ROLE {{}} IN SCHEMA public GRANT {grant} TO {{}}", owner, role)

    def _analyze_function(self, cursor, role):
        """`tracker_analyze(table)`: ANALYZE, as the owner, of the tables the stall scan
        rewrites in bulk (tracker.services._analyze), and of nothing else. Its search_path
        is fixed and the table named by the owner's list, so the role gains nothing but
        fresh statistics; PUBLIC may not run it."""
        tables = [apps.get_model(label)._meta.db_table for label in ANALYZED_BY_SCAN]
        allowed = sql.SQL(", ").join(sql.Literal(table) for table in tables)
        body = sql.SQL(
            "CREATE OR REPLACE FUNCTION public.tracker_analyze(table_name text) RETURNS void "
            "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$ "
            "BEGIN "
            "IF table_name IS NULL OR table_name NOT IN ({allowed}) THEN "
            "RAISE EXCEPTION 'tracker_analyze: % is not a table the stall scan analyzes', table_name "
            "USING ERRCODE = 'insufficient_privilege'; "
            "END IF; "
            "EXECUTE format('ANALYZE public.%I', table_name); "
            "END $fn$"
        ).format(allowed=allowed)
        cursor.execute(body.as_string(cursor.connection))
        self._run(cursor, "REVOKE ALL ON FUNCTION public.tracker_analyze(text) FROM PUBLIC")
        self._run(cursor, "GRANT EXECUTE ON FUNCTION public.tracker_analyze(text) TO {}", role)


#: The models whose tables the stall scan analyzes after writing thousands of rows (by app
#: label: exchanges does not import the tracker).
ANALYZED_BY_SCAN = ("exchanges.Negotiation", "tracker.Flag")
