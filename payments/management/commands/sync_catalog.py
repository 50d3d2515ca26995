"""Create the Stripe product and price of every active catalog item that has none; report drift."""

from collections import Counter

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.catalog import ProductSync, SyncAction, catalog_sync
from payments.exceptions import PaymentProviderNotConfigured, PaymentProviderUnavailable
from payments.management.cli import Reporter, plural, stopped_part_way


class Command(BaseCommand):
    help = (
        "Give every active product a Stripe product and price (idempotent), and report prices whose "
        "amount or currency in Stripe drifted from the catalog. Works against Stripe and the emulator alike."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fix",
            action="store_true",
            help="For a drifted price, create a new price at the catalog's amount and point the product at "
            "it. The old price is left in Stripe untouched.",
        )

    def handle(self, *args, fix: bool, verbosity: int, **options) -> None:
        reporter, counts = Reporter(self, verbosity), Counter()
        try:
            for result in catalog_sync(fix=fix):
                counts[result.action] += 1
                self._show(reporter, result)
        except (PaymentProviderNotConfigured, PaymentProviderUnavailable) as exc:
            raise stopped_part_way(exc, f"{plural(counts.total(), 'product')} synced and saved") from exc
        failed, drifted = counts[SyncAction.FAILED], counts[SyncAction.DRIFTED]
        summary = (
            f"{plural(counts.total(), 'active product')}: "
            f"{counts[SyncAction.CREATED] + counts[SyncAction.RECREATED]} created, "
            f"{counts[SyncAction.FIXED]} fixed, {counts[SyncAction.IN_SYNC]} in sync, {drifted} drifted, "
            f"{failed} failed."
        )
        if failed:
            raise CommandError(f"{summary} Stripe refused {failed} of them; see the lines above.")
        reporter.line(summary, style="WARNING" if drifted else "SUCCESS")

    def _show(self, reporter: Reporter, result: ProductSync) -> None:
        line = f"{result.sku}: {result.action}{f' ({result.price_id})' if result.price_id else ''}"
        line += f": {result.detail}" if result.detail else ""
        if result.action == SyncAction.FAILED:
            self.stderr.write(self.style.ERROR(line))
        elif result.action == SyncAction.DRIFTED:
            reporter.line(f"{line}; run with --fix to use a new price", level=0, style="WARNING")
        elif result.action == SyncAction.IN_SYNC:
            reporter.line(line, level=2)
        else:
            reporter.line(line, style="SUCCESS")
