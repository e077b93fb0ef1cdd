"""Errors of the ``shared`` package, under one root so callers can catch them all."""


class SharedError(Exception):
    """Base of every error raised by ``shared``."""


class SettingsError(SharedError):
    """The configuration is incomplete or invalid; the message names the variable."""
