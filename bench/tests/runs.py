"""Run a bench script as an operator would, on a database of its own.

gunicorn serves the run from other processes, so it cannot use pytest-django's test database (nor its
transactions): each run creates, migrates and drops its own, beside the test database.
"""

import json
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

from django.conf import settings

from bench.harness import ROOT


def bench_database_url(tmp_path: Path, name: str) -> str:
    """Return the URL of a database for one run: an SQLite file, or a new PostgreSQL database."""
    config = settings.DATABASES["default"]
    if config["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{tmp_path / (name + '.sqlite3')}"
    user = quote(config.get("USER") or "postgres")
    password = f":{quote(config['PASSWORD'])}" if config.get("PASSWORD") else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/bench_{name}_{uuid.uuid4().hex[:8]}"


def run_script(
    script: str, tmp_path: Path, *args: str, exit_codes: tuple[int, ...] = (0,)
) -> tuple[subprocess.CompletedProcess, dict]:
    """Run bench/<script> with --json; return the finished process and the figures it wrote."""
    figures_path = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, f"bench/{script}", *args, "--json", str(figures_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in exit_codes, done.stdout + done.stderr
    return done, json.loads(figures_path.read_text())
