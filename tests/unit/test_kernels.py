"""Importing sgprepro pins torch's CPU kernels to their AVX2 paths, so the same config gives the
same bits on AVX2 and AVX-512 machines; a value the environment sets is kept and recorded."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from sgprepro.kernels import CPU_KERNEL_PINS, cpu_kernels

X86 = platform.machine().lower() in ("x86_64", "amd64")

# a training step's numerics: log-softmax and its backward are where AVX-512 and AVX2 kernels
# give other bits (measured on an AVX-512 machine); the matmuls go through MKL
PROBE = """
import hashlib, json, sys
if sys.argv[1] == "sgprepro":
    import sgprepro  # noqa: F401 - what every entry point of the harness imports first
import torch
torch.manual_seed(0)
x, y = torch.randn(64, 40), torch.randint(0, 10, (64,))
m = torch.nn.Sequential(torch.nn.Linear(40, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
torch.nn.functional.cross_entropy(m(x), y).backward()
g = torch.cat([p.grad.flatten() for p in m.parameters()])
from sgprepro.kernels import cpu_kernels
print(json.dumps({"sha": hashlib.sha256(g.numpy().tobytes()).hexdigest(), **cpu_kernels()}))
"""


def _probe(importing: str, **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in CPU_KERNEL_PINS}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, importing],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not X86, reason="the AVX2 pin is x86-64's; other machines keep their kernels")
def test_importing_sgprepro_pins_the_avx2_kernels_on_any_x86_machine() -> None:
    pinned = _probe("sgprepro")
    assert (pinned["aten"], pinned["mkl_cbwr"]) == ("AVX2", "AVX2")
    # an AVX2-only CPU (MKL capped at AVX2) gives the same bits as this one
    assert _probe("sgprepro", MKL_ENABLE_INSTRUCTIONS="AVX2")["sha"] == pinned["sha"]
    widest = _probe("torch", ATEN_CPU_CAPABILITY="avx512")
    if widest["aten"] == "AVX512":  # this machine has AVX-512: unpinned, its bits are others
        assert widest["sha"] != pinned["sha"]


def test_a_kernel_choice_the_environment_makes_is_kept_and_recorded() -> None:
    chosen = _probe("sgprepro", ATEN_CPU_CAPABILITY="default", MKL_CBWR="COMPATIBLE")
    assert (chosen["aten"], chosen["mkl_cbwr"]) == ("DEFAULT", "COMPATIBLE")


@pytest.mark.skipif(not X86, reason="the AVX2 pin is x86-64's; other machines keep their kernels")
def test_the_test_process_runs_the_pinned_kernels() -> None:
    # conftest imported sgprepro before torch computed anything: in-process runs are pinned too
    if os.environ["ATEN_CPU_CAPABILITY"] == CPU_KERNEL_PINS["ATEN_CPU_CAPABILITY"]:
        assert cpu_kernels()["aten"] == "AVX2"  # what torch reports it dispatches to
