from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    name = "telephony"
    verbose_name = "Phone"

    def ready(self) -> None:
        from telephony.queries import forget_cached_numbers_of
        from tenants.cache import also_forget_with_organization

        also_forget_with_organization(forget_cached_numbers_of)
