"""Errors a user can cause and fix: shown as one line, never as a traceback."""

from __future__ import annotations

import os
from pathlib import Path


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


def read_text_file(path: str | os.PathLike) -> str:
    """A file a user named, as UTF-8 text; missing, unreadable or not UTF-8 is a UserError."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
