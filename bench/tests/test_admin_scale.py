"""A scaled-down run of bench/admin_scale.py: every admin page it times answers and finds what it seeks."""

import pytest
from django.db import connection

from bench.tests.runs import bench_database_url, run_script

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="admin_scale.py seeds and measures PostgreSQL only"
)


def test_admin_scale_run_answers_every_page_and_finds_every_searched_row(tmp_path):
    url = bench_database_url(tmp_path, "admin_scale")
    done, figures = run_script("admin_scale.py", tmp_path, "--database-url", url, "--orders", "2000")

    assert figures["problems"] == [], done.stdout
    assert figures["rows"]["orders"] == 2000
    assert figures["rows"]["events"] == 2000
    assert figures["rows"]["transitions"] > 1900
    pages = figures["pages"]
    assert len(pages) == 34
    assert {"needs attention", "admin index (dashboard)"} <= pages.keys()
    assert {page["status"] for page in pages.values()} == {200}
    assert all(page["found"] for page in pages.values())
    assert all(len(page["times_ms"]) == 3 and page["queries"] > 0 for page in pages.values())
