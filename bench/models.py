"""The chaos run's witness of fulfillment signals, a table only the bench settings install."""

from django.db import models


class FulfillmentWitness(models.Model):
    """One row per `order_fulfilled` received, written in the receivers' transaction as a shop's would be."""

    order_id = models.UUIDField(db_index=True)
    source = models.CharField(max_length=16)
    stripe_event_id = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"signal for order {self.order_id} ({self.source}, pid {self.pid})"
