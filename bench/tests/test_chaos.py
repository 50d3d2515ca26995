"""A scaled-down run of bench/chaos.py: real payments, killed workers, drops; the invariants hold."""

from bench.chaos import LOST_TO_KILL, SIGNAL_CHECK
from bench.tests.runs import bench_database_url, run_script


def test_chaos_run_keeps_every_invariant_while_workers_die_and_deliveries_drop(tmp_path):
    url = bench_database_url(tmp_path, "chaos")
    done, figures = run_script(
        "chaos.py",
        tmp_path,
        *("--database-url", url, "--orders", "40", "--round-size", "10", "--kills", "2", "--seed", "7"),
        *("--drop-first", "2", "--drop-rate", "0.1", "--no-db-restart", "--settle-timeout", "10"),
        exit_codes=(0, 1),
    )
    checks = dict(figures["checks"])
    signal_problems = checks.pop(SIGNAL_CHECK)
    assert len(checks) == 5
    assert all(problems == [] for problems in checks.values()), checks
    # The fulfillment signal is sent by Django's on_commit hook: a worker killed after PostgreSQL
    # committed the fulfillment and before the hook ran never sends it (at most once). That is the
    # only way the run may miss one; a second signal, or one missing without such a kill, fails.
    assert all(LOST_TO_KILL in problem for problem in signal_problems), signal_problems
    assert done.returncode == (1 if signal_problems else 0), done.stdout
    assert figures["kills"] == 2
    assert figures["db_restart"] == "skipped (--no-db-restart)"
    # Dropped deliveries are never sent: only the recovery command can have stored those events.
    assert figures["deliveries"].get("dropped", 0) >= 2
    assert figures["recovered"] >= 2
    assert figures["transition_sources"].get("replay", 0) >= 1
