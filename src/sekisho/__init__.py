"""Sekisho: a self-hosted, passwordless authentication server."""

__version__ = "0.1.0"
