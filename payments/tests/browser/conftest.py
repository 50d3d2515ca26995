"""Fixtures for the browser tests: headless Debian Chromium driven by Playwright, the project served by
pytest-django's live server, and the Stripe emulator delivering webhooks to it.

Without Chromium these tests are skipped with the reason; with CI=true a missing Chromium fails them.
"""

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from orders.models import Order, Product
from payments.tests.conftest import emulator_worker_env

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000
STAFF_USERNAME = "staff"
STAFF_PASSWORD = "a-long-browser-test-password"
PRODUCT_SKU = "premium_product_demo"


def chromium_path() -> str | None:
    """Return the Chromium to drive (CHROMIUM_PATH, else Debian's), or None when there is none."""
    configured = os.environ.get("CHROMIUM_PATH", "").strip()
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


NO_BROWSER_REASON = (
    "browser tests skipped: no Chromium found (CHROMIUM_PATH, /usr/bin/chromium, `chromium` on PATH); "
    "install it with `apt-get install chromium`"
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if chromium_path() is None and not in_ci():
        terminalreporter.write_line(NO_BROWSER_REASON, yellow=True)


@pytest.fixture(scope="package")
def browser():
    """Launch headless Chromium once for the browser tests."""
    executable = chromium_path()
    if executable is None:
        if in_ci():
            pytest.fail(f"CI=true, so the browser tests must run, but {NO_BROWSER_REASON.split(': ', 1)[1]}")
        pytest.skip(NO_BROWSER_REASON)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread while it is started, so Django
    # would refuse every ORM call the tests make ("SynchronousOnlyOperation"). The calls really are
    # synchronous, so allow them, for as long as Playwright runs and no longer.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, request):
    """Return a page in a fresh browser context (no cookies shared between tests)."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    # The failure hook below saves every page of this context.
    request.node.browser_context = context
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shop(transactional_db, live_server, emulator, worker) -> str:
    """Serve the shop with a product synced to the emulator, aim the emulator's webhooks at it, and run
    a real worker to process them (some handlers, the refunds' among them, ask Stripe)."""
    worker(**emulator_worker_env(emulator))
    # The live server's tests flush the database afterwards, seeded catalog included: make sure it is there.
    Product.objects.get_or_create(
        sku=PRODUCT_SKU,
        defaults={"name": "Premium plan", "unit_amount": 4999, "currency": "usd"},
    )
    # The emulator forgot the previous test's products; forget their ids so the sync creates them again.
    Product.objects.update(stripe_product_id=None, stripe_price_id=None)
    call_command("sync_catalog", verbosity=0)
    emulator.configure(webhook_url=f"{live_server.url}/stripe-webhook")
    return live_server.url


@pytest.fixture
def staff_user(transactional_db):
    """Return a staff superuser who can log in to the admin."""
    return get_user_model().objects.create_superuser(
        username=STAFF_USERNAME, email="staff@example.com", password=STAFF_PASSWORD
    )


def only_order() -> Order:
    """Return the one order in the database, failing if there is not exactly one."""
    orders = list(Order.objects.all())
    assert len(orders) == 1, f"expected one order, found {len(orders)}"
    return orders[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """Keep a screenshot and the HTML of every open page when a browser test fails."""
    report = yield
    context = getattr(item, "browser_context", None)
    if report.failed and context is not None and call.when in ("setup", "call"):
        folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", item.nodeid)
        folder.mkdir(parents=True, exist_ok=True)
        for number, open_page in enumerate(context.pages, start=1):
            try:
                open_page.screenshot(path=str(folder / f"page-{number}.png"), full_page=True)
                (folder / f"page-{number}.html").write_text(open_page.content())
                (folder / f"page-{number}.url").write_text(open_page.url + "\n")
            except Exception as exc:  # A crashed page must not hide the test's own failure.
                (folder / f"page-{number}.error").write_text(f"{type(exc).__name__}: {exc}\n")
        report.sections.append(("browser artifacts", f"screenshots and HTML saved in {folder}"))
    return report


@pytest.fixture
def buy(page, shop):
    """Return a function that orders a quantity of the product and lands on the emulator's pay page."""

    def buy(quantity: int = 1) -> None:
        page.goto(f"{shop}/")
        form = page.locator(f"#buy-{PRODUCT_SKU}")
        form.locator("input[name=quantity]").fill(str(quantity))
        page.click(f"#pay-{PRODUCT_SKU}")
        page.wait_for_url(re.compile(r"/pay/cs_"))

    return buy


@pytest.fixture
def admin_login(page, shop, staff_user):
    """Return a function that logs the staff user in to the admin through its login form."""

    def admin_login() -> None:
        page.goto(f"{shop}/admin/login/?next=/admin/")
        page.fill("#id_username", STAFF_USERNAME)
        page.fill("#id_password", STAFF_PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{shop}/admin/")

    return admin_login
