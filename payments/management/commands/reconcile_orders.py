"""Bring open orders in line with their Checkout Sessions, for when webhooks were missed."""

from collections import Counter

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.fulfillment import order_fulfillment_signals_resend, orders_owed_fulfillment_signal
from payments.exceptions import PaymentProviderError, PaymentProviderNotConfigured
from payments.management.arguments import age_parse
from payments.services.reconcile import OrderCheck, ReconcileAction, orders_reconcile

PROGRESS_EVERY = 100
DEFAULT_AGE = "15m"


class Command(BaseCommand):
    help = (
        "For orders still pending or confirmed after a given age, retrieve their Checkout Sessions from "
        "Stripe and apply what they say: paid, fulfill; expired, expire; open, leave (source: reconcile). "
        "Orders that never got a session are left and reported. Then sends the fulfillment signals owed for "
        "orders fulfilled before that age (a process that died between its commit and the signal)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default=DEFAULT_AGE,
            metavar="AGE",
            help=f"Only orders created at least this long ago: 90s, 15m, 2h, 1d... (default {DEFAULT_AGE}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Retrieve the sessions and say what would change, changing nothing.",
        )

    def handle(self, *args: str, **options: object) -> None:
        verbosity = int(options["verbosity"])
        dry_run = bool(options["dry_run"])
        older_than = age_parse(str(options["older_than"]), option="--older-than")

        counts: Counter[str] = Counter()
        seen = 0
        try:
            for check in orders_reconcile(older_than=older_than, dry_run=dry_run):
                seen += 1
                counts[check.action] += 1
                self._show(check, verbosity=verbosity, dry_run=dry_run)
                if verbosity >= 1 and seen % PROGRESS_EVERY == 0:
                    self.stdout.write(f"... {seen} orders checked")
        except PaymentProviderNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        except PaymentProviderError as exc:
            raise CommandError(f"{exc} {seen} order(s) checked before that; run the command again.") from exc

        if dry_run:
            owed = orders_owed_fulfillment_signal(older_than=older_than).count()
            signals = f"{owed} fulfillment signal(s) owed would be sent"
        else:
            signals = (
                f"{order_fulfillment_signals_resend(older_than=older_than)} owed fulfillment signal(s) sent"
            )
        if verbosity >= 1:
            self.stdout.write(signals)
            details = ", ".join(f"{count} {action}" for action, count in sorted(counts.items()))
            summary = f"{seen} open order(s) older than {options['older_than']} checked" + (
                f": {details}." if seen else "."
            )
            style = self.style.WARNING if counts[ReconcileAction.MISMATCH] else self.style.SUCCESS
            self.stdout.write(style(summary))

    def _show(self, check: OrderCheck, *, verbosity: int, dry_run: bool) -> None:
        line = f"order {check.order_id} session {check.session_id or '-'}: {check.action}"
        if check.detail:
            line += f" ({check.detail})"
        if check.action == ReconcileAction.MISMATCH:
            self.stderr.write(self.style.ERROR(line))
        elif check.action == ReconcileAction.SESSION_MISSING and verbosity >= 1:
            self.stdout.write(self.style.WARNING(line))
        elif verbosity >= 2 or (
            verbosity >= 1
            and (dry_run or check.action in (ReconcileAction.FULFILLED, ReconcileAction.EXPIRED))
        ):
            self.stdout.write(line)
