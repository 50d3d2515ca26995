"""`python -m stripe_emulator`: says where it listens, serves, stops on a signal."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_stops_on_signal(stop_signal: signal.Signals) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_emulator",
            "--port",
            "0",
            "--webhook-secret",
            "whsec_one",
            "--webhook-secret",
            "whsec_two",
            "--duplicates",
            "2",
            "--webhook-timing",
            "hold",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        base_url = match.group(1)
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
