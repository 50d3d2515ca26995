"""Build JSON objects shaped like Stripe's (products, prices, sessions, events...)."""

from __future__ import annotations

import copy
from typing import Any

from .ids import new_id, random_alnum

API_VERSION = "2026-10-28.endive"


def product(
    *,
    name: str,
    description: str | None,
    metadata: dict[str, str],
    active: bool,
    images: list[str],
    created: int,
) -> dict[str, Any]:
    """Build a Product."""
    return {
        "id": new_id("prod_"),
        "object": "product",
        "active": active,
        "attributes": [],
        "created": created,
        "default_price": None,
        "description": description,
        "images": images,
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }


def price(
    *,
    product_id: str,
    currency: str,
    unit_amount: int,
    metadata: dict[str, str],
    active: bool,
    nickname: str | None,
    created: int,
) -> dict[str, Any]:
    """Build a one-time Price."""
    return {
        "id": new_id("price_"),
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": metadata,
        "nickname": nickname,
        "product": product_id,
        "recurring": None,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def line_item(*, price_obj: dict[str, Any], quantity: int, description: str) -> dict[str, Any]:
    """Build a Checkout line item ("item") carrying a snapshot of its price."""
    amount = price_obj["unit_amount"] * quantity
    return {
        "id": new_id("li_"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price_obj["currency"],
        "description": description,
        "price": copy.deepcopy(price_obj),
        "quantity": quantity,
    }


def shipping_rate(
    *,
    display_name: str,
    amount: int,
    currency: str,
    metadata: dict[str, str],
    active: bool,
    tax_behavior: str,
    created: int,
) -> dict[str, Any]:
    """Build a fixed-amount ShippingRate."""
    return {
        "id": new_id("shr_"),
        "object": "shipping_rate",
        "active": active,
        "created": created,
        "delivery_estimate": None,
        "display_name": display_name,
        "fixed_amount": {"amount": amount, "currency": currency},
        "livemode": False,
        "metadata": metadata,
        "tax_behavior": tax_behavior,
        "tax_code": None,
        "type": "fixed_amount",
    }


def coupon(
    *, percent_off: float | None, amount_off: int | None, currency: str | None, created: int
) -> dict[str, Any]:
    """Build a one-off Coupon: a percentage or an amount off."""
    return {
        "id": random_alnum(8).upper(),
        "object": "coupon",
        "amount_off": amount_off,
        "created": created,
        "currency": currency,
        "duration": "once",
        "duration_in_months": None,
        "livemode": False,
        "max_redemptions": None,
        "metadata": {},
        "name": None,
        "percent_off": percent_off,
        "redeem_by": None,
        "times_redeemed": 0,
        "valid": True,
    }


def promotion_code(*, code: str, coupon_id: str, active: bool, created: int) -> dict[str, Any]:
    """Build a PromotionCode: the code a customer types, for a coupon."""
    return {
        "id": new_id("promo_"),
        "object": "promotion_code",
        "active": active,
        "code": code,
        "created": created,
        "customer": None,
        "customer_account": None,
        "expires_at": None,
        "livemode": False,
        "max_redemptions": None,
        "metadata": {},
        "promotion": {"coupon": coupon_id, "type": "coupon"},
        "restrictions": {
            "first_time_transaction": False,
            "minimum_amount": None,
            "minimum_amount_currency": None,
        },
        "times_redeemed": 0,
    }


def address(
    *,
    line1: str | None,
    line2: str | None,
    city: str | None,
    state: str | None,
    postal_code: str | None,
    country: str,
) -> dict[str, Any]:
    """Build an Address."""
    return {
        "city": city,
        "country": country,
        "line1": line1,
        "line2": line2,
        "postal_code": postal_code,
        "state": state,
    }


def list_object(data: list[dict[str, Any]], *, has_more: bool, url: str) -> dict[str, Any]:
    """Build a list envelope."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def checkout_session(
    *,
    currency: str,
    amount_total: int,
    success_url: str,
    cancel_url: str | None,
    client_reference_id: str | None,
    customer_email: str | None,
    metadata: dict[str, str],
    expires_at: int,
    locale: str | None,
    submit_type: str | None,
    created: int,
    base_url: str,
) -> dict[str, Any]:
    """Build an open Checkout Session in payment mode."""
    session_id = new_id("cs_test_")
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": None,
        "customer_creation": "if_required",
        "customer_details": None,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at,
        "invoice": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "livemode": False,
        "locale": locale,
        "metadata": metadata,
        "mode": "payment",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": "unpaid" if amount_total > 0 else "no_payment_required",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": submit_type,
        "subscription": None,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": f"{base_url}/pay/{session_id}",
        "wallet_options": None,
    }


def customer_details(*, email: str | None, name: str | None) -> dict[str, Any]:
    """Build the customer_details a session gets once the customer paid."""
    return {
        "address": {
            "city": None,
            "country": "US",
            "line1": None,
            "line2": None,
            "postal_code": "10001",
            "state": None,
        },
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": name,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def payment_intent(
    *,
    amount: int,
    currency: str,
    status: str,
    method_type: str,
    metadata: dict[str, str],
    description: str | None,
    receipt_email: str | None,
    created: int,
) -> dict[str, Any]:
    """Build a PaymentIntent as Checkout leaves it after the customer paid."""
    intent_id = new_id("pi_")
    succeeded = status == "succeeded"
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": amount if succeeded else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{intent_id}_secret_{random_alnum(25)}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        # Set by charges.record_charge once the payment succeeds.
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": new_id("pm_"),
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": [method_type],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def _payment_method_details(method_type: str) -> dict[str, Any]:
    if method_type == "us_bank_account":
        return {
            "type": "us_bank_account",
            "us_bank_account": {
                "account_holder_type": "individual",
                "account_type": "checking",
                "bank_name": "STRIPE TEST BANK",
                "fingerprint": random_alnum(16),
                "last4": "6789",
                "routing_number": "110000000",
            },
        }
    return {
        "type": "card",
        "card": {
            "brand": "visa",
            "checks": {"address_line1_check": None, "address_postal_code_check": "pass", "cvc_check": "pass"},
            "country": "US",
            "exp_month": 12,
            "exp_year": 2034,
            "fingerprint": random_alnum(16),
            "funding": "credit",
            "last4": "4242",
            "network": "visa",
            "three_d_secure": None,
            "wallet": None,
        },
    }


def charge(*, intent: dict[str, Any], email: str | None, name: str | None, created: int) -> dict[str, Any]:
    """Build the succeeded Charge of a PaymentIntent; it carries the intent's metadata."""
    method_type = intent["payment_method_types"][0]
    return {
        "id": new_id("ch_"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"],
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_id("txn_"),
        "billing_details": {
            "address": customer_details(email=None, name=None)["address"],
            "email": email,
            "name": name,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "STRIPE EMULATOR",
        "captured": True,
        "created": created,
        "currency": intent["currency"],
        "customer": None,
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": copy.deepcopy(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 20,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "payment_method_details": _payment_method_details(method_type),
        "radar_options": {},
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "review": None,
        "shipping": copy.deepcopy(intent["shipping"]),
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(
    *,
    charge_obj: dict[str, Any],
    amount: int,
    reason: str | None,
    metadata: dict[str, str],
    status: str,
    created: int,
) -> dict[str, Any]:
    """Build a Refund of a charge (failure_reason is added only if it fails, as on Stripe)."""
    if charge_obj["payment_method_details"]["type"] == "card":
        destination: dict[str, Any] = {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        }
    else:
        destination = {
            "type": "us_bank_transfer",
            "us_bank_transfer": {"reference": None, "reference_status": "pending"},
        }
    return {
        "id": new_id("re_"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn_"),
        "charge": charge_obj["id"],
        "created": created,
        "currency": charge_obj["currency"],
        "destination_details": destination,
        "metadata": metadata,
        "payment_intent": charge_obj["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


DISPUTE_EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)


def dispute(
    *, charge_obj: dict[str, Any], amount: int, reason: str, status: str, due_by: int, created: int
) -> dict[str, Any]:
    """Build a Dispute of a charge; it names the charge and the PaymentIntent, not their metadata."""
    inquiry = status.startswith("warning_")
    return {
        "id": new_id("dp_"),
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge_obj["id"],
        "created": created,
        "currency": charge_obj["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {name: None for name in DISPUTE_EVIDENCE_FIELDS},
        "evidence_details": {
            "due_by": due_by,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": inquiry,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge_obj["payment_intent"],
        "payment_method_details": {
            "card": {
                "brand": "visa",
                "case_type": "inquiry" if inquiry else "chargeback",
                "network_reason_code": "10.4" if reason == "fraudulent" else "13.1",
            },
            "type": "card",
        },
        "reason": reason,
        "status": status,
    }


def event(
    *,
    type: str,
    data_object: dict[str, Any],
    request_id: str | None,
    idempotency_key: str | None,
    created: int,
) -> dict[str, Any]:
    """Build an Event holding a snapshot of `data_object` (pending_webhooks set later)."""
    return {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": copy.deepcopy(data_object)},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type,
    }
