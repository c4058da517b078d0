from django.apps import AppConfig


class DlqConfig(AppConfig):
    name = "dlq"
    verbose_name = "Dead letters"

    def ready(self) -> None:
        from dlq.services import dead_letter_create
        from hub.models import Delivery
        from hub.pipeline.signals import delivery_dead_lettered

        # Inside the outcome's transaction: the letter commits with the delivery's dead status.
        delivery_dead_lettered.connect(dead_letter_create, sender=Delivery, dispatch_uid="dlq-create")
