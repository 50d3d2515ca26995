"""Create the Stripe product and price of every active catalog item that has none; report drift."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.catalog import ProductSync, SyncAction, catalog_sync
from payments.exceptions import PaymentProviderNotConfigured, PaymentProviderUnavailable


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
        def show(result: ProductSync) -> None:
            line = f"{result.sku}: {result.action.value}"
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

        try:
            report = catalog_sync(fix=fix, on_result=show)
        except PaymentProviderNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        except PaymentProviderUnavailable as exc:
            raise CommandError(
                f"{exc} Products synced before that are saved; run the command again."
            ) from exc

        count = report.count
        created = count(SyncAction.CREATED) + count(SyncAction.RECREATED)
        summary = (
            f"{len(report.results)} active products: {created} created, {count(SyncAction.FIXED)} fixed, "
            f"{count(SyncAction.IN_SYNC)} in sync, {count(SyncAction.DRIFTED)} drifted, "
            f"{count(SyncAction.FAILED)} failed."
        )
        failed = report.count(SyncAction.FAILED)
        if failed:
            raise CommandError(f"{summary} Stripe refused {failed} of them; see the lines above.")
        if verbosity >= 1:
            style = self.style.WARNING if report.count(SyncAction.DRIFTED) else self.style.SUCCESS
            self.stdout.write(style(summary))
