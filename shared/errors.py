"""The exception root of the ``shared`` package."""


class SharedError(Exception):
    """Base of every error raised by ``shared``."""


class SettingsError(SharedError):
    """The configuration is incomplete or invalid; the message names the variable."""
