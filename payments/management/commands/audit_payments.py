from collections.abc import Iterable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from payments import audit
from payments.exceptions import PaymentProviderError
from payments.management.cli import Reporter, age_parse, plural, since_parse, stopped_part_way


def audit_report(
    reporter: Reporter, results: Iterable[audit.AuditedOrder], *, total: int, what: str
) -> tuple[int, int, int]:
    """Show the audit's progress and its table of disagreements; return (orders, findings, fixed)."""
    rows, seen, fixed = [], 0, 0
    try:
        for result in reporter.progress(results, total=total, unit="order", verb=what):
            seen += 1
            for finding in result.findings:
                fixed += finding.fixed
                rows.append(
                    (str(result.order_id), result.status, result.stripe_says, finding.kind, _detail(finding))
                )
    except PaymentProviderError as exc:
        raise stopped_part_way(exc, f"{plural(seen, 'order')} {what}") from exc
    reporter.table(("order", "status", "Stripe", "disagreement", "detail"), rows)
    return seen, len(rows), fixed


def _detail(finding: audit.Finding) -> str:
    if not finding.fix:
        return finding.detail
    return f"{finding.detail}; {'fixed' if finding.fixed else 'not fixed'}: {finding.fix}"


class Command(BaseCommand):
    help = (
        "Retrieve the Checkout Session of every order created in a window and report where the order and "
        "Stripe's money disagree (payments applied or not, sessions open or expired, amounts, refunds and "
        "disputes). One Stripe call per order, three per paid order. Exits 1 when it finds any, so cron "
        "can alert; --fix makes the safe repairs (see payments/audit.py)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            default="3d",
            help="Orders created since this long ago (3d, the default; 12h) or since an ISO time.",
        )
        parser.add_argument(
            "--older-than",
            default="5m",
            metavar="AGE",
            help="Leave out orders younger than this, whose webhooks may still be on their way (default 5m).",
        )
        parser.add_argument(
            "--fix", action="store_true", help="Make the safe repairs (see payments/audit.py)."
        )
        parser.add_argument(
            "--max-rate",
            type=float,
            default=audit.DEFAULT_MAX_RATE,
            metavar="N",
            help=f"At most N Stripe calls a second, repairs included (default {audit.DEFAULT_MAX_RATE:g}; "
            "Stripe allows 25 in test mode, 100 live).",
        )

    def handle(self, *args: str, fix: bool, max_rate: float, **options: Any) -> None:
        since = since_parse(options["since"], option="--since")
        older_than = age_parse(options["older_than"], option="--older-than")
        if max_rate <= 0:
            raise CommandError("--max-rate must be a positive number of calls a second.")
        reporter, now = Reporter(self, options["verbosity"]), timezone.now()
        results = audit.orders_audit(since=since, older_than=older_than, fix=fix, max_rate=max_rate, now=now)
        total = audit.orders_to_audit(since=since, until=now - older_than).count()
        seen, found, fixed = audit_report(reporter, results, total=total, what="audited")
        summary = (
            f"Audited {plural(seen, 'order')} created since {since:%Y-%m-%d %H:%M}Z: "
            f"{plural(found, 'disagreement')}" + (f", {fixed} fixed" if fix else "") + "."
        )
        if not found:
            reporter.line(summary, style="SUCCESS")
            return
        self.stdout.write(summary)
        # Exit 1 even when everything was fixed: something upstream (webhooks, an operator) let it drift.
        raise CommandError(f"{plural(found, 'disagreement')} with Stripe, {fixed} fixed.")
