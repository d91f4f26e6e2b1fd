"""The exception a stopping signal becomes (no torch import: the CLI handles it before any)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class JobInterrupted(BaseException):  # named like KeyboardInterrupt, its sibling
    """SIGTERM or SIGINT reached the job process; every worker has been stopped when it escapes
    :func:`launch_local`. A BaseException, like KeyboardInterrupt, so no ``except Exception`` on the
    way (Hydra's included) swallows it."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.signame = signal.Signals(self.signum).name
        self.error_txt: str | None = None  # why error.txt could not be written, if it could not
        super().__init__(f"interrupted by {self.signame}")

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process ended by that signal."""
        return 128 + self.signum


_held = 0
_pending: int | None = None


def raise_unless_held(signum: int, _frame: object) -> None:
    """A signal handler: raise :class:`JobInterrupted`, or, inside :func:`signals_held`, keep the
    signal for the end of the block."""
    global _pending
    if _held:
        _pending = signum
        return
    raise JobInterrupted(signum)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """A step that must not be cut in half (swapping a folder into place): a signal handled by
    :func:`raise_unless_held` meanwhile raises when the block ends."""
    global _held, _pending
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _pending is not None:  # even if the block raised: never left pending
            signum, _pending = _pending, None
            raise JobInterrupted(signum)
