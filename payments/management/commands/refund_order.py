import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.exceptions import OrderNotFound, RefundNotFound, RefundRefused
from orders.models import Order, RefundReason, RefundRequester
from orders.money import AmountInvalid, money_format, money_parse
from orders.refunds import order_refund_amount_check
from orders.selectors import order_get_by_reference
from payments.exceptions import PaymentProviderError
from payments.management.cli import storable
from payments.refunds import RefundOutcome, order_refund, refund_get, refund_request_send


class Command(BaseCommand):
    help = (
        "Refund an order through Stripe: everything left to refund, or --amount. The refund is recorded "
        "first and sent with an idempotency key of its own, so running this again never refunds twice by "
        "accident; an amount above what is left is refused before Stripe is asked. On a terminal it says "
        "what it will do and asks first, unless --yes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "order", type=storable, metavar="ORDER", help="The order: its id or its 8-character reference."
        )
        parser.add_argument(
            "--amount",
            help="How much, in the order's currency's own unit: 12.50 USD, 12 for 12.00 USD, 500 JPY. "
            "Default: everything left to refund.",
        )
        parser.add_argument("--reason", choices=RefundReason.values, default="", help="Stripe's reason.")
        parser.add_argument(
            "--retry",
            metavar="REFUND_ID",
            type=storable,
            help="Send again this order's refund request that Stripe did not answer (same idempotency key).",
        )
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation on a terminal.")

    def handle(self, *args: str, **options: Any) -> None:
        try:
            order = order_get_by_reference(reference=options["order"])
            if options["retry"]:
                outcome = self._retry(order, options["retry"])
            else:
                outcome = self._refund(order, options["amount"], options["reason"], options["yes"])
        except (OrderNotFound, RefundNotFound, RefundRefused, AmountInvalid, PaymentProviderError) as exc:
            raise CommandError(str(exc)) from exc
        if not outcome.ok:
            raise CommandError(outcome.message)
        self.stdout.write(self.style.SUCCESS(outcome.message))

    def _refund(self, order: Order, amount_text: str | None, reason: str, yes: bool) -> RefundOutcome:
        amount = None if amount_text is None else money_parse(amount_text, order.currency)
        checked = order_refund_amount_check(
            order_id=order.pk, amount=amount, requested_by=RefundRequester.COMMAND
        )
        if not yes and sys.stdin.isatty():
            total = money_format(order.amount_total, order.currency)
            asked = f"Refund {money_format(checked, order.currency)} of order {order.pk} ({total})? [y/N] "
            if input(asked).strip().lower() not in ("y", "yes"):
                raise CommandError("Nothing was refunded.")
        return order_refund(
            order_id=order.pk, amount=amount, reason=reason, requested_by=RefundRequester.COMMAND
        )

    def _retry(self, order: Order, refund_id: str) -> RefundOutcome:
        refund = refund_get(refund_id=refund_id)
        if refund.order_id != order.pk:
            raise CommandError(
                f"Refund request {refund_id} belongs to order {refund.order_id}, not {order.pk}."
            )
        return refund_request_send(refund_id=refund.pk)
