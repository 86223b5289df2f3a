"""The case file's weight on the wire in production settings: `make page-weight`.

Serves the app as production does (config.settings.production: DEBUG off, gunicorn,
WhiteNoise serving what `collectstatic` gathered with hashed names, compressed and cached
for a year, gzip for pages) on a fresh SQLite database with the demo loaded, logs in as a
Coordinator (two-factor login off), and opens the demo's Azovstal negotiation in Debian's
Chromium, which fetches the page and everything it references (CSS, scripts, images, the
JavaScript catalog) as a browser does. The bytes are read from the browser's own network
log (Chrome DevTools Protocol, `Network.loadingFinished.encodedDataLength`: headers and
body as received, compressed), so they are what a poor connection has to carry.

- first load: an empty cache (cleared after logging in);
- repeat load: the same case file opened again in a new tab, with the browser's HTTP
  cache as the first load left it (Cache-Control max-age/immutable honoured, 304
  revalidations counted by their headers only).

Prints one line per request and the totals against the budget (first load at most
150 KB, repeat load at most 20 KB; 1 KB = 1,000 bytes), and exits 1 when over it.
Request bytes (what the browser sends) are not counted.

    .venv/bin/python scripts/page_weight.py [--keep]
"""
import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CHROMIUM = os.environ.get("TRACKER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
BUDGET = {"first load": 150_000, "repeat load": 20_000}
USERNAME = "page-weight"
CASE_FILE_TITLE = "Evacuation and exchange of the seriously wounded Azovstal defenders"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(tmp, password):
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "CACHE_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_DEBUG="false",
        # Plain http on loopback: no TLS proxy in front here (cookies stay Secure; Chromium
        # keeps them for 127.0.0.1, a trustworthy origin).
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_STATIC_ROOT=str(tmp / "static"),
        TRACKER_VAR_DIR=str(tmp / "var"),
        CELERY_BROKER_URL="memory://",
        TRACKER_KICK_ON_COMMIT="false",
        TRACKER_REQUIRE_2FA="false",
        TRACKER_STAFF_PASSWORD=password,
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def manage(env, *args):
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def prepare(env):
    """collectstatic as the image does, then a fresh database with the demo and a login."""
    manage(env, "collectstatic", "--noinput", "-v0")
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "load_demo")
    manage(env, "scan_stalls")
    manage(env, "create_staff_login", USERNAME, "--role", "coordinator", "--team", "Eastern Europe desk", "--team", "Middle East desk")
    probe = f"from exchanges.models import Negotiation; print(Negotiation.objects.get(title={CASE_FILE_TITLE!r}).pk)"
    return manage(env, "shell", "-c", probe).strip().splitlines()[-1]


def serve(env, port, log):
    """gunicorn as in the image (Dockerfile's CMD), on loopback."""
    server = subprocess.Popen(
        [str(Path(PY).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "30"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited ({server.returncode}); see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    sys.exit(f"gunicorn did not answer /healthz within 60 s; see {log.name}")


class NetworkLog:
    """What the page fetched, from the DevTools protocol: one row per request."""

    def __init__(self, cdp):
        self.rows = {}
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.requestServedFromCache", self._from_cache)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.loadingFailed", self._failed)

    def _row(self, event):
        return self.rows.setdefault(event["requestId"], {"url": "", "status": None, "cache": "", "bytes": 0, "encoding": ""})

    def _sent(self, event):
        self._row(event)["url"] = event["request"]["url"]

    def _response(self, event):
        row, response = self._row(event), event["response"]
        row["url"] = row["url"] or response["url"]
        row["status"] = response["status"]
        headers = {key.lower(): value for key, value in response.get("headers", {}).items()}
        row["encoding"] = headers.get("content-encoding", "")
        row["cache_control"] = headers.get("cache-control", "")
        if response.get("fromDiskCache"):
            row["cache"] = "disk cache"
        if response.get("fromPrefetchCache"):
            row["cache"] = "prefetch cache"

    def _from_cache(self, event):
        self._row(event)["cache"] = "memory cache"

    def _finished(self, event):
        self._row(event)["bytes"] = int(event["encodedDataLength"])

    def _failed(self, event):
        row = self._row(event)
        row["status"] = row["status"] or "failed"
        row["cache"] = event.get("errorText", "")

    def total(self):
        return sum(row["bytes"] for row in self.rows.values())


def report(name, log, base):
    rows = [row for row in log.rows.values() if not row["url"].startswith("data:")]
    print(f"\n{name}: {len(rows)} requests")
    for row in sorted(rows, key=lambda row: -row["bytes"]):
        path = row["url"].removeprefix(base)
        how = row["cache"] or row["encoding"] or "identity"
        print(f"  {row['bytes']:>8,} B  {row['status']!s:>6}  {how:<12}  {path[:110]}")
    total, budget = log.total(), BUDGET[name]
    verdict = "within" if total <= budget else "OVER"
    print(f"  {total:>8,} B  total on the wire ({total / 1000:.1f} KB), {verdict} the budget of {budget / 1000:.0f} KB")
    return total


def measure(base, case_file_url, password):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-GB")
        page = context.new_page()
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.fill("#id_username", USERNAME)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_selector("#content-main")
        if urlsplit(page.url).path.startswith("/admin/login"):
            sys.exit("Could not log in (see the page's error).")
        context.new_cdp_session(page).send("Network.clearBrowserCache")
        page.close()

        figures = {}
        for name in ("first load", "repeat load"):
            # Each load in a new tab: the second finds only what the HTTP cache kept, as
            # when the case file is opened again later, not the tab's in-memory copies.
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            log = NetworkLog(cdp)
            page.goto(case_file_url, wait_until="networkidle")
            if not page.locator("#case-file").count():
                sys.exit(f"{case_file_url} is not a case file (title: {page.title()!r})")
            figures[name] = report(name, log, base)
            page.close()
        browser.close()
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, static files, server log)")
    args = parser.parse_args()
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        sys.exit(f"Chromium is not installed at {CHROMIUM} (scripts/system-deps installs Debian's chromium).")

    tmp = Path(tempfile.mkdtemp(prefix="page-weight-"))
    password = secrets.token_urlsafe(16)
    env = production_env(tmp, password)
    server = None
    try:
        print("Preparing: collectstatic (production storage), migrate, load_demo, scan_stalls, a Coordinator login ...")
        pk = prepare(env)
        port = free_port()
        with open(tmp / "gunicorn.log", "w") as log:
            server = serve(env, port, log)
            base = f"http://127.0.0.1:{port}"
            case_file_url = f"{base}/admin/exchanges/negotiation/{pk}/change/"
            print(f"Serving config.settings.production with gunicorn at {base}; Chromium at 1366x768 opens {case_file_url[len(base):]}")
            figures = measure(base, case_file_url, password)
    finally:
        if server is not None:
            os.killpg(server.pid, 15)
            server.wait(timeout=20)
        if args.keep:
            print(f"\nKept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print("\nCase file page weight (bytes on the wire, Chromium's network log):")
    over = False
    for name, total in figures.items():
        budget = BUDGET[name]
        over |= total > budget
        print(f"  {name:<12} {total / 1000:>7.1f} KB  (budget {budget / 1000:.0f} KB: {'met' if total <= budget else 'NOT met'})")
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
