from __future__ import annotations

from django.apps import AppConfig


class AuraConfig(AppConfig):
    """The composition root as an app: its management commands, admin pages and tasks, and the hooks it
    connects between apps that import neither other (``aura.wiring``)."""

    name = "aura"
    verbose_name = "AURA"

    def ready(self) -> None:
        from aura import wiring

        wiring.connect()
