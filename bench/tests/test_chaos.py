"""A scaled-down run of bench/chaos.py: real payments, killed workers, drops; every invariant holds."""

from bench.tests.runs import bench_database_url, run_script


def test_chaos_run_keeps_every_invariant_while_workers_die_and_deliveries_drop(tmp_path):
    url = bench_database_url(tmp_path, "chaos")
    _, figures = run_script(
        "chaos.py",
        tmp_path,
        *("--database-url", url, "--orders", "40", "--round-size", "10", "--kills", "2", "--seed", "7"),
        *("--drop-first", "2", "--drop-rate", "0.1", "--no-db-restart", "--settle-timeout", "10"),
    )
    assert all(problems == [] for problems in figures["checks"].values()), figures["checks"]
    assert len(figures["checks"]) == 5
    assert figures["kills"] == 2
    assert figures["db_restart"] == "skipped (--no-db-restart)"
    # Dropped deliveries are never sent: only the recovery command can have stored those events.
    assert figures["deliveries"].get("dropped", 0) >= 2
    assert figures["recovered"] >= 2
    assert figures["transition_sources"].get("replay", 0) >= 1
