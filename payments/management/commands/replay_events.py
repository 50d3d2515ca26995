"""Run Stripe events through the inbox again: stored ones, ones Stripe still has, or ones in a file."""

from collections import Counter
from collections.abc import Iterator

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.exceptions import PaymentProviderError, PaymentProviderNotConfigured
from payments.inbox import NEEDS_A_PERSON, EventNotStored, EventOutcome
from payments.management.cli import since_parse, storable
from payments.services import replay

PROGRESS_EVERY = 100


class Command(BaseCommand):
    help = (
        "Replay Stripe events through the same inbox the webhook uses. Stored events: by id, all failed "
        "(--failed), all unfinished (--unfinished), by type, since a time. --from-stripe backfills from "
        "Stripe's Events API (30 days); --file imports an export. Events already processed are no-ops "
        "when received again, and order transitions stay exactly-once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "event_ids",
            nargs="*",
            type=storable,
            metavar="EVENT_ID",
            help="Stored events to replay (evt_...).",
        )
        parser.add_argument("--failed", action="store_true", help="Replay every stored event that failed.")
        parser.add_argument(
            "--unfinished",
            action="store_true",
            help="Replay every stored event not finished: failed, or left received by a crash or an outage.",
        )
        parser.add_argument(
            "--type",
            action="append",
            default=[],
            dest="types",
            metavar="TYPE",
            help="Only events of this type (repeat for several), such as checkout.session.completed.",
        )
        parser.add_argument(
            "--since",
            help="Only events received (stored mode) or created (--from-stripe) since then: an ISO 8601 "
            "time such as 2026-11-28T09:00:00Z (UTC unless it says otherwise), or an age such as 1h or 2d.",
        )
        parser.add_argument(
            "--from-stripe",
            action="store_true",
            help="Fetch events from Stripe's Events API, page by page, and receive each one.",
        )
        parser.add_argument(
            "--undelivered-only",
            action="store_true",
            help="With --from-stripe: only events whose webhook delivery has not succeeded yet.",
        )
        parser.add_argument(
            "--file",
            metavar="PATH",
            help='Receive the events in a JSON file: a list of events or Stripe\'s {"object": "list", '
            '"data": [...]}. The file is trusted as the admin is: its events are not signed.',
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be replayed and change nothing."
        )

    def handle(self, *args: str, **options: object) -> None:
        self.verbosity = int(options["verbosity"])
        self.dry_run = bool(options["dry_run"])
        event_ids = list(options["event_ids"])
        types = list(options["types"])
        since = since_parse(str(options["since"]), option="--since") if options["since"] else None
        self._refuse_contradictions(
            options, stored_filters=bool(event_ids or options["failed"] or options["unfinished"])
        )

        if options["from_stripe"]:
            outcomes = replay.stripe_events_backfill(
                since=since,
                types=types,
                undelivered_only=bool(options["undelivered_only"]),
                dry_run=self.dry_run,
            )
            self._report(outcomes, what="event(s) from Stripe")
        elif options["file"]:
            try:
                events = replay.events_file_load(path=str(options["file"]))
            except replay.EventFileInvalid as exc:
                raise CommandError(str(exc)) from None
            self._report(
                replay.stripe_events_import(events=events, dry_run=self.dry_run),
                what="event(s) from the file",
            )
        else:
            missing = replay.stripe_events_missing(stripe_ids=event_ids)
            if missing:
                raise CommandError(
                    f"No stored event {', '.join(missing)}. "
                    "To fetch events Stripe still has, use --from-stripe."
                )
            selected = replay.stripe_events_selected(
                stripe_ids=event_ids,
                failed=bool(options["failed"]),
                unfinished=bool(options["unfinished"]),
                types=types,
                since=since,
            )
            self._report(
                replay.stripe_events_replay(events=selected, dry_run=self.dry_run), what="stored event(s)"
            )

    @staticmethod
    def _refuse_contradictions(options: dict[str, object], *, stored_filters: bool) -> None:
        """Refuse options that select events in two ways at once, or that do not apply."""
        from_stripe, path = options["from_stripe"], options["file"]
        if from_stripe and path:
            raise CommandError("Use either --from-stripe or --file, not both.")
        if (from_stripe or path) and stored_filters:
            raise CommandError(
                "Event ids, --failed and --unfinished select stored events; drop them with "
                f"{'--from-stripe' if from_stripe else '--file'}."
            )
        if options["undelivered_only"] and not from_stripe:
            raise CommandError("--undelivered-only only applies with --from-stripe.")
        if path and (options["types"] or options["since"]):
            raise CommandError(
                "--type and --since do not apply to --file: the file's events are all received."
            )
        if not (from_stripe or path or stored_filters or options["types"] or options["since"]):
            raise CommandError(
                "Say which stored events to replay: event ids, --failed, --unfinished, --type or --since "
                "(or use --from-stripe / --file to receive events from elsewhere)."
            )

    def _report(self, outcomes: Iterator[EventOutcome], *, what: str) -> None:
        """Consume the outcomes, showing each at verbosity 2 (or in a dry run), progress and a summary."""
        counts: Counter[str] = Counter()
        seen = 0
        try:
            for outcome in outcomes:
                seen += 1
                key = "error" if outcome.error else "duplicate" if outcome.duplicate else outcome.status
                counts[key] += 1
                self._show(outcome)
                if self.verbosity >= 1 and seen % PROGRESS_EVERY == 0:
                    self.stdout.write(f"... {seen} done ({self._summary(counts)})")
        except PaymentProviderNotConfigured as exc:
            raise CommandError(str(exc)) from exc
        except PaymentProviderError as exc:
            raise CommandError(f"{exc} {seen} {what} handled before that; run the command again.") from exc
        except EventNotStored as exc:
            raise CommandError(
                f"{exc}. {seen} {what} handled before that; run the command again once the database is back."
            ) from exc

        verb = "would be replayed" if self.dry_run else "handled"
        summary = f"{seen} {what} {verb}" + (f": {self._summary(counts)}." if seen else ".")
        if counts["error"]:
            raise CommandError(
                f"{summary} {counts['error']} hit an unexpected error and are stored as failed; "
                "see their last error in the admin, fix the cause, then run: replay_events --failed"
            )
        if self.verbosity >= 1:
            style = self.style.WARNING if any(counts[s] for s in NEEDS_A_PERSON) else self.style.SUCCESS
            self.stdout.write(style(summary))

    def _show(self, outcome: EventOutcome) -> None:
        if outcome.error:
            self.stderr.write(self.style.ERROR(f"{outcome.stripe_id} {outcome.type}: {outcome.reason}"))
        elif outcome.status in NEEDS_A_PERSON and not self.dry_run and self.verbosity >= 1:
            self.stdout.write(
                self.style.WARNING(f"{outcome.stripe_id} {outcome.type} {outcome.status}: {outcome.reason}")
            )
        elif self.verbosity >= 2 or (self.dry_run and self.verbosity >= 1):
            state = "duplicate, already " + outcome.status if outcome.duplicate else outcome.status
            self.stdout.write(
                f"{outcome.stripe_id} {outcome.type}: {state}"
                + (f" ({outcome.reason})" if outcome.reason else "")
            )

    @staticmethod
    def _summary(counts: Counter[str]) -> str:
        return ", ".join(f"{count} {key}" for key, count in sorted(counts.items()))
