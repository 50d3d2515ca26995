"""Set the project up and serve it: what `python3 dev.py run` executes inside .venv.

Migrate (the demo catalog is seeded by a migration), start the Stripe emulator unless real Stripe test
keys are configured, sync the catalog to Stripe, serve on http://127.0.0.1:8000/, and run the
worker that processes the webhooks' events and sends the signals. Ctrl-C stops everything this
script started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
# Kept under .venv so it survives restarts (a terminal replaying events keeps working) and never gets
# committed; deleting .venv makes a new one.
EMULATOR_SECRET_FILE = ROOT / ".venv" / "emulator-webhook-secret"
# The emulator's account (sessions, payments, refunds) outlives a restart, as a Stripe account does: else
# the audit would find every older order unknown to Stripe.
EMULATOR_STATE_FILE = ROOT / ".venv" / "emulator-state.json"
EMULATOR_API_KEY = "sk_test_emulator_local_dev"
ENV_FILE = ROOT / ".env"
STOP_GRACE_SECONDS = 5.0


class RunError(Exception):
    """Something the user has to fix before the project can start."""


def say(message: str = "") -> None:
    print(f"[run] {message}" if message else "", flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 dev.py run", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="Address the site listens on (127.0.0.1).")
    parser.add_argument("--port", type=int, default=8000, help="Port the site listens on (8000).")
    parser.add_argument(
        "--emulator-port", type=int, default=12111, help="Port the Stripe emulator listens on (12111)."
    )
    parser.add_argument(
        "--noreload", action="store_true", help="Do not restart the site when a Python file changes."
    )
    parser.add_argument(
        "--no-worker", action="store_true", help="Start no worker: see what a stopped worker looks like."
    )
    return parser.parse_args(argv)


def configured(name: str, dotenv: dict[str, str | None]) -> str:
    """Return a setting as Django will see it: the environment wins over `.env`."""
    if name in os.environ:
        return os.environ[name].strip()
    return (dotenv.get(name) or "").strip()


def ensure_development_mode(dotenv: dict[str, str]) -> str:
    """Make DJANGO_DEBUG true for this checkout, in `.env`, so every manage.py command here agrees.

    DEBUG is off unless asked for. `.env` (ignored by git) is what runserver and the commands typed in
    other shells read, so it is written there, once: DJANGO_DEBUG=true and, unless one is set, a generated
    DJANGO_SECRET_KEY. Return what was written, for the banner; an explicit false is refused.
    """
    debug = configured("DJANGO_DEBUG", dotenv)
    if debug.lower() in ("1", "true", "yes", "on"):
        return ""
    if "DJANGO_DEBUG" in os.environ or "DJANGO_DEBUG" in dotenv:
        raise RunError(
            f"DJANGO_DEBUG is {debug!r} (in the environment or .env). `dev.py run` serves with runserver, "
            "which is for development: set DJANGO_DEBUG=true, or serve production mode with gunicorn "
            "(see Deployment in README.md)."
        )
    written = ["DJANGO_DEBUG=true"]
    if not configured("DJANGO_SECRET_KEY", dotenv):
        written.append(f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}")
    existing = ENV_FILE.read_text() if ENV_FILE.exists() else ""
    separator = "\n" if existing and not existing.endswith("\n") else ""
    header = "# Written by `python3 dev.py run`: development mode. Never commit this file."
    block = "\n".join([header, *written])
    ENV_FILE.write_text(existing + separator + ("\n" if existing else "") + block + "\n")
    return " and ".join(line.split("=")[0] for line in written)


def ensure_port_free(host: str, port: int, what: str, option: str) -> None:
    """Refuse to start when something already listens on the port, naming the way out."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As runserver and the emulator do, so connections of a previous run in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise RunError(
                f"port {port} on {host} is taken ({exc.strerror or exc}), so the {what} cannot start there. "
                f"Is `dev.py run` already running in another terminal? Stop it, or pick another port "
                f"with {option}."
            ) from None


def emulator_webhook_secret() -> str:
    """Return this checkout's emulator webhook secret, creating it on first use."""
    if EMULATOR_SECRET_FILE.exists():
        secret = EMULATOR_SECRET_FILE.read_text().strip()
        if secret.startswith("whsec_"):
            return secret
    secret = f"whsec_{secrets.token_hex(24)}"
    EMULATOR_SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
    EMULATOR_SECRET_FILE.write_text(secret + "\n")
    return secret


def manage(*args: str, env: dict[str, str]) -> None:
    """Run a manage.py command to completion, or stop with its name."""
    say(f"manage.py {' '.join(args)}")
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env)
    if result.returncode != 0:
        raise RunError(f"`manage.py {' '.join(args)}` failed (exit {result.returncode}); see above.")


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a long-running child in its own process group, so stopping it stops its children too."""
    if os.name == "nt":
        return subprocess.Popen(command, cwd=ROOT, env=env)
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def stop(process: subprocess.Popen, name: str) -> None:
    """Stop a child and everything it started: SIGINT, then SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
        try:
            if os.name == "nt":
                process.terminate()
            else:
                os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
            break
        except subprocess.TimeoutExpired:
            continue
    if os.name != "nt":
        # runserver's autoreloader runs the site in a child; make sure none of the group outlives us.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    say(f"stopped the {name}")


