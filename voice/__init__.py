"""Assistants and the real-time voice pipeline."""
