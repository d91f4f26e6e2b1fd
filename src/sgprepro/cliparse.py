"""The argument parser of the project's plain (non-Hydra) commands: bad arguments get one line,
``error: <what> (<prog> --help lists the options)``, and exit status 2, not argparse's usage block
followed by the message."""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line on stderr (status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} ({self.prog} --help lists the options)\n")


__all__ = ["OneLineParser"]
