"""A scaled-down run of bench/webhook_load.py: the invariants it checks, not its speed."""

from bench.tests.runs import bench_database_url, run_script


def test_webhook_load_fulfills_every_order_exactly_once(tmp_path):
    url = bench_database_url(tmp_path, "webhook_load")
    done, figures = run_script(
        "webhook_load.py", tmp_path, "--database-url", url, "-n", "120", "-c", "4", "--workers", "2"
    )
    assert figures["problems"] == {"webhook": [], "reference": [], "reference_mirror": []}
    assert figures["webhook_statuses"] == {"200": 120}
    assert figures["reference_errors"] == 0
    assert "warning: the mirror reference no longer matches" not in done.stdout
