"""Errors of the sender, under one root."""


class SenderError(Exception):
    """Base of every error raised by the sender."""


class LookupUnavailable(SenderError):
    """The database did not answer a message lookup: send nothing blindly, retry later."""
