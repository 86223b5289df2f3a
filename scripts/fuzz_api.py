#!/usr/bin/env python
"""`make fuzz`: schemathesis against the served OpenAPI schema, bounded in time.

Builds a fresh database (PostgreSQL when DATABASE_URL names one, else a temporary
SQLite file), loads the demo, starts gunicorn on loopback, and fuzzes the API as a
read-write client, a read-only client and an unauthenticated caller. Fails on any server
error or any response that does not match the schema.
"""
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PORT = int(os.environ.get("FUZZ_PORT", "8765"))
SECONDS = os.environ.get("FUZZ_SECONDS", "60")
#: Every check and every phase (stateful links included); what the checks expect of answers
#: that depend on stored data is in scripts/schemathesis.toml, with the reasons.
CHECKS = os.environ.get("FUZZ_CHECKS", "all")
PHASES = os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing,stateful")
CONFIG = Path(__file__).with_name("schemathesis.toml")


def manage(env, *args):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout


def fresh_database(env):
    url = env.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        parts = urlsplit(url)
        name = parts.path.lstrip("/") + "_fuzz"
        admin = urlunsplit(parts._replace(path="/postgres"))
        import psycopg

        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    else:
        env.pop("DATABASE_URL", None)
    env["TRACKER_VAR_DIR"] = tempfile.mkdtemp(prefix="tracker-fuzz-")


def main():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "TRACKER_API_RATE": "1000000/min",
        "CELERY_BROKER_URL": "memory://",
        "TRACKER_KICK_ON_COMMIT": "false",
    }
    fresh_database(env)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "load_demo")
    read_write = manage(env, "create_api_client", "--party", "UA").strip().splitlines()[-1]
    read_only = manage(env, "create_api_client", "--party", "ICRC", "--read-only").strip().splitlines()[-1]
    log = open(Path(env["TRACKER_VAR_DIR"]) / "gunicorn.log", "w")
    server = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", "2", "--timeout", "60"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    failed = []
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        for label, headers in (
            ("read-write client", ["-H", f"Authorization: Bearer {read_write}"]),
            ("read-only client", ["-H", f"Authorization: Bearer {read_only}"]),
            ("unauthenticated", []),
        ):
            print(f"\n=== schemathesis as {label} ({SECONDS}s) ===", flush=True)
            result = subprocess.run(
                [
                    sys.executable, str(ROOT / "scripts" / "schemathesis_run.py"), "--config-file", str(CONFIG),
                    "run", f"http://127.0.0.1:{PORT}/api/v1/schema/",
                    *headers, "--checks", CHECKS, "--phases", PHASES, "--max-time", SECONDS,
                    "--request-timeout", "20", "--workers", "2", "--suppress-health-check", "all",
                ],
                cwd=ROOT,
            )
            if result.returncode != 0:
                failed.append(label)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    if failed:
        print(f"\nschemathesis failed for: {', '.join(failed)}; server log: {log.name}")
        return 1
    print("\nschemathesis: no server errors, every response matched the schema")
    return 0


if __name__ == "__main__":
    sys.exit(main())
