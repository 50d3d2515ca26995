"""The endpoint Stripe delivers events to: verify, store, answer at once; a worker processes the row.

2xx means stored (now or before); 503 means not stored, and Stripe delivers it again, for days; 4xx means
not a genuine Stripe event, and nothing is stored. The signed payload is the truth: no Stripe API call here.
`checkout_demo.middleware.StripeWebhookMiddleware` calls this view before any other middleware.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from orders.logs import log_fields
from payments import gateway
from payments.exceptions import WebhookPayloadInvalid, WebhookSignatureInvalid
from payments.http import stripe_source_required
from payments.inbox import EventNotStored, stripe_event_intake

logger = logging.getLogger(__name__)


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
@stripe_source_required
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    limit = settings.STRIPE_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    too_big = f"Payload too large: the limit is {limit} bytes."
    if declared > limit:
        logger.warning("webhook rejected: declared body of %d bytes is over %d", declared, limit)
        return _text(413, too_big)
    try:
        payload = request.body
    except RequestDataTooBig:
        payload = None
    if payload is None or len(payload) > limit:
        logger.warning("webhook rejected: body over %d bytes", limit)
        return _text(413, too_big)

    try:
        event = gateway.webhook_event_verify(
            payload=payload, signature_header=request.META.get("HTTP_STRIPE_SIGNATURE")
        )
    except (WebhookSignatureInvalid, WebhookPayloadInvalid) as exc:
        logger.warning("webhook rejected: %s", exc)
        return _text(400, str(exc))

    try:
        with log_fields(event_id=event["id"], event_type=event["type"]):
            intake = stripe_event_intake(event=event, payload=payload)
    except EventNotStored:
        return _text(503, "Could not store the event right now; deliver it again later.")
    return _text(200, intake.reply)
