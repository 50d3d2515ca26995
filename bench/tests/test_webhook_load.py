"""Scaled-down runs of bench/webhook_load.py: the invariants it checks, not its speed."""

from bench.tests.runs import bench_database_url, run_script


def test_webhook_load_fulfills_and_signals_every_order_exactly_once(tmp_path):
    url = bench_database_url(tmp_path, "webhook_load")
    done, figures = run_script(
        "webhook_load.py", tmp_path, "--database-url", url, "-n", "120", "-c", "4", "--web-workers", "2"
    )
    assert figures["problems"] == {"webhook": [], "end_to_end": [], "reference": [], "reference_mirror": []}
    assert figures["webhook_statuses"] == {"200": 240}  # the acknowledgements' events and the end to end's
    assert figures["reference_errors"] == 0
    # The mirror sends what Django sends: the same statement, the same parameters.
    assert figures["mirror_differences"] == []
    assert "warning: the mirror reference no longer matches" not in done.stdout


def test_burst_answers_every_event_and_signals_each_order_once(tmp_path):
    url = bench_database_url(tmp_path, "webhook_burst")
    _, figures = run_script("webhook_load.py", tmp_path, "--database-url", url, "--burst", "200", "-c", "8")
    assert figures["problems"] == {"burst": [], "signals": []}
    assert figures["burst_statuses"] == {"200": 200}
    assert figures["burst_not_2xx"] == 0
    assert figures["burst_peak_depth"] >= 0
