"""Conversations between visitors and assistants, turn by turn."""
