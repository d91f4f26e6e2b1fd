"""Pinned CPU kernels: the same config gives the same bits on x86-64 machines with and without
AVX-512.

PyTorch picks its CPU kernels by the instruction set of the machine it runs on: ATen's
vectorised kernels by ``ATEN_CPU_CAPABILITY``, MKL's BLAS by ``MKL_CBWR``, oneDNN's convolutions
by ``ONEDNN_MAX_CPU_ISA``. Kernels of different vector widths add in different orders, so one
config trained on an AVX-512 machine ended with other parameters than on an AVX2 one (the default
study's AD-PSGD at 8 nodes: top-1 70.65 against 70.82; the 48 runs of the study, by up to 0.22
points per cell). On an x86-64 CPU with AVX2 and FMA, importing :mod:`sgprepro` pins all three to
their AVX2 paths before torch computes anything; a variable the environment already sets is left
as it is (e.g. ``ATEN_CPU_CAPABILITY=avx512`` for speed, at the price of other bits). Other CPUs
(aarch64, x86-64 without AVX2) keep their own kernels and give their own bits; GPU kernels are
not affected. Run records keep what a run used (``cpu_kernels`` in ``run.json``).

Measured: the default study (MLP, 48 runs) and ``beyond_paper`` (20 runs of five algorithms)
gave every top-1 to the last digit on an AVX2 machine and, pinned, on an AVX-512 one.
Convolutions are pinned to the same instruction set, but oneDNN may also tune its blocking to a
machine's caches; that has not been compared across machines.

This module imports nothing but the standard library: it runs before torch is imported.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

CPU_KERNEL_PINS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
"""Environment variable -> the value importing sgprepro gives it when the environment has none
(on an x86-64 CPU with AVX2 and FMA)."""

_PIN: dict[str, bool] = {"applied": False, "torch_loaded_first": False}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags of this machine's CPU (empty where they cannot be read)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    return set(next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split())


def has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this is an x86-64 CPU with AVX2 and FMA (False where that cannot be read)."""
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    return x86 and {"avx2", "fma"} <= cpu_flags(cpuinfo)


def pin_cpu_kernels() -> None:
    """Set each of :data:`CPU_KERNEL_PINS` the environment does not set already, on a CPU that
    has those kernels (torch, MKL and oneDNN read them when they first compute, so this must
    come before torch's first operation)."""
    if not has_avx2():
        return
    _PIN["torch_loaded_first"] = "torch" in sys.modules
    for name, value in CPU_KERNEL_PINS.items():
        os.environ.setdefault(name, value)
    _PIN["applied"] = True


def cpu_kernels() -> dict[str, str | bool]:
    """The CPU kernels of this process, for the run records: ATen's capability as torch reports
    it (empty when torch is not loaded), the MKL and oneDNN settings in the environment, whether
    importing sgprepro pinned them, and whether torch was loaded before it did (then torch may
    have chosen its kernels already)."""
    torch = sys.modules.get("torch")
    aten = str(torch.backends.cpu.get_cpu_capability()) if torch is not None else ""
    return {
        "aten": aten,
        "mkl_cbwr": os.environ.get("MKL_CBWR", ""),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
        "pinned": _PIN["applied"],
        "torch_loaded_first": _PIN["torch_loaded_first"],
    }


def kernels_label(record: object) -> str:
    """A run's ``cpu_kernels`` record as one short label (``aten AVX2, MKL AVX2, oneDNN AVX2``;
    a setting the environment left to the library: ``default``; one the record lacks, as records
    made before it was kept do: ``not recorded``), or "" for a run that recorded none."""
    if not isinstance(record, dict):
        return ""
    parts = [("aten", "aten"), ("MKL", "mkl_cbwr"), ("oneDNN", "onednn_max_cpu_isa")]
    out = []
    for name, key in parts:
        value = record.get(key)
        if value is None or (key == "aten" and not value):  # aten "": torch was not loaded
            out.append(f"{name} not recorded")
        else:
            out.append(f"{name} {value or 'default'}")
    return ", ".join(out)
