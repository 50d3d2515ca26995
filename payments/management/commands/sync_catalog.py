"""Create the Stripe product and price of every active catalog item that has none; report drift."""

from collections import Counter

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.catalog import ProductSync, SyncAction, catalog_sync
from payments.exceptions import PaymentProviderNotConfigured, PaymentProviderUnavailable
from payments.management.cli import plural


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
        counts: Counter[SyncAction] = Counter()
        try:
            for result in catalog_sync(fix=fix):
                counts[result.action] += 1
                self._show(result, verbosity)
        except PaymentProviderNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        except PaymentProviderUnavailable as exc:
            raise CommandError(
                f"{exc} Products synced before that are saved; run the command again."
            ) from exc
        failed, drifted = counts[SyncAction.FAILED], counts[SyncAction.DRIFTED]
        summary = (
            f"{plural(counts.total(), 'active product')}: "
            f"{counts[SyncAction.CREATED] + counts[SyncAction.RECREATED]} created, "
            f"{counts[SyncAction.FIXED]} fixed, {counts[SyncAction.IN_SYNC]} in sync, {drifted} drifted, "
            f"{failed} failed."
        )
        if failed:
            raise CommandError(f"{summary} Stripe refused {failed} of them; see the lines above.")
        if verbosity >= 1:
            self.stdout.write((self.style.WARNING if drifted else self.style.SUCCESS)(summary))

    def _show(self, result: ProductSync, verbosity: int) -> None:
        line = f"{result.sku}: {result.action}"
        if result.price_id:
            line += f" ({result.price_id})"
        if result.detail:
            line += f": {result.detail}"
        if result.action == SyncAction.DRIFTED:
            self.stdout.write(self.style.WARNING(f"{line}; run with --fix to use a new price"))
        elif result.action == SyncAction.FAILED:
            self.stderr.write(self.style.ERROR(line))
        elif result.action == SyncAction.IN_SYNC:
            if verbosity >= 2:
                self.stdout.write(line)
        elif verbosity >= 1:
            self.stdout.write(self.style.SUCCESS(line))
