"""Check the order book against Stripe and print every disagreement; exit 1 when there is any."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from payments.exceptions import PaymentProviderError, PaymentProviderNotConfigured
from payments.management.arguments import age_parse, since_parse
from payments.services import audit
from payments.services.audit_findings import Finding

PROGRESS_EVERY = 100
COLUMNS = ("order", "status", "Stripe", "disagreement", "detail")


class _Unended:
    """A command's output stream without its automatic newline, for tqdm's carriage-return redraws."""

    def __init__(self, wrapper):
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        # Unstyled: Django paints a command's stderr as errors, and progress is not one.
        self._wrapper.write(text, style_func=str, ending="")

    def flush(self) -> None:
        self._wrapper.flush()


class Command(BaseCommand):
    help = (
        "Retrieve the Checkout Session of every order created in a window and report where the order and "
        "Stripe's money disagree: a paid session whose order is not fulfilled, a fulfilled order whose "
        "session is not paid, a closed order whose session is still open, amounts that differ, a session "
        "Stripe no longer knows; and, for a paid session, refunds and disputes Stripe holds that the order "
        "does not (or holds with another status), and a refunded amount or refunded state that differs from "
        "Stripe's succeeded refunds plus lost disputes. One Stripe call per order, three per paid order "
        "(its session, its refunds, its disputes). Exits with status 1 when it finds any, so cron can "
        "alert. --fix makes the safe repairs (see payments/services/audit.py)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", default="3d", help="Orders created since this age (1d) or ISO time (default 3d)."
        )
        parser.add_argument(
            "--older-than",
            default="5m",
            metavar="AGE",
            help="Leave out orders younger than this, whose webhooks may still be on their way (default 5m).",
        )
        parser.add_argument(
            "--fix",
            action="store_true",
            help="Apply paid sessions, refund late payments, expire the open sessions of closed orders, "
            "close stranded orders whose session can no longer be paid anywhere, record the refunds and "
            "disputes Stripe holds as the webhooks would, and recompute the refunded amount.",
        )
        parser.add_argument(
            "--max-rate",
            type=float,
            default=audit.DEFAULT_MAX_RATE,
            metavar="N",
            help=f"At most N Stripe calls a second, the repairs' included (default "
            f"{audit.DEFAULT_MAX_RATE:g}; Stripe allows 25 in test mode, 100 live).",
        )

    def handle(self, *args: str, **options: object) -> None:
        since = since_parse(str(options["since"]), option="--since")
        older_than = age_parse(str(options["older_than"]), option="--older-than")
        max_rate = float(options["max_rate"])
        if max_rate <= 0:
            raise CommandError("--max-rate must be a positive number of calls a second.")
        verbosity = int(options["verbosity"])
        now = timezone.now()
        total = audit.orders_in_window(since=since, until=now - older_than).count()
        results = audit.orders_audit(
            since=since, older_than=older_than, fix=options["fix"], max_rate=max_rate, now=now
        )

        disagreeing, seen = [], 0
        try:
            for result in self._progress(results, total=total, verbosity=verbosity):
                seen += 1
                if result.findings:
                    disagreeing.append(result)
        except PaymentProviderNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        except PaymentProviderError as exc:
            raise CommandError(f"{exc} {seen} order(s) audited before that; run it again.") from exc

        findings = [finding for result in disagreeing for finding in result.findings]
        if findings:
            self._table(disagreeing)
        fixed = sum(finding.fixed for finding in findings)
        summary = (
            f"Audited {seen} order(s) created since {since:%Y-%m-%d %H:%M}Z: "
            f"{len(findings)} disagreement(s)" + (f", {fixed} fixed" if options["fix"] else "") + "."
        )
        if not findings:
            if verbosity >= 1:
                self.stdout.write(self.style.SUCCESS(summary))
            return
        self.stdout.write(summary)
        # Exit 1 even when everything was fixed: something upstream (webhooks, an operator) let it drift.
        raise CommandError(
            f"{len(disagreeing)} order(s) disagree with Stripe "
            f"({len(findings)} disagreement(s), {fixed} fixed)."
        )

    def _progress(self, results, *, total: int, verbosity: int):
        if verbosity < 1:
            yield from results
        elif self.stderr.isatty():
            yield from tqdm(results, total=total, unit="order", file=_Unended(self.stderr), desc="Auditing")
        else:
            for seen, result in enumerate(results, start=1):
                if seen % PROGRESS_EVERY == 0 or seen == total:
                    self.stderr.write(f"... {seen} of {total} orders audited")
                yield result

    def _table(self, disagreeing: list[audit.AuditedOrder]) -> None:
        rows = [
            (str(r.order_id), r.status, r.stripe_says, finding.kind.value, _detail(finding))
            for r in disagreeing
            for finding in r.findings
        ]
        widths = [max(len(row[i]) for row in (COLUMNS, *rows)) for i in range(len(COLUMNS) - 1)]
        for row in (COLUMNS, *rows):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[-1]]).rstrip())


def _detail(finding: Finding) -> str:
    if not finding.fix:
        return finding.detail
    return f"{finding.detail}; {'fixed' if finding.fixed else 'not fixed'}: {finding.fix}"
