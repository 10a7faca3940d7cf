"""The one exception type for bad input: the CLI turns it into a one-line message."""


class SpecsrError(ValueError):
    """Bad input or settings, with a message meant for the user (no traceback needed)."""
