"""Admin for the catalog: a price saved here is the price Stripe charges, or it is not saved at all.

It lives in payments, not orders, because saving a price calls Stripe (payments/services/catalog.py).
"""

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from orders.models import Product
from orders.money import money_format
from payments.catalog import product_price_archive, product_price_create
from payments.exceptions import PaymentProviderError

PRICE_FIELDS = ("unit_amount", "currency")


class ProductAdminForm(forms.ModelForm):
    """Create the new Stripe price while validating, so a Stripe that fails leaves the price unsaved."""

    class Meta:
        model = Product
        fields = ("sku", "name", "description", "unit_amount", "currency", "active")

    new_price_id: str | None = None

    def clean(self) -> dict:
        cleaned = super().clean()
        product = self.instance
        changed = any(name in self.changed_data for name in PRICE_FIELDS)
        if self.errors or product.pk is None or not changed or not product.stripe_price_id:
            # A new product, or one never synced, gets its Stripe price from `sync_catalog`.
            return cleaned
        try:
            self.new_price_id = product_price_create(
                product=product, unit_amount=cleaned["unit_amount"], currency=cleaned["currency"]
            )
        except PaymentProviderError as exc:
            raise forms.ValidationError(
                "The price was not changed: Stripe could not create the new price (%(error)s). "
                "The product keeps its old price; try again when Stripe answers.",
                code="stripe_unavailable",
                params={"error": exc},
            ) from exc
        return cleaned


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductAdminForm
    list_display = ("sku", "name", "price", "active", "stripe_price_id", "updated_at")
    list_filter = ("active", "currency")
    search_fields = ("sku", "name", "stripe_price_id", "stripe_product_id")
    prepopulated_fields = {"sku": ("name",)}
    readonly_fields = ("stripe_product_id", "stripe_price_id", "created_at", "updated_at")

    @admin.display(description="Price", ordering="unit_amount")
    def price(self, product: Product) -> str:
        return money_format(product.unit_amount, product.currency)

    def save_model(self, request: HttpRequest, obj: Product, form: ProductAdminForm, change: bool) -> None:
        old_price_id = obj.stripe_price_id
        if form.new_price_id:
            obj.stripe_price_id = form.new_price_id
        super().save_model(request, obj, form, change)
        if not form.new_price_id or not old_price_id:
            return
        try:
            product_price_archive(product=obj, price_id=old_price_id)
        except PaymentProviderError as exc:
            self.message_user(
                request,
                f"{obj.sku} now sells at {money_format(obj.unit_amount, obj.currency)} (Stripe price "
                f"{obj.stripe_price_id}), but the old price {old_price_id} could not be archived: {exc}. "
                "Archive it in Stripe's Dashboard.",
                messages.WARNING,
            )
            return
        self.message_user(
            request,
            f"{obj.sku} now sells at {money_format(obj.unit_amount, obj.currency)}: Stripe price "
            f"{obj.stripe_price_id} created, {old_price_id} archived.",
        )
