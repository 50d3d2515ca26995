"""A scaled-down run of bench/chaos.py: real payments, killed workers, drops; the invariants hold.

PostgreSQL is not restarted here: the server is shared with whatever else runs tests beside this.
"""

from bench.tests.runs import bench_database_url, run_script


def test_chaos_run_keeps_every_invariant_while_workers_die_and_deliveries_drop(tmp_path):
    url = bench_database_url(tmp_path, "chaos")
    done, figures = run_script(
        "chaos.py",
        tmp_path,
        *("--database-url", url, "--orders", "40", "--round-size", "10", "--kills", "2", "--seed", "7"),
        *("--drop-first", "2", "--drop-rate", "0.1", "--no-db-restart", "--settle-timeout", "10"),
        *("--worker-kills", "2", "--lease", "2"),
        exit_codes=(0, 1),
    )
    checks = figures["checks"]
    assert len(checks) == 8
    # Every invariant, the one fulfillment signal per order included (a signal a killed worker owed is
    # sent by a worker's sweep or by reconcile_orders, and counted only if the receiver's transaction
    # committed), the queue drained, nothing claimed past its lease, no event's work committed twice.
    assert all(problems == [] for problems in checks.values()), checks
    assert done.returncode == 0, done.stdout
    assert figures["signals_owed"] is not None
    assert figures["kills"] == 2
    assert figures["worker_kills"] == 2
    assert figures["db_restart"] == "skipped (--no-db-restart)"
    # Dropped deliveries are never sent: only the recovery command can have stored those events.
    assert figures["deliveries"].get("dropped", 0) >= 2
    assert figures["recovered"] >= 2
    assert figures["transition_sources"].get("replay", 0) >= 1
