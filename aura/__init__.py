"""AURA: multi-tenant real-time voice assistants."""

from aura.celery import app as celery_app

__all__ = ("celery_app",)
