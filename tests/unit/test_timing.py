"""Timing engine: closed-form cases, semantics that distinguish the algorithms, trace replay."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sgprepro.network import NetworkConfig
from sgprepro.timing import (
    ProgramSpec,
    Trace,
    apply_compute_noise,
    emulate_trace,
    load_trace,
    simulate,
    synthesize_compute,
)
from sgprepro.timing.replay import (
    PAPER_NODES,
    calibrate,
    format_replay,
    replay_table,
    run_replay,
)
from sgprepro.topology import ExponentialGraph, RingGraph

LAT = 1e-3
NET = NetworkConfig("test", latency_s=LAT, bandwidth_gbps=1.0)  # 1 Gbit/s: 1e6 B take 8 ms
S = 1_000_000.0
BW = 1e9 / 8  # bytes per second
M = LAT + S / BW  # one message: 9 ms


def uniform(n: int, iters: int, c: float) -> np.ndarray:
    return np.full((n, iters), c)


def steady_interval(result, skip: int | None = None) -> np.ndarray:
    """Per-rank intervals between iteration ends after the transient."""
    iv = result.intervals()
    return iv[:, (skip if skip is not None else iv.shape[1] // 2) :]


# ------------------------------------------------------------------ all-reduce closed forms


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_ring_allreduce_closed_form(n: int) -> None:
    c = 0.05
    res = simulate(ProgramSpec("allreduce", allreduce_algo="ring"), uniform(n, 10, c), S, NET)
    expected = c + 2 * (n - 1) * (LAT + S / (n * BW))
    assert res.s_per_itr == pytest.approx(expected, rel=1e-12)
    assert np.allclose(res.s_per_itr_ranks, expected)


def test_ring_reduction_cost_is_charged_per_reduce_scatter_step() -> None:
    n, c, r = 8, 0.05, 1e-9  # 1 ns per byte
    spec = ProgramSpec("allreduce", allreduce_algo="ring", reduce_s_per_byte=r)
    res = simulate(spec, uniform(n, 5, c), S, NET)
    expected = c + 2 * (n - 1) * (LAT + S / (n * BW)) + (n - 1) * r * S / n
    assert res.s_per_itr == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [2, 4, 8, 32])
def test_recursive_doubling_closed_form(n: int) -> None:
    c, r = 0.05, 2e-9
    spec = ProgramSpec("allreduce", allreduce_algo="recursive_doubling", reduce_s_per_byte=r)
    res = simulate(spec, uniform(n, 10, c), S, NET)
    assert res.s_per_itr == pytest.approx(c + math.log2(n) * (LAT + S / BW + r * S), rel=1e-12)


def test_recursive_doubling_non_power_of_two_adds_two_rounds() -> None:
    spec = ProgramSpec("allreduce", allreduce_algo="recursive_doubling")
    res = simulate(spec, uniform(6, 6, 0.05), S, NET)
    # 4-rank core: 2 rounds; the 2 extra ranks fold in before and get the result after
    assert steady_interval(res)[0] == pytest.approx(0.05 + 4 * M)


def test_tree_allreduce_four_nodes_by_hand() -> None:
    # rank 3 -> 1 and rank 2 -> 0 in parallel, then 1 -> 0 (M each); broadcast 0 -> 1 then
    # 0 -> 2 on rank 0's send port while 1 -> 3: 4 message times in all.
    res = simulate(ProgramSpec("allreduce", allreduce_algo="tree"), uniform(4, 5, 0.05), S, NET)
    assert res.s_per_itr == pytest.approx(0.05 + 4 * M)


def test_allreduce_is_a_synchronising_collective() -> None:
    compute = uniform(4, 1, 0.05)
    compute[2, 0] = 0.5  # one slow rank
    for algo in ("ring", "recursive_doubling", "tree"):
        res = simulate(ProgramSpec("allreduce", allreduce_algo=algo), compute, S, NET)
        assert res.iter_end.min() >= 0.5 + M * (2 * 3 / 4 if algo == "ring" else 1) - 1e-12
        assert res.comm_wait_s[0] > 0.45  # fast ranks wait for the slow one


def test_grad_buckets_overlap_with_backward() -> None:
    n, c, buckets = 4, 0.3, 4
    bucket_comm = 2 * (n - 1) * (LAT + S / buckets / (n * BW))
    spec = ProgramSpec("allreduce", "grad_bucket", "ring", buckets=buckets)
    res = simulate(spec, uniform(n, 5, c), S, NET)
    # each bucket's all-reduce fits in the backward time of the next: only the last is exposed
    assert bucket_comm < c * (2 / 3) / buckets
    assert res.s_per_itr == pytest.approx(c + bucket_comm)
    one = simulate(
        ProgramSpec("allreduce", "grad_bucket", "ring", buckets=1), uniform(n, 5, c), S, NET
    )
    flat = simulate(ProgramSpec("allreduce", "param_avg", "ring"), uniform(n, 5, c), S, NET)
    assert one.s_per_itr == pytest.approx(flat.s_per_itr)
    assert res.s_per_itr < flat.s_per_itr


# ------------------------------------------------------------------ gossip algorithms


def test_sgp_equal_compute_is_compute_plus_one_message() -> None:
    res = simulate(ProgramSpec("sgp"), uniform(8, 20, 0.05), S, NET)
    assert res.s_per_itr == pytest.approx(0.05 + M)
    assert np.allclose(res.intervals(), 0.05 + M)


def test_sgp_k_peers_serialise_on_the_send_port() -> None:
    for k in (2, 3):
        res = simulate(ProgramSpec("sgp", peers=k), uniform(8, 12, 0.05), S, NET)
        assert res.s_per_itr == pytest.approx(0.05 + k * M)


def test_sgp_receive_port_serialises_incoming_messages() -> None:
    # complete graph on 4 nodes: 3 sends and 3 receives per node, the receive port of rank 0
    # takes the three senders of slot 0 one after another
    from sgprepro.topology import CompleteGraph

    res = simulate(ProgramSpec("sgp"), uniform(4, 3, 0.05), S, NET, CompleteGraph(4))
    assert res.iter_end[:, 0].max() >= 0.05 + 3 * M - 1e-12
    one_peer = simulate(ProgramSpec("sgp"), uniform(4, 3, 0.05), S, NET, RingGraph(4))
    assert res.s_per_itr > one_peer.s_per_itr


def test_sgp_waits_for_a_slow_in_peer_only() -> None:
    n = 8
    topo = ExponentialGraph(n)
    compute = uniform(n, 1, 0.05)
    compute[0, 0] = 0.2
    res = simulate(ProgramSpec("sgp"), compute, S, NET, topo)
    (receiver,) = topo.out_peers(0, 0)
    others = [i for i in range(n) if i not in (0, receiver)]
    assert res.iter_end[receiver, 0] == pytest.approx(0.2 + M)
    assert np.allclose(res.iter_end[others, 0], 0.05 + M)


def test_dpsgd_is_compute_plus_two_messages() -> None:
    res = simulate(ProgramSpec("dpsgd"), uniform(8, 20, 0.05), S, NET)
    assert res.s_per_itr == pytest.approx(0.05 + 2 * M)
    sgp = simulate(ProgramSpec("sgp"), uniform(8, 20, 0.05), S, NET)
    assert res.s_per_itr - sgp.s_per_itr == pytest.approx(M)


def test_dpsgd_eager_versus_rendezvous() -> None:
    compute = np.array([[0.05], [0.01]])  # rank 1 active (fast), rank 0 passive (slow)
    eager = simulate(ProgramSpec("dpsgd"), compute, S, NET)
    rdv = simulate(ProgramSpec("dpsgd", rendezvous=True), compute, S, NET)
    # eager: the active rank's message lands while the passive one computes
    assert eager.iter_end[:, 0] == pytest.approx([0.05 + M, 0.05 + M])
    assert rdv.iter_end[:, 0] == pytest.approx([0.05 + 2 * M, 0.05 + 2 * M])


def test_osgp_hides_communication_when_compute_exceeds_a_message() -> None:
    res = simulate(ProgramSpec("osgp", tau=1), uniform(8, 30, 0.05), S, NET)
    assert M <= 0.05
    assert res.s_per_itr == pytest.approx(0.05)
    assert np.allclose(res.intervals(), 0.05)
    assert np.all(res.comm_wait_s == 0)


def test_osgp_is_bound_by_the_send_port_when_messages_are_slower() -> None:
    c = 0.004  # < M = 9 ms
    res = simulate(ProgramSpec("osgp", tau=1), uniform(8, 40, c), S, NET)
    assert np.allclose(steady_interval(res), M)
    sgp = simulate(ProgramSpec("sgp"), uniform(8, 40, c), S, NET)
    assert res.s_per_itr < sgp.s_per_itr


def test_osgp_tau_zero_equals_sgp() -> None:
    compute = synthesize_compute(8, 15, 0.01, compute_cv=0.5, seed=3)
    a = simulate(ProgramSpec("osgp", tau=0), compute, S, NET)
    b = simulate(ProgramSpec("sgp"), compute, S, NET)
    assert np.array_equal(a.iter_end, b.iter_end)


@pytest.mark.parametrize("c", [0.004, 0.012, 0.03, 0.2])
def test_adpsgd_trainer_throttled_at_max_of_compute_and_gossip_round(c: float) -> None:
    res = simulate(ProgramSpec("adpsgd"), uniform(8, 60, c), S, NET)
    round_s = 2 * M  # active sends, then receives: two messages in series
    assert np.allclose(steady_interval(res), max(c, round_s))
    assert res.s_per_itr <= max(c, round_s) + 1e-12


def test_adpsgd_is_faster_than_dpsgd_when_compute_dominates() -> None:
    compute = uniform(8, 30, 0.05)
    ad = simulate(ProgramSpec("adpsgd"), compute, S, NET)
    dp = simulate(ProgramSpec("dpsgd"), compute, S, NET)
    assert ad.s_per_itr == pytest.approx(0.05)
    assert dp.s_per_itr == pytest.approx(0.05 + 2 * M)


# ------------------------------------------------------------------ noise, jitter, results


def test_jitter_is_deterministic_per_seed_and_only_slows_down() -> None:
    noisy = NET.replace(jitter_s=2e-3)
    for algo in ("allreduce", "sgp", "dpsgd", "adpsgd"):
        # AD-PSGD only feels the network while its trainer is throttled (compute < round)
        compute = uniform(8, 50, 0.01 if algo == "adpsgd" else 0.05)
        spec = ProgramSpec(algo, allreduce_algo="ring")
        base = simulate(spec, compute, S, NET)
        a = simulate(spec, compute, S, noisy, seed=1)
        b = simulate(spec, compute, S, noisy, seed=1)
        c = simulate(spec, compute, S, noisy, seed=2)
        assert np.array_equal(a.iter_end, b.iter_end)
        assert not np.array_equal(a.iter_end, c.iter_end)
        assert a.s_per_itr >= base.s_per_itr - 1e-12


def test_synthesize_compute_statistics_and_determinism() -> None:
    x = synthesize_compute(16, 2000, 0.1, compute_cv=0.2, seed=5)
    assert np.array_equal(x, synthesize_compute(16, 2000, 0.1, compute_cv=0.2, seed=5))
    assert x.mean() == pytest.approx(0.1, rel=0.02)
    assert x.std() / x.mean() == pytest.approx(0.2, rel=0.05)
    s = synthesize_compute(16, 2000, 0.1, straggler_prob=0.1, straggler_slowdown=3.0, seed=5)
    assert set(np.round(np.unique(s), 12)) == {0.1, 0.3}
    assert (s > 0.1).mean() == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError, match="straggler_prob"):
        synthesize_compute(2, 2, 0.1, straggler_prob=2.0)


def test_apply_compute_noise_uses_the_network_model() -> None:
    compute = uniform(4, 100, 0.1)
    assert np.array_equal(apply_compute_noise(compute, NET), compute)
    strag = NET.replace(straggler_prob=0.5, straggler_slowdown=2.0)
    out = apply_compute_noise(compute, strag, seed=0)
    assert np.array_equal(out, apply_compute_noise(compute, strag, seed=0))
    assert 0.3 < (out > 0.1).mean() < 0.7


def test_stragglers_hurt_synchronous_more_than_asynchronous() -> None:
    compute = synthesize_compute(16, 200, 0.05, straggler_prob=0.05, straggler_slowdown=4.0)
    ar = simulate(ProgramSpec("allreduce", allreduce_algo="ring"), compute, S, NET)
    ad = simulate(ProgramSpec("adpsgd"), compute, S, NET)
    ar0 = simulate(ProgramSpec("allreduce", allreduce_algo="ring"), uniform(16, 200, 0.05), S, NET)
    assert ar.s_per_itr - ar0.s_per_itr > ad.s_per_itr - 0.05


def test_result_to_dict_is_json_and_says_emulated() -> None:
    res = simulate(ProgramSpec("sgp"), uniform(4, 5, 0.05), S, NET)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["emulated"] is True
    assert d["time/emulated_s_per_itr"] == pytest.approx(0.05 + M)
    assert len(d["time/emulated_s_per_itr_ranks"]) == 4
    assert d["spec"]["algorithm"] == "sgp"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"algorithm": "gossip"}, "algorithm"),
        ({"algorithm": "allreduce", "allreduce_algo": "bcube"}, "allreduce_algo"),
        ({"algorithm": "allreduce", "allreduce_mode": "ddp"}, "allreduce_mode"),
        ({"algorithm": "osgp", "tau": -1}, "tau"),
        ({"algorithm": "sgp", "peers": 0}, "peers"),
    ],
)
def test_bad_program_specs_name_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        ProgramSpec(**kwargs)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="compute_s"):
        simulate(ProgramSpec("sgp"), np.ones(4), S, NET)
    with pytest.raises(ValueError, match="n=4"):
        simulate(ProgramSpec("sgp"), uniform(4, 2, 0.1), S, NET, ExponentialGraph(8))


# ------------------------------------------------------------------ traces


def write_traces(directory: Path, compute: np.ndarray, nbytes: int | None) -> None:
    n, iters = compute.shape
    for rank in range(n):
        with (directory / f"trace_r{rank}.jsonl").open("w") as fh:
            for t in range(iters):
                sent = [[(rank + 1) % n, nbytes]] if nbytes is not None else []
                rec = {
                    "step": t,
                    "compute_s": float(compute[rank, t]),
                    "wall_s": 0.0,
                    "comm_s": 0.0,
                    "sent": sent,
                }
                fh.write(json.dumps(rec) + "\n")


def test_emulate_trace_round_trip_is_identical(tmp_path: Path) -> None:
    compute = synthesize_compute(8, 25, 0.01, compute_cv=0.3, seed=7)
    write_traces(tmp_path, compute, 123_456)
    noisy = NET.replace(jitter_s=1e-3)
    for spec in (
        ProgramSpec("sgp"),
        ProgramSpec("osgp"),
        ProgramSpec("dpsgd"),
        ProgramSpec("adpsgd"),
        ProgramSpec("allreduce", allreduce_algo="ring"),
    ):
        direct = simulate(spec, compute, 123_456, noisy, seed=3)
        replay = emulate_trace(tmp_path, spec, noisy, seed=3)
        assert np.array_equal(direct.iter_end, replay.iter_end)
        assert replay.s_per_itr == direct.s_per_itr


def test_emulate_trace_applies_the_condition_straggler_model(tmp_path: Path) -> None:
    compute = uniform(4, 20, 0.01)
    write_traces(tmp_path, compute, 1000)
    strag = NET.replace(straggler_prob=0.3, straggler_slowdown=5.0)
    spec = ProgramSpec("sgp")
    with_noise = emulate_trace(tmp_path, spec, strag, seed=2)
    expected = simulate(spec, apply_compute_noise(compute, strag, seed=2), 1000, strag, seed=2)
    assert np.array_equal(with_noise.iter_end, expected.iter_end)
    without = emulate_trace(tmp_path, spec, strag, seed=2, compute_noise=False)
    assert without.s_per_itr < with_noise.s_per_itr


def test_load_trace_truncates_and_requires_a_size(tmp_path: Path) -> None:
    compute = uniform(2, 6, 0.01)
    write_traces(tmp_path, compute, None)
    with (tmp_path / "trace_r1.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 6, "compute_s": 0.5, "sent": []}) + "\n")
    trace = load_trace(tmp_path)
    assert trace.compute_s.shape == (2, 6) and trace.message_bytes is None
    with pytest.raises(ValueError, match="message_bytes"):
        emulate_trace(tmp_path, ProgramSpec("sgp"), NET)
    res = emulate_trace(Trace(trace.compute_s, None), ProgramSpec("sgp"), NET, message_bytes=S)
    assert res.s_per_itr == pytest.approx(0.01 + M)
    with pytest.raises(ValueError, match="trace_r0"):
        load_trace(tmp_path / "missing")


# ------------------------------------------------------------------ paper replay


@pytest.fixture(scope="module")
def small_replay():
    iters = {n: 24 for n in PAPER_NODES}
    return run_replay(iterations=iters, calib_iterations=24)


def test_replay_calibrates_on_four_nodes_and_predicts_twelve(small_replay) -> None:
    table = small_replay.table
    assert len(table) == 16
    assert set(table[table.used_for_calibration].nodes) == {4}
    assert (~table.used_for_calibration).sum() == 12
    assert math.isfinite(small_replay.held_out_mape) and small_replay.held_out_mape > 0
    cal = small_replay.calibration
    assert 0 < cal.efficiency <= 1 and cal.compute_s > 0 and cal.reduce_s_per_round >= 0
    cal_ar = table[(table.algorithm == "allreduce") & (table.nodes == 4)].iloc[0]
    assert cal_ar.emulated_s_per_itr == pytest.approx(cal_ar.published_s_per_itr, rel=1e-3)


def test_replay_structural_properties(small_replay) -> None:
    table = small_replay.table
    ar = table[table.algorithm == "allreduce"].sort_values("nodes")
    x = np.log2(ar.nodes.to_numpy(dtype=float))
    y = ar.emulated_s_per_itr.to_numpy()
    steps = np.diff(y) / np.diff(x)
    assert np.allclose(steps, steps[0], rtol=1e-3) and steps[0] > 0  # linear in log2 n
    msg = small_replay.calibration.message_time_s
    for n in PAPER_NODES:
        cell = table[table.nodes == n].set_index("algorithm").emulated_s_per_itr
        assert cell["dpsgd"] - cell["sgp"] == pytest.approx(msg, rel=0.02)
        pub = table[table.nodes == n].set_index("algorithm").published_s_per_itr
        assert list(cell.sort_values().index) == list(pub.sort_values().index)
    assert all(check["holds"] for check in small_replay.checks), small_replay.checks


def test_replay_modern_and_dataframe() -> None:
    iters = {n: 16 for n in PAPER_NODES}
    cal = calibrate(iterations=16)
    paper = replay_table(iterations=iters, calibration=cal)
    assert paper.attrs["emulated"] is True and "held_out_mape_pct" in paper.attrs
    modern = run_replay(modern=True, iterations=iters, calibration=cal).table
    ar_paper = paper[paper.algorithm == "allreduce"].emulated_s_per_itr.to_numpy()
    ar_modern = modern[modern.algorithm == "allreduce"].emulated_s_per_itr.to_numpy()
    assert np.all(ar_modern < ar_paper)
    assert np.ptp(ar_modern) / ar_modern.min() < np.ptp(ar_paper) / ar_paper.min()


def test_replay_formats_say_emulated(small_replay) -> None:
    for fmt in ("text", "markdown"):
        out = format_replay(small_replay, fmt)
        assert "Emulated s/itr" in out and "Held-out MAPE" in out and "[cal]" in out
    csv = format_replay(small_replay, "csv")
    assert csv.splitlines()[0].split(",")[4] == "emulated_s_per_itr"
    assert len(csv.strip().splitlines()) == 17
