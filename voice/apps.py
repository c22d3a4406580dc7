from django.apps import AppConfig


class VoiceConfig(AppConfig):
    name = "voice"
    verbose_name = "Assistants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants.queries import assistants_are_found_by
        from voice.queries import assistant_exists

        assistants_are_found_by(assistant_exists)
