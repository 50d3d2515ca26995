from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments import inbox
from payments.exceptions import PaymentProviderError
from payments.handlers import EventOutcome
from payments.management.cli import Reporter, counted, plural, since_parse, stopped_part_way, storable


class Command(BaseCommand):
    help = (
        "Replay stored Stripe events through the inbox: by id, all failed (--failed), all unfinished "
        "(--unfinished), by type, since a time. --from-stripe takes in events from Stripe's Events API (30 "
        "days) and --file events from an export, through the webhook's own intake: a worker processes "
        "them. Events already processed are no-ops, and order transitions stay exactly-once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "event_ids", nargs="*", type=storable, metavar="EVENT_ID", help="Events to replay (evt_...)."
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
            "--from-stripe", action="store_true", help="Take in the events Stripe's Events API lists."
        )
        parser.add_argument(
            "--undelivered-only",
            action="store_true",
            help="With --from-stripe: only events whose webhook delivery has not succeeded yet.",
        )
        parser.add_argument(
            "--file",
            metavar="PATH",
            help='Take in the events of a JSON file: a list of events or Stripe\'s {"object": "list", '
            '"data": [...]}. The file is trusted as the admin is: its events are not signed.',
        )
        parser.add_argument("--dry-run", action="store_true", help="List what would be done; change nothing.")

    def handle(self, *args: str, **options: Any) -> None:
        self.reporter, self.dry_run = Reporter(self, options["verbosity"]), options["dry_run"]
        event_ids, types = options["event_ids"], options["types"]
        since = since_parse(options["since"], option="--since") if options["since"] else None
        _refuse_contradictions(options, stored=bool(event_ids or options["failed"] or options["unfinished"]))
        if options["from_stripe"]:
            outcomes = inbox.stripe_events_backfill(
                since=since, types=types, undelivered_only=options["undelivered_only"], dry_run=self.dry_run
            )
            return self._report(outcomes, what="event from Stripe", whats="events from Stripe")
        if options["file"]:
            try:
                events = inbox.events_file_load(path=options["file"])
            except inbox.EventFileInvalid as exc:
                raise CommandError(str(exc)) from None
            outcomes = inbox.stripe_events_import(events=events, dry_run=self.dry_run)
            return self._report(outcomes, what="event from the file", whats="events from the file")
        if missing := inbox.stripe_events_missing(stripe_ids=event_ids):
            raise CommandError(
                f"No stored event {', '.join(missing)}. To fetch events Stripe still has, use --from-stripe."
            )
        selected = inbox.stripe_events_selected(
            stripe_ids=event_ids,
            failed=options["failed"],
            unfinished=options["unfinished"],
            types=types,
            since=since,
        )
        outcomes = inbox.stripe_events_replay(events=selected, dry_run=self.dry_run)
        return self._report(outcomes, what="stored event", whats="stored events")

    def _report(self, outcomes: Iterator[EventOutcome], *, what: str, whats: str) -> None:
        """Show each outcome as it comes (at verbosity 2, or in a dry run), then a summary."""
        counts: Counter[str] = Counter()
        try:
            for outcome in self.reporter.progress(outcomes, total=None, unit="event", verb="handled"):
                kind = "error" if outcome.error else "duplicate" if outcome.duplicate else outcome.status
                counts[kind] += 1
                self._show(outcome)
        except (PaymentProviderError, inbox.EventNotStored) as exc:
            done = plural(counts.total(), what, whats)
            raise stopped_part_way(exc, f"{done} handled") from exc
        seen = counts.total()
        verb = "would be replayed" if self.dry_run else "handled"
        summary = f"{plural(seen, what, whats)} {verb}" + (f": {counted(counts)}." if seen else ".")
        if counts["error"]:
            raise CommandError(
                f"{summary} {counts['error']} hit an unexpected error and are stored as failed; see their "
                "last error in the admin, fix the cause, then run: replay_events --failed"
            )
        needs_a_person = any(counts[status] for status in inbox.NEEDS_A_PERSON)
        self.reporter.line(summary, style="WARNING" if needs_a_person else "SUCCESS")

    def _show(self, outcome: EventOutcome) -> None:
        event = f"{outcome.stripe_id} {outcome.type}"
        if outcome.error:
            self.stderr.write(self.style.ERROR(f"{event}: {outcome.reason}"))
        elif outcome.status in inbox.NEEDS_A_PERSON and not self.dry_run:
            self.reporter.line(f"{event} {outcome.status}: {outcome.reason}", style="WARNING")
        else:
            state = f"duplicate, already {outcome.status}" if outcome.duplicate else outcome.status
            reason = f" ({outcome.reason})" if outcome.reason else ""
            self.reporter.line(f"{event}: {state}{reason}", level=1 if self.dry_run else 2)


def _refuse_contradictions(options: dict[str, Any], *, stored: bool) -> None:
    """Refuse options that select events in two ways at once, or that do not apply."""
    from_stripe, path = options["from_stripe"], options["file"]
    if from_stripe and path:
        raise CommandError("Use either --from-stripe or --file, not both.")
    if (from_stripe or path) and stored:
        raise CommandError(
            "Event ids, --failed and --unfinished select stored events; drop them with "
            f"{'--from-stripe' if from_stripe else '--file'}."
        )
    if options["undelivered_only"] and not from_stripe:
        raise CommandError("--undelivered-only only applies with --from-stripe.")
    if path and (options["types"] or options["since"]):
        raise CommandError("--type and --since do not apply to --file: the file's events are all taken in.")
    if not (from_stripe or path or stored or options["types"] or options["since"]):
        raise CommandError(
            "Say which stored events to replay: event ids, --failed, --unfinished, --type or --since "
            "(or use --from-stripe / --file to take in events from elsewhere)."
        )
