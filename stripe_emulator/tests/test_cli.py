"""`python -m stripe_emulator`: says where it listens, serves, stops on a signal."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import stripe

ROOT = Path(__file__).resolve().parents[2]


# Starts the emulator the way a non-interactive shell starts a background job: with SIGINT ignored.
SIGINT_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("launch", ["plain", "sigint_ignored"])
def test_cli_serves_and_stops_on_signal(stop_signal: signal.Signals, launch: str) -> None:
    prefix = ["-c", SIGINT_IGNORED] if launch == "sigint_ignored" else []
    process, base_url = start_cli(
        "--webhook-secret",
        "whsec_one",
        "--webhook-secret",
        "whsec_two",
        "--duplicates",
        "2",
        "--webhook-timing",
        "hold",
        prefix=prefix,
    )
    try:
        assert requests.get(f"{base_url}/_emulator/health", timeout=5).json() == {"ok": True}
        config = requests.get(f"{base_url}/_emulator/config", timeout=5).json()
        assert config["webhook_secrets"] == ["whsec_one", "whsec_two"]
        assert (config["duplicates"], config["webhook_timing"]) == (2, "hold")
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_rejects_bad_knobs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stripe_emulator", "--port", "0", "--drop-rate", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "drop_rate" in result.stderr


def start_cli(*args: str, prefix: list[str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m stripe_emulator` on a free port; return it and its base URL."""
    process = subprocess.Popen(
        [sys.executable, *(prefix or []), "-m", "stripe_emulator", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", process.stdout.readline())
    assert match, process.stderr.read() if process.stderr else ""
    return process, match.group(1)


def test_cli_keeps_state_in_a_file_across_restarts(tmp_path: Path) -> None:
    state_file = str(tmp_path / "emulator-state.json")
    process, base_url = start_cli("--state-file", state_file)
    try:
        client = stripe.StripeClient("sk_test_cli", base_addresses={"api": base_url}, max_network_retries=0)
        product = client.v1.products.create(params={"name": "Kept"})
        price = client.v1.prices.create(
            params={"product": product.id, "unit_amount": 1500, "currency": "usd"}
        )
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": [{"price": price.id, "quantity": 2}],
                "success_url": "http://shop.test/ok",
            }
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        process, base_url = start_cli("--state-file", state_file)
        client = stripe.StripeClient("sk_test_cli", base_addresses={"api": base_url}, max_network_retries=0)
        again = client.v1.checkout.sessions.retrieve(session.id)
        assert (again.status, again.amount_total, again.url) == ("open", 3000, f"{base_url}/pay/{session.id}")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_refuses_a_state_file_it_did_not_write(tmp_path: Path) -> None:
    state_file = tmp_path / "notes.json"
    state_file.write_text("my notes")
    result = subprocess.run(
        [sys.executable, "-m", "stripe_emulator", "--port", "0", "--state-file", str(state_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "is not JSON" in result.stderr
    assert state_file.read_text() == "my notes"
