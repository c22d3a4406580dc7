from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from webhooks import tasks
        from webhooks.actions import deliveries_are_queued_by

        # Looked up at each call, so the task module's enqueue_delivery is what runs (tests replace it).
        deliveries_are_queued_by(lambda delivery_id, *, attempt: tasks.enqueue_delivery(delivery_id, attempt=attempt))
