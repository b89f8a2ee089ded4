"""What passes tell the user (`prune: removed 12 channels ...`): collected by the pipeline
for its report, or logged when a pass runs outside one."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

_LOG = logging.getLogger("rknpu.passes")
_NOTES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("notes", default=None)


def note(pass_name: str, message: str) -> None:
    """Report `message` on behalf of pass `pass_name`."""
    text = f"{pass_name}: {message}"
    notes = _NOTES.get()
    if notes is None:
        _LOG.info(text)
    else:
        notes.append(text)


@contextlib.contextmanager
def collecting_notes() -> Iterator[list[str]]:
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)
