from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from orders.signals import signals_resend
from payments import audit
from payments.management.cli import Reporter, age_parse, plural
from payments.management.commands.audit_payments import audit_report


class Command(BaseCommand):
    help = (
        "For orders still pending or confirmed after a given age, retrieve their Checkout Sessions from "
        "Stripe and apply what they say (audit_payments --fix on open orders, source: reconcile), then "
        "send the signals owed by a worker that died. Exits 0 unless Stripe cannot be asked."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default="15m",
            metavar="AGE",
            help="Only orders created at least this long ago: 90s, 15m, 2h, 1d... (default 15m).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Say what would change, changing nothing.")

    def handle(self, *args: str, **options: Any) -> None:
        older_than = age_parse(options["older_than"], option="--older-than")
        reporter, now, fix = Reporter(self, options["verbosity"]), timezone.now(), not options["dry_run"]
        results = audit.orders_audit(since=None, older_than=older_than, fix=fix, open_only=True, now=now)
        total = audit.orders_to_audit(since=None, until=now - older_than, open_only=True).count()
        seen, found, fixed = audit_report(reporter, results, total=total, what="checked")
        # A signal is owed by a crash only once the worker that should send it could have: after a lease.
        grace = max(older_than, timedelta(seconds=settings.WORKER_LEASE_SECONDS))
        owed = signals_resend(older_than=grace, dry_run=not fix)
        signals = plural(owed, "owed signal")
        done = f"{fixed} fixed; {signals} sent" if fix else f"none fixed; {signals} would be sent (dry run)"
        reporter.line(
            f"Checked {plural(seen, 'open order')} older than {options['older_than']}: "
            f"{plural(found, 'disagreement')}, {done}.",
            style="WARNING" if found > fixed else "SUCCESS",
        )
