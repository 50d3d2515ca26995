"""Refund an order through Stripe, or send again a refund request Stripe never answered."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.exceptions import OrderNotFound, RefundNotFound, RefundRefused
from orders.models import RefundReason, RefundRequester
from orders.money import money_format
from orders.refunds import refund_amount_parse
from orders.selectors import order_get
from payments.exceptions import PaymentProviderError
from payments.management.arguments import storable
from payments.services.refunds import RefundOutcome, order_refund, refund_get, refund_request_send


class Command(BaseCommand):
    help = (
        "Refund an order through Stripe: everything left to refund, or --amount. The refund is recorded "
        "first and sent with an idempotency key of its own, so running this again never refunds twice "
        "by accident; an amount above what is left is refused before Stripe is asked."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("order_id", type=storable, metavar="ORDER_ID", help="The order to refund.")
        parser.add_argument(
            "--amount",
            help="How much: minor units (1250 is 12.50 USD) or a decimal with a point (12.50). "
            "Default: everything left to refund.",
        )
        parser.add_argument(
            "--reason", choices=RefundReason.values, default="", help="Stripe's reason for the refund."
        )
        parser.add_argument(
            "--retry",
            metavar="REFUND_ID",
            help="Send again this order's refund request that Stripe did not answer (same idempotency key).",
        )

    def handle(self, *args: str, **options: object) -> None:
        self.verbosity = int(options["verbosity"])
        order_id = str(options["order_id"])
        try:
            if options["retry"]:
                outcome = self._retry(order_id, str(options["retry"]))
            else:
                outcome = self._refund(order_id, options["amount"], str(options["reason"]))
        except (OrderNotFound, RefundNotFound, RefundRefused, PaymentProviderError) as exc:
            raise CommandError(str(exc)) from exc
        if not outcome.ok:
            raise CommandError(outcome.message)
        self.stdout.write(self.style.SUCCESS(outcome.message))

    def _refund(self, order_id: str, amount_text: object, reason: str) -> RefundOutcome:
        amount = None
        if amount_text is not None:
            currency = order_get(order_id=order_id).currency
            amount, decimal = refund_amount_parse(str(amount_text), currency=currency)
            unit = "a decimal" if decimal else "minor units"
            if self.verbosity >= 1:
                self.stdout.write(f"--amount {amount_text} read as {unit}: {amount} minor units.")
        outcome = order_refund(
            order_id=order_id, amount=amount, reason=reason, requested_by=RefundRequester.COMMAND
        )
        refund = outcome.refund
        if self.verbosity >= 1:
            amount = money_format(refund.amount, refund.currency)
            self.stdout.write(f"Order {refund.order_id}: refund request {refund.pk} of {amount}.")
        return outcome

    def _retry(self, order_id: str, refund_id: str) -> RefundOutcome:
        refund = refund_get(refund_id=refund_id)
        if str(refund.order_id) != order_id:
            raise CommandError(
                f"Refund request {refund_id} belongs to order {refund.order_id}, not {order_id}."
            )
        return refund_request_send(refund_id=refund.pk)
