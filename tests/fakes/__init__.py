"""Fakes of outside services that speak their real wire formats (real sockets, no mocking)."""