def wait_for_emulator(base_url: str, process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Wait until the emulator answers its control API."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RunError(f"the Stripe emulator exited at start-up (exit {process.returncode}); see above.")
        try:
            with urllib.request.urlopen(f"{base_url}/_emulator/health", timeout=1) as response:
                json.load(response)
                return
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.1)
    raise RunError(f"the Stripe emulator did not answer on {base_url} within {timeout:.0f} s.")


def start_emulator(args: argparse.Namespace, env: dict[str, str], webhook_url: str, secret: str):
    base_url = f"http://127.0.0.1:{args.emulator_port}"
    say(f"starting the Stripe emulator on {base_url}")
    process = spawn(
        [
            sys.executable,
            "-m",
            "stripe_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.emulator_port),
            "--webhook-url",
            webhook_url,
            "--webhook-secret",
            secret,
            "--state-file",
            str(EMULATOR_STATE_FILE),
        ],
        env,
    )
    try:
        wait_for_emulator(base_url, process)
    except BaseException:
        stop(process, "Stripe emulator")
        raise
    return process, base_url


DEMO_PROMOTION_CODE = "DEMO10"
DEMO_SHIPPING_COUNTRIES = "US,CA,GB,DE,FR"


def emulator_call(base_url: str, path: str, data: dict | None = None, *, form: bool = False) -> dict:
    """Call the emulator (its Stripe API with the emulator's key, or its control API); return the JSON."""
    headers = {"Authorization": f"Bearer {EMULATOR_API_KEY}"}
    body = None
    if data is not None:
        body = (urllib.parse.urlencode(data) if form else json.dumps(data)).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded" if form else "application/json"
    request = urllib.request.Request(f"{base_url}{path}", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def demo_checkout_extras(base_url: str, dotenv: dict[str, str]) -> dict[str, str]:
    """Give the emulator's account a shipping rate and a promotion code (once: its state file keeps them),
    and return the settings that offer them, with tax, unless the environment or .env sets its own."""
    rates = emulator_call(base_url, "/v1/shipping_rates?active=true")["data"]
    rate = (
        rates[0]["id"]
        if rates
        else emulator_call(
            base_url,
            "/v1/shipping_rates",
            {
                "display_name": "Parcel",
                "type": "fixed_amount",
                "fixed_amount[amount]": "499",
                "fixed_amount[currency]": "usd",
            },
            form=True,
        )["id"]
    )
    if not emulator_call(base_url, f"/v1/promotion_codes?code={DEMO_PROMOTION_CODE}&active=true")["data"]:
        emulator_call(
            base_url, "/_emulator/promotion_codes", {"code": DEMO_PROMOTION_CODE, "percent_off": 10}
        )
    extras = {
        "CHECKOUT_PROMOTION_CODES": "true",
        "CHECKOUT_AUTOMATIC_TAX": "true",
        "CHECKOUT_SHIPPING_COUNTRIES": DEMO_SHIPPING_COUNTRIES,
        "CHECKOUT_SHIPPING_RATES": rate,
    }
    return {name: value for name, value in extras.items() if not configured(name, dotenv)}


def wait_for_site(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until the site answers, so the banner is printed when the links work."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RunError(f"the site exited at start-up (exit {process.returncode}); see above.")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # It answered; the page itself will say what is wrong.
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RunError(f"the site did not answer on {url} within {timeout:.0f} s.")


def print_banner(
    *,
    site: str,
    emulator_url: str | None,
    secret: str,
    env: dict[str, str],
    stripe_api_base: str,
    env_written: str,
    worker: bool,
) -> None:
    say()
    say("=" * 72)
    say(f"shop           {site}/")
    say("settings       development mode (DJANGO_DEBUG=true, from the environment or .env)")
    if env_written:
        say(f"               this run wrote {env_written} to .env (ignored by git; delete it to start over)")
    say(f"admin          {site}/admin/   (create a user: .venv/bin/python manage.py createsuperuser)")
    if emulator_url:
        say(f"Stripe         the emulator at {emulator_url} (offline, nothing is charged)")
        say(f"webhooks       {emulator_url} -> {site}/stripe-webhook, signed with {secret}")
        say(f"               the secret is kept in {EMULATOR_SECRET_FILE.relative_to(ROOT)}")
        say(f"               its account in {EMULATOR_STATE_FILE.relative_to(ROOT)} (delete it: a new one)")
        if env.get("CHECKOUT_PROMOTION_CODES") == "true":
            say(
                f"               promotion code {DEMO_PROMOTION_CODE} takes 10 % off; tax and shipping are on"
            )
        say(
            "emulator knobs curl -X POST -H 'Content-Type: application/json' "
            f'-d \'{{"webhook_timing": "hold"}}\' {emulator_url}/_emulator/config'
        )
        say("other shells   to point a manage.py command at this emulator, prefix it with:")
        say(f"               STRIPE_SECRET_KEY={env['STRIPE_SECRET_KEY']} STRIPE_API_BASE={emulator_url}")
    else:
        api_base = stripe_api_base or "https://api.stripe.com"
        say(f"Stripe         {api_base}, with STRIPE_SECRET_KEY from the environment or .env")
        if secret:
            say(f"webhooks       {site}/stripe-webhook, verified with STRIPE_WEBHOOK_SECRET")
        else:
            say("webhooks       REFUSED: STRIPE_WEBHOOK_SECRET is not set, so no delivery can be verified.")
        port = site.rsplit(":", 1)[1]
        say(f"               Run `stripe listen --forward-to localhost:{port}/stripe-webhook` and put the")
        say("               whsec_... secret it prints in .env as STRIPE_WEBHOOK_SECRET, then restart.")
    if worker:
        say("worker         manage.py process_events: processes each stored event, sends each signal")
    else:
        say("worker         none (--no-worker): events wait, stored, for manage.py process_events")
    stopped = ["the site", *(["the worker"] if worker else []), *(["the emulator"] if emulator_url else [])]
    listed = stopped[0] if len(stopped) == 1 else f"{', '.join(stopped[:-1])} and {stopped[-1]}"
    say(f"stop           Ctrl-C (stops {listed})")
    say("=" * 72)
    say()


def run(args: argparse.Namespace) -> int:
    dotenv = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    api_key = configured("STRIPE_SECRET_KEY", dotenv)
    use_emulator = not api_key
    if api_key.startswith(("sk_live_", "rk_live_")):
        raise RunError(
            "STRIPE_SECRET_KEY is a live key. `dev.py run` is for development: use a test key (sk_test_...) "
            "or none at all for the offline emulator."
        )

    ensure_port_free(args.host, args.port, "site", "--port")
    env_written = ensure_development_mode(dotenv)
    if env_written:
        say(f"wrote {env_written} to .env: development mode for this checkout")
    if use_emulator:
        ensure_port_free("127.0.0.1", args.emulator_port, "Stripe emulator", "--emulator-port")

    site = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    webhook_url = f"http://127.0.0.1:{args.port}/stripe-webhook"
    children: list[tuple[subprocess.Popen, str]] = []
    try:
        manage("migrate", "--noinput", env=env)
        emulator_url = None
        if use_emulator:
            secret = emulator_webhook_secret()
            emulator, emulator_url = start_emulator(args, env, webhook_url, secret)
            children.append((emulator, "Stripe emulator"))
            env.update(
                STRIPE_SECRET_KEY=EMULATOR_API_KEY,
                STRIPE_API_BASE=emulator_url,
                STRIPE_WEBHOOK_SECRET=secret,
            )
            env.update(demo_checkout_extras(emulator_url, dotenv))
        else:
            secret = configured("STRIPE_WEBHOOK_SECRET", dotenv)
            say("STRIPE_SECRET_KEY is set: using your Stripe test account, no emulator")
        manage("sync_catalog", env=env)

        command = [sys.executable, str(ROOT / "manage.py"), "runserver", f"{args.host}:{args.port}"]
        if args.noreload:
            command.append("--noreload")
        say(f"serving on {site}/")
        server = spawn(command, env)
        children.append((server, "site"))
        wait_for_site(f"{site}/", server)
        # The webhook only stores; the worker processes.
        worker = not args.no_worker
        if worker:
            command = [sys.executable, str(ROOT / "manage.py"), "process_events", "--poll", "0.2"]
            if not args.noreload:
                command.append("--reload")
            say("starting the worker (manage.py process_events)")
            children.append((spawn(command, env), "worker"))
        print_banner(
            site=site,
            emulator_url=emulator_url,
            secret=secret,
            env=env,
            stripe_api_base=configured("STRIPE_API_BASE", dotenv),
            env_written=env_written,
            worker=worker,
        )

        while True:
            for process, name in list(children):
                if process.poll() is None:
                    continue
                if name != "worker":
                    raise RunError(f"the {name} stopped unexpectedly (exit {process.returncode}).")
                # The shop goes on without it, as in production: events wait, stored, for a worker.
                children.remove((process, name))
                say(f"the worker stopped (exit {process.returncode}); the site and the emulator go on, and")
                say("events wait, stored, until a worker runs: .venv/bin/python manage.py process_events")
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        for process, name in reversed(children):
            stop(process, name)


_interrupted = False


def _interrupt_once(signum: int, frame: object) -> None:
    # Ctrl-C reaches this process twice (from the terminal, and forwarded by dev.py); only the first
    # may interrupt, or a second one could cut the clean-up short and leave a child running.
    global _interrupted
    if not _interrupted:
        _interrupted = True
        raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # `kill <pid>` stops as cleanly as Ctrl-C does.
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    try:
        return run(args)
    except RunError as exc:
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
