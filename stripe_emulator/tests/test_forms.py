"""Bracket-notation decoding, checked against what stripe-python encodes."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from stripe._encode import _api_encode

from stripe_emulator import forms
from stripe_emulator.errors import StripeError


def encode_like_stripe(params: dict) -> str:
    return urlencode(list(_api_encode(params))).replace("%5B", "[").replace("%5D", "]")


def test_round_trips_what_stripe_python_sends() -> None:
    params = {
        "mode": "payment",
        "line_items": [
            {"price": "price_1", "quantity": 2},
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 500,
                    "product_data": {"name": "Gift wrap", "metadata": {"a": "b"}},
                },
                "quantity": 1,
            },
        ],
        "metadata": {"order_id": "42"},
        "payment_intent_data": {"metadata": {"order_id": "42"}},
        "expand": ["line_items", "payment_intent"],
        "success_url": "https://x.test/ok?id={CHECKOUT_SESSION_ID}&a=b",
        "flag": True,
    }
    decoded = forms.decode(encode_like_stripe(params))
    assert decoded == {
        "mode": "payment",
        "line_items": [
            {"price": "price_1", "quantity": "2"},
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": "500",
                    "product_data": {"name": "Gift wrap", "metadata": {"a": "b"}},
                },
                "quantity": "1",
            },
        ],
        "metadata": {"order_id": "42"},
        "payment_intent_data": {"metadata": {"order_id": "42"}},
        "expand": ["line_items", "payment_intent"],
        "success_url": "https://x.test/ok?id={CHECKOUT_SESSION_ID}&a=b",
        "flag": "true",
    }


def test_empty_brackets_append() -> None:
    assert forms.decode("expand[]=a&expand[]=b") == {"expand": ["a", "b"]}


def test_indexes_sort_numerically() -> None:
    pairs = "&".join(f"types[{n}]=t{n}" for n in range(12))
    assert forms.decode(pairs)["types"] == [f"t{n}" for n in range(12)]


def test_range_filters_stay_hashes() -> None:
    assert forms.decode("created[gte]=10&created[lt]=20") == {"created": {"gte": "10", "lt": "20"}}


def test_blank_values_are_kept_as_empty_strings() -> None:
    assert forms.decode("metadata[a]=&description=") == {"metadata": {"a": ""}, "description": ""}


@pytest.mark.parametrize("text", ["a=1&a[b]=2", "a[b]=2&a=1", "a]b=1"])
def test_malformed_keys_are_invalid_requests(text: str) -> None:
    with pytest.raises(StripeError) as info:
        forms.decode(text)
    assert info.value.status == 400
