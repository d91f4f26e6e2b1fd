"""Pinned CPU kernels: the same config gives the same bits on any x86-64 machine with AVX2.

PyTorch picks its CPU kernels by the instruction set of the machine it runs on: ATen's
vectorised kernels by ``ATEN_CPU_CAPABILITY``, MKL's BLAS by its own dispatch (``MKL_CBWR``).
Kernels of different vector widths add in different orders, so one config trained on an AVX-512
machine ended with other parameters than on an AVX2 one (the default study's AD-PSGD at 8 nodes:
top-1 70.65 against 70.82; the 48 runs of the study, by up to 0.22 points per cell). Importing
:mod:`sgprepro` pins both to their AVX2 paths, which every x86-64 CPU since 2013 has, before
torch computes anything; a variable the environment already sets is left as it is (e.g.
``ATEN_CPU_CAPABILITY=avx512`` for speed, at the price of other bits). Run records keep the
kernels a run used (``cpu_kernels`` in ``run.json``). Machines of another architecture (aarch64)
have other kernels and give their own bits; GPU kernels are not affected.

This module imports nothing but the standard library: it runs before torch is imported.
"""

from __future__ import annotations

import os
import sys

CPU_KERNEL_PINS: dict[str, str] = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
"""Environment variable -> the value importing sgprepro gives it when the environment has none."""


def pin_cpu_kernels() -> None:
    """Set each of :data:`CPU_KERNEL_PINS` the environment does not set already (read by torch
    and MKL when they first compute, so this must come before torch's first operation)."""
    for name, value in CPU_KERNEL_PINS.items():
        os.environ.setdefault(name, value)


def cpu_kernels() -> dict[str, str]:
    """The CPU kernels of this process, for the run records: ATen's capability in use (empty
    when torch is not loaded) and MKL's code-path setting."""
    torch = sys.modules.get("torch")
    aten = str(torch.backends.cpu.get_cpu_capability()) if torch is not None else ""
    return {"aten": aten, "mkl_cbwr": os.environ.get("MKL_CBWR", "")}
