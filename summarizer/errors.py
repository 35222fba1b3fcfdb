"""Errors a user can cause and fix: shown as one line, never as a traceback."""


class UserError(Exception):
    """Bad input, a missing file, an unknown name: the message says what and where."""


class DataError(UserError):
    """A data source that is missing or malformed."""


class RegistryError(UserError):
    """A registry file that is missing or malformed, or a model name it does not list."""


class ModelLoadError(UserError):
    """A registry model that cannot be loaded (offline, missing folder, corrupt or unsafe file)."""


def one_line(err: BaseException) -> str:
    """An exception as one short line: what a user sees instead of a traceback."""
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]
