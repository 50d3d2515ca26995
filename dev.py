#!/usr/bin/env python3
"""The project's two everyday commands, needing nothing but Python 3.11+.

    python3 dev.py run     set everything up and serve the shop on http://127.0.0.1:8000/
    python3 dev.py test    run the test suite on SQLite, then on PostgreSQL when one answers

Both create `.venv` and install the pinned requirements the first time (and again when they change).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import venv
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
DEFAULT_TEST_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def ensure_venv(requirements: str) -> None:
    """Create .venv and install a requirements file unless it is installed already, as it is now."""
    if not PYTHON.exists():
        say(f"creating a virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    req = ROOT / requirements
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("requirements*.txt")):
        digest.update(path.read_bytes())
    stamp = VENV / f".installed-{req.stem}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    say(f"installing {requirements} into .venv")
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "-r", str(req)], check=True)
    stamp.write_text(digest.hexdigest())


def postgres_url_for_tests() -> tuple[str | None, str]:
    """Return the PostgreSQL URL to test against, or None and the reason there is none."""
    url = os.environ.get("TEST_POSTGRES_URL") or ""
    if not url and os.environ.get("DATABASE_URL", "").startswith("postgres"):
        url = os.environ["DATABASE_URL"]
    url = url or DEFAULT_TEST_POSTGRES_URL
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 5432
    try:
        with socket.create_connection((host, port), timeout=2):
            return url, ""
    except OSError as exc:
        return None, f"no PostgreSQL server answers at {host}:{port} ({exc.strerror or exc})"


def run_pytest(label: str, env: dict[str, str], args: list[str]) -> int:
    say(f"running the tests on {label}")
    return subprocess.call([str(PYTHON), "-m", "pytest", *args], cwd=ROOT, env=env)


def cmd_test(args: list[str]) -> int:
    ensure_venv("requirements-dev.txt")
    in_ci = os.environ.get("CI", "").lower() == "true"
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    results: dict[str, int | str] = {}

    sqlite_env = {**base_env, "DATABASE_URL": f"sqlite:///{ROOT / 'db.sqlite3'}"}
    results["SQLite"] = run_pytest("SQLite", sqlite_env, args)

    pg_url, why_not = postgres_url_for_tests()
    if pg_url:
        pg_env = {**base_env, "DATABASE_URL": pg_url}
        results["PostgreSQL"] = run_pytest(f"PostgreSQL ({pg_url})", pg_env, args)
    else:
        results["PostgreSQL"] = f"skipped: {why_not}; set TEST_POSTGRES_URL to run it"

    say("summary:")
    failed = False
    for label, outcome in results.items():
        if isinstance(outcome, str):
            say(f"  {label}: {outcome}")
            failed = failed or in_ci
            if in_ci:
                say("  (CI=true: skipping a database run is a failure)")
        else:
            # pytest's 5 means it collected nothing, which is a failure of the suite, not a pass.
            say(f"  {label}: {'passed' if outcome == 0 else f'FAILED (pytest exit {outcome})'}")
            failed = failed or outcome != 0
    return 1 if failed else 0


def cmd_run(args: list[str]) -> int:
    ensure_venv("requirements.txt")
    child = subprocess.Popen([str(PYTHON), str(ROOT / "scripts" / "run.py"), *args], cwd=ROOT)

    def forward(signum: int, frame: object) -> None:
        # A signal sent to this process alone (not to the terminal's whole group) must still reach
        # run.py, which stops the site and the emulator it started; killing it would orphan them.
        child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return child.wait()


COMMANDS = {"run": cmd_run, "test": cmd_test}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
