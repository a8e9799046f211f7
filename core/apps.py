from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Booking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core import signals

        signals.connect()
