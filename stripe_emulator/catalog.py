"""Turn product, price_data and line_items parameters into catalog objects."""

from __future__ import annotations

import time
from typing import Any

from . import objects, validate
from .errors import StripeError
from .store import Store

MAX_LINE_ITEMS = 100
MAX_QUANTITY = 999_999
MAX_AMOUNT = 99_999_999
LINE_ITEM_PARAMS = ("price", "price_data", "quantity")
PRICE_DATA_PARAMS = ("currency", "unit_amount", "product", "product_data")
PRODUCT_DATA_PARAMS = ("name", "description", "metadata", "images")


def required(params: dict[str, Any], key: str, param: str | None = None) -> Any:
    """Return a parameter that must be present and non-empty."""
    if key not in params:
        raise StripeError.missing_param(param or key)
    if params[key] == "":
        raise validate.empty_value(param or key)
    return params[key]


class Catalog:
    """Validate catalog parameters against the store and create what they describe."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def product_spec(self, data: dict[str, Any], prefix: str) -> dict[str, Any]:
        """Validate `product` or `product_data`; return what names or describes it."""
        name_product = validate.child(prefix, "product")
        name_data = validate.child(prefix, "product_data")
        if data.get("product") and data.get("product_data"):
            raise StripeError.invalid(
                "You may only specify one of these parameters: product, product_data.", param=name_product
            )
        if data.get("product"):
            product_id = validate.as_string(data["product"], name_product)
            if self._store.get("products", product_id) is None:
                raise StripeError.no_such("product", product_id, param=name_product, status=400)
            return {"id": product_id}
        if "product_data" not in data:
            raise StripeError.missing_param(name_product)
        product_data = validate.as_hash(data["product_data"], name_data)
        validate.reject_unknown(product_data, PRODUCT_DATA_PARAMS, name_data)
        images = validate.as_array(product_data.get("images", []), f"{name_data}[images]")
        return {
            "name": validate.required_string(product_data, "name", f"{name_data}[name]", max_length=5000),
            "description": validate.optional_string(
                product_data, "description", f"{name_data}[description]", max_length=40000
            ),
            "metadata": validate.metadata(product_data.get("metadata", {}), f"{name_data}[metadata]"),
            "images": [validate.as_string(i, f"{name_data}[images][{n}]") for n, i in enumerate(images)],
        }

    def product_id(self, spec: dict[str, Any], *, active: bool) -> str:
        """Return the product a spec names, creating it if the spec describes one."""
        if "id" in spec:
            return spec["id"]
        product = objects.product(active=active, created=int(time.time()), **spec)
        return self._store.add("products", product)["id"]

    def check_line_items(self, params: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
        """Validate line_items without creating anything; return each one's price spec and quantity.

        A spec holds the existing `price`, or what to create one from; every spec has its `currency`,
        the same for all.
        """
        if "line_items" not in params or params["line_items"] in ("", []):
            raise StripeError.missing_param("line_items")
        raw_items = validate.as_array(params["line_items"], "line_items")
        if len(raw_items) > MAX_LINE_ITEMS:
            raise StripeError.invalid(
                f"Invalid array: line_items can have at most {MAX_LINE_ITEMS} items.", param="line_items"
            )
        # Validate every item before creating inline prices, so errors leave no trace.
        checked = [self._check_line_item(raw, f"line_items[{n}]") for n, raw in enumerate(raw_items)]
        currency = checked[0][0]["currency"]
        for n, (spec, _) in enumerate(checked):
            if spec["currency"] != currency:
                field = "price_data][currency" if "price" not in spec else "price"
                raise StripeError.invalid(
                    f"All line items must use the same currency; line_items[{n}] uses "
                    f"{spec['currency']}, not {currency}.",
                    param=f"line_items[{n}][{field}]",
                )
        return checked

    def line_item_prices(
        self, checked: list[tuple[dict[str, Any], int]]
    ) -> tuple[list[dict[str, Any]], list[int]]:
        """Return the prices (inline ones created now) and quantities of checked line items."""
        prices = [spec["price"] if "price" in spec else self._inline_price(spec) for spec, _ in checked]
        return prices, [quantity for _, quantity in checked]

    def _check_line_item(self, raw: Any, name: str) -> tuple[dict[str, Any], int]:
        """Validate one line item; return its price (or what to build one from) and quantity."""
        item = validate.as_hash(raw, name)
        validate.reject_unknown(item, LINE_ITEM_PARAMS, name)
        if item.get("price") and item.get("price_data"):
            raise StripeError.invalid(
                "You may only specify one of these parameters: price, price_data.", param=f"{name}[price]"
            )
        if not item.get("price") and not item.get("price_data"):
            raise StripeError.invalid(
                f"You must specify either `price` or `price_data` in {name}.",
                param=f"{name}[price]",
                code="parameter_missing",
            )
        spec: dict[str, Any]
        if item.get("price"):
            price_id = validate.as_string(item["price"], f"{name}[price]")
            price = self._store.get("prices", price_id)
            if price is None:
                raise StripeError.no_such("price", price_id, param=f"{name}[price]", status=400)
            if not price["active"]:
                raise StripeError.invalid(
                    "The price specified is inactive. This field only accepts active prices.",
                    param=f"{name}[price]",
                )
            spec = {"price": price, "currency": price["currency"]}
        else:
            data_name = f"{name}[price_data]"
            data = validate.as_hash(item["price_data"], data_name)
            validate.reject_unknown(data, PRICE_DATA_PARAMS, data_name)
            spec = {
                "currency": validate.as_currency(
                    required(data, "currency", f"{data_name}[currency]"), f"{data_name}[currency]"
                ),
                "unit_amount": validate.as_int(
                    required(data, "unit_amount", f"{data_name}[unit_amount]"),
                    f"{data_name}[unit_amount]",
                    minimum=0,
                    maximum=MAX_AMOUNT,
                ),
                "product": self.product_spec(data, data_name),
            }
        if "quantity" not in item:
            raise StripeError.missing_param(f"{name}[quantity]")
        quantity = validate.as_int(item["quantity"], f"{name}[quantity]", minimum=1, maximum=MAX_QUANTITY)
        return spec, quantity

    def _inline_price(self, spec: dict[str, Any]) -> dict[str, Any]:
        # Checkout archives the prices and products it creates from price_data.
        product_id = self.product_id(spec["product"], active=False)
        price = objects.price(
            product_id=product_id,
            currency=spec["currency"],
            unit_amount=spec["unit_amount"],
            metadata={},
            active=False,
            nickname=None,
            created=int(time.time()),
        )
        return self._store.add("prices", price)

    def build_line_items(self, prices: list[dict[str, Any]], quantities: list[int]) -> list[dict[str, Any]]:
        items = []
        for price, quantity in zip(prices, quantities, strict=True):
            product = self._store.get("products", price["product"])
            description = product["name"] if product else ""
            items.append(objects.line_item(price_obj=price, quantity=quantity, description=description))
        return items
