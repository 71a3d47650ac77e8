"""Webhook test helpers."""

from tenants.webhooks.models import WebhookDelivery


def pending(webhook=None):
    deliveries = WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING)
    return list(deliveries.filter(webhook=webhook) if webhook else deliveries)
