"""Importing sgprepro pins torch's CPU kernels to their AVX2 paths, so the same config gives the
same bits on x86-64 machines with and without AVX-512; a kernel choice the environment makes is
kept, and the records say what a process used. Each check is a fresh Python process (the
kernels are chosen once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sgprepro.kernels import CPU_KERNEL_PINS, cpu_flags, has_avx2

# the flags ATen's AVX-512 kernels need
AVX512 = has_avx2() and {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= cpu_flags()

# a training step's numerics: log-softmax and its backward (ATen), the linear layers (MKL) and a
# convolution (oneDNN) are where AVX-512 and AVX2 kernels give other bits on an AVX-512 machine
PROBE = """
import hashlib, json, sys
if sys.argv[1] == "sgprepro":
    import sgprepro  # noqa: F401 - what every entry point of the harness imports first
import torch
torch.manual_seed(0)
x, y = torch.randn(64, 1, 40), torch.randint(0, 10, (64,))
m = torch.nn.Sequential(
    torch.nn.Conv1d(1, 8, 5), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(288, 10)
)
torch.nn.functional.cross_entropy(m(x), y).backward()
g = torch.cat([p.grad.flatten() for p in m.parameters()])
out = {"sha": hashlib.sha256(g.numpy().tobytes()).hexdigest()}
out["aten"] = str(torch.backends.cpu.get_cpu_capability())
if sys.argv[1] == "torch-first":
    import sgprepro  # noqa: F401 - after torch has computed: too late to pin
if "sgprepro" in sys.modules:
    from sgprepro.kernels import cpu_kernels
    out.update(cpu_kernels())
print(json.dumps(out))
"""


def _probe(importing: str, **env: str) -> dict:
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


@pytest.mark.skipif(not has_avx2(), reason="the pin is for x86-64 CPUs with AVX2 and FMA")
def test_importing_sgprepro_pins_the_avx2_kernels() -> None:
    pinned = _probe("sgprepro")
    assert pinned["aten"] == "AVX2"
    assert pinned["pinned"] is True
    assert pinned["torch_loaded_first"] is False
    # an AVX2-only CPU (MKL and oneDNN limited to AVX2) gives the same bits as this one
    capped = _probe("sgprepro", MKL_ENABLE_INSTRUCTIONS="AVX2", ONEDNN_MAX_CPU_ISA="AVX2")
    assert capped["sha"] == pinned["sha"]


@pytest.mark.skipif(not AVX512, reason="a CPU without AVX-512 runs the pinned kernels anyway")
def test_unpinned_an_avx512_cpu_gives_other_bits() -> None:
    natural = _probe("torch")  # no sgprepro: the kernels torch picks for this CPU
    assert natural["aten"] == "AVX512"
    assert natural["sha"] != _probe("sgprepro")["sha"]  # the pin is what makes the bits the same


def test_a_kernel_choice_the_environment_makes_is_kept() -> None:
    chosen = _probe("sgprepro", ATEN_CPU_CAPABILITY="default")
    assert chosen["aten"] == "DEFAULT"  # as torch reports it, not as the environment says


@pytest.mark.skipif(not has_avx2(), reason="the pin is for x86-64 CPUs with AVX2 and FMA")
def test_the_records_say_when_torch_was_loaded_before_sgprepro() -> None:
    late = _probe("torch-first")
    assert late["torch_loaded_first"] is True  # its kernels may be the CPU's own, not the pin


def test_a_cpu_without_avx2_keeps_its_kernels(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 avx\n")
    assert has_avx2(cpuinfo) is False
    assert has_avx2(tmp_path / "missing") is False
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n")
    assert has_avx2(cpuinfo) is (os.uname().machine in ("x86_64", "amd64"))
