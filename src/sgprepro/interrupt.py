"""The exception a stopping signal becomes (no torch import: the CLI handles it before any)."""

from __future__ import annotations

import signal


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
