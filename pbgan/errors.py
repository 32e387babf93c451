"""The one error type users see: a message that names the bad input and the fix."""


class PbganError(Exception):
    """A user-facing error: the entry points print its message and exit non-zero."""


class ConfigError(PbganError):
    """A config option holds a value the framework cannot use."""
