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
from sgprepro.topology import BipartiteExponentialGraph, ExponentialGraph, RingGraph

LAT = 1e-3
NET = NetworkConfig("test", latency_s=LAT, bandwidth_gbps=1.0)  # 1 Gbit/s: 1e6 B take 8 ms
S = 1_000_000.0
BW = 1e9 / 8  # bytes per second
M = LAT + S / BW  # one message: 9 ms


def uniform(n: int, iters: int, c: float) -> np.ndarray:
    return np.full((n, iters), c)


GRAPH = {
    "push": ExponentialGraph,
    "overlap_push": ExponentialGraph,
    "pairwise": BipartiteExponentialGraph,
    "gossip_async": BipartiteExponentialGraph,
}


def sim(spec: ProgramSpec, compute: np.ndarray, net: NetworkConfig = NET, topo=None, seed=0):
    """simulate() with the paper's graph of the pattern (exponential, bipartite) by default."""
    if topo is None and spec.pattern in GRAPH:
        topo = GRAPH[spec.pattern](len(compute))
    return simulate(spec, compute, S, net, topo, seed=seed)


def steady_interval(result, skip: int | None = None) -> np.ndarray:
    """Per-rank intervals between iteration ends after the transient."""
    iv = result.intervals()
    return iv[:, (skip if skip is not None else iv.shape[1] // 2) :]


# ------------------------------------------------------------------ all-reduce closed forms


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_ring_allreduce_closed_form(n: int) -> None:
    c = 0.05
    res = sim(ProgramSpec("allreduce", collective="ring"), uniform(n, 10, c))
    expected = c + 2 * (n - 1) * (LAT + S / (n * BW))
    assert res.s_per_itr == pytest.approx(expected, rel=1e-12)
    assert np.allclose(res.s_per_itr_ranks, expected)


def test_ring_reduction_cost_is_charged_per_reduce_scatter_step() -> None:
    n, c, r = 8, 0.05, 1e-9  # 1 ns per byte
    spec = ProgramSpec("allreduce", collective="ring", round_passes=1, fixed_passes=0)
    res = sim(spec, uniform(n, 5, c), NET.replace(reduce_s_per_byte=r))
    expected = c + 2 * (n - 1) * (LAT + S / (n * BW)) + (n - 1) * r * S / n
    assert res.s_per_itr == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [2, 4, 8, 32])
def test_recursive_doubling_closed_form(n: int) -> None:
    c, r = 0.05, 2e-9
    spec = ProgramSpec("allreduce", collective="recursive_doubling", round_passes=1, fixed_passes=0)
    res = sim(spec, uniform(n, 10, c), NET.replace(reduce_s_per_byte=r))
    assert res.s_per_itr == pytest.approx(c + math.log2(n) * (LAT + S / BW + r * S), rel=1e-12)


@pytest.mark.parametrize("n", [4, 32])
def test_cpu_passes_of_the_original_code(n: int) -> None:
    """One pass = reduce_s_per_byte x bytes. THD recursive doubling: 3 fixed passes (flatten,
    clone, copy back) and 2 per round (reduce, copy); SGP and D-PSGD flatten once before
    sending."""
    c, r = 0.05, 2e-9
    k = r * S
    net = NET.replace(reduce_s_per_byte=r)
    ar = sim(ProgramSpec("allreduce", collective="recursive_doubling"), uniform(n, 10, c), net)
    assert ar.s_per_itr == pytest.approx(c + 3 * k + math.log2(n) * (M + 2 * k), rel=1e-12)
    sgp = sim(ProgramSpec("push"), uniform(n, 10, c), net)
    assert sgp.s_per_itr == pytest.approx(c + k + M, rel=1e-12)
    dp = sim(ProgramSpec("pairwise"), uniform(n, 10, c), net)
    assert dp.s_per_itr == pytest.approx(c + k + 2 * M, rel=1e-12)
    osgp = sim(ProgramSpec("overlap_push"), uniform(n, 10, 0.001), net)
    assert osgp.s_per_itr == pytest.approx(k + M, rel=1e-12)


def test_recursive_doubling_non_power_of_two_adds_two_rounds() -> None:
    spec = ProgramSpec("allreduce", collective="recursive_doubling")
    res = sim(spec, uniform(6, 6, 0.05))
    # 4-rank core: 2 rounds; the 2 extra ranks fold in before and get the result after
    assert steady_interval(res)[0] == pytest.approx(0.05 + 4 * M)


def test_tree_allreduce_four_nodes_by_hand() -> None:
    # rank 3 -> 1 and rank 2 -> 0 in parallel, then 1 -> 0 (M each); broadcast 0 -> 1 then
    # 0 -> 2 on rank 0's send port while 1 -> 3: 4 message times in all.
    res = sim(ProgramSpec("allreduce", collective="tree"), uniform(4, 5, 0.05))
    assert res.s_per_itr == pytest.approx(0.05 + 4 * M)


def test_allreduce_is_a_synchronising_collective() -> None:
    compute = uniform(4, 1, 0.05)
    compute[2, 0] = 0.5  # one slow rank
    for algo in ("ring", "recursive_doubling", "tree"):
        res = sim(ProgramSpec("allreduce", collective=algo), compute)
        assert res.iter_end.min() >= 0.5 + M * (2 * 3 / 4 if algo == "ring" else 1) - 1e-12
        assert res.comm_wait_s[0] > 0.45  # fast ranks wait for the slow one


def test_grad_buckets_overlap_with_backward() -> None:
    n, c, buckets = 4, 0.3, 4
    bucket_comm = 2 * (n - 1) * (LAT + S / buckets / (n * BW))
    spec = ProgramSpec("allreduce", collective="ring", buckets=buckets)
    res = sim(spec, uniform(n, 5, c))
    # each bucket's all-reduce fits in the backward time of the next: only the last is exposed
    assert bucket_comm < c * (2 / 3) / buckets
    assert res.s_per_itr == pytest.approx(c + bucket_comm)
    one = sim(ProgramSpec("allreduce", collective="ring", buckets=1), uniform(n, 5, c))
    flat = sim(ProgramSpec("allreduce", collective="ring"), uniform(n, 5, c))
    assert one.s_per_itr == pytest.approx(flat.s_per_itr)
    assert res.s_per_itr < flat.s_per_itr


# ------------------------------------------------------------------ gossip algorithms


def test_sgp_equal_compute_is_compute_plus_one_message() -> None:
    res = sim(ProgramSpec("push"), uniform(8, 20, 0.05))
    assert res.s_per_itr == pytest.approx(0.05 + M)
    assert np.allclose(res.intervals(), 0.05 + M)


def test_sgp_k_peers_serialise_on_the_send_port() -> None:
    for k in (2, 3):
        res = sim(ProgramSpec("push", peers=k), uniform(8, 12, 0.05))
        assert res.s_per_itr == pytest.approx(0.05 + k * M)


def test_sgp_receive_port_serialises_incoming_messages() -> None:
    # complete graph on 4 nodes: 3 sends and 3 receives per node, the receive port of rank 0
    # takes the three senders of slot 0 one after another
    from sgprepro.topology import CompleteGraph

    res = sim(ProgramSpec("push"), uniform(4, 3, 0.05), topo=CompleteGraph(4))
    assert res.iter_end[:, 0].max() >= 0.05 + 3 * M - 1e-12
    one_peer = sim(ProgramSpec("push"), uniform(4, 3, 0.05), topo=RingGraph(4))
    assert res.s_per_itr > one_peer.s_per_itr


def test_sgp_waits_for_a_slow_in_peer_only() -> None:
    n = 8
    topo = ExponentialGraph(n)
    compute = uniform(n, 1, 0.05)
    compute[0, 0] = 0.2
    res = sim(ProgramSpec("push"), compute, topo=topo)
    (receiver,) = topo.out_peers(0, 0)
    others = [i for i in range(n) if i not in (0, receiver)]
    assert res.iter_end[receiver, 0] == pytest.approx(0.2 + M)
    assert np.allclose(res.iter_end[others, 0], 0.05 + M)


def test_dpsgd_is_compute_plus_two_messages() -> None:
    res = sim(ProgramSpec("pairwise"), uniform(8, 20, 0.05))
    assert res.s_per_itr == pytest.approx(0.05 + 2 * M)
    sgp = sim(ProgramSpec("push"), uniform(8, 20, 0.05))
    assert res.s_per_itr - sgp.s_per_itr == pytest.approx(M)


def test_dpsgd_eager_versus_rendezvous() -> None:
    compute = np.array([[0.05], [0.01]])  # rank 1 active (fast), rank 0 passive (slow)
    eager = sim(ProgramSpec("pairwise"), compute)
    rdv = sim(ProgramSpec("pairwise", rendezvous=True), compute)
    # eager: the active rank's message lands while the passive one computes
    assert eager.iter_end[:, 0] == pytest.approx([0.05 + M, 0.05 + M])
    assert rdv.iter_end[:, 0] == pytest.approx([0.05 + 2 * M, 0.05 + 2 * M])


@pytest.mark.parametrize("ratio", [0.25, 0.5, 1.0, 2.0, 4.0])
def test_osgp_hides_the_message_behind_compute(ratio: float) -> None:
    """The original's OSGP sends at the start of the iteration: max(compute, message)."""
    c = M / ratio
    res = sim(ProgramSpec("overlap_push"), uniform(8, 40, c))
    assert res.s_per_itr == pytest.approx(max(c, M), rel=1e-9)
    sgp = sim(ProgramSpec("push"), uniform(8, 40, c))
    assert sgp.s_per_itr == pytest.approx(c + M)


def test_osgp_waits_for_a_late_in_peer_of_the_same_round() -> None:
    n = 8
    topo = ExponentialGraph(n)
    compute = uniform(n, 2, 0.001)  # compute << message: the message bounds the iteration
    compute[0, 0] = 0.5  # rank 0 starts its second round late
    res = sim(ProgramSpec("overlap_push"), compute, topo=topo)
    (receiver,) = topo.out_peers(0, 1)
    # rank 0's round-1 message leaves at the start of its iteration 1 (0.5 s) and lands M later
    assert res.iter_end[receiver, 1] == pytest.approx(0.5 + M)
    others = [i for i in range(n) if i not in (0, receiver)]
    assert np.allclose(res.iter_end[others, 1], 2 * M)


def test_delayed_push_overlaps_tau_iterations() -> None:
    c = 0.004  # < M = 9 ms
    res = sim(ProgramSpec("push", delay=1), uniform(8, 40, c))
    assert np.allclose(steady_interval(res), M)
    sgp = sim(ProgramSpec("push"), uniform(8, 40, c))
    assert res.s_per_itr < sgp.s_per_itr
    long = sim(ProgramSpec("push", delay=1), uniform(8, 30, 0.05))
    assert long.s_per_itr == pytest.approx(0.05)


def test_delay_zero_is_sgp() -> None:
    compute = synthesize_compute(8, 15, 0.01, compute_cv=0.5, seed=3)
    a = sim(ProgramSpec("push", delay=0), compute)
    b = sim(ProgramSpec("push"), compute)
    assert np.array_equal(a.iter_end, b.iter_end)


# ------------------------------------------------------------------ AD-PSGD


def test_adpsgd_passive_at_compute_active_throttled_by_its_serial_round() -> None:
    """Passive (even) trainers run at compute speed; active ones at one gossip round (send, then
    receive: two messages); the table figure is the mean of the two populations."""
    c = 0.005  # < 2M
    res = sim(ProgramSpec("gossip_async"), uniform(8, 80, c))
    passive, active = res.s_per_itr_ranks[0::2], res.s_per_itr_ranks[1::2]
    assert np.allclose(active, 2 * M, rtol=1e-9)
    assert np.all(passive <= c + M)
    assert np.all(passive >= c)
    assert res.s_per_itr == pytest.approx((passive.mean() + active.mean()) / 2)
    grads = res.details["gradients_ranks"]
    assert sum(grads) == 8 * 80  # the global budget, faster (passive) ranks take more
    assert min(grads[0::2]) > max(grads[1::2])


@pytest.mark.parametrize("c", [0.03, 0.2])
def test_adpsgd_every_rank_at_compute_when_compute_dominates(c: float) -> None:
    res = sim(ProgramSpec("gossip_async"), uniform(8, 60, c))
    assert np.allclose(res.s_per_itr_ranks, c)
    assert res.details["gossip_rounds_ranks"][0] >= 60 * c / (2 * M) - 2


def test_adpsgd_cpu_passes_slow_the_active_loop() -> None:
    """An active round: apply (5 passes), flatten (1), send, the passive flattens (1) and
    replies, both average (2)."""
    c, r = 0.005, 4e-9
    res = sim(ProgramSpec("gossip_async"), uniform(8, 80, c), NET.replace(reduce_s_per_byte=r))
    assert np.allclose(res.s_per_itr_ranks[1::2], 2 * M + 9 * r * S, rtol=1e-9)


def test_adpsgd_schedule_is_consistent() -> None:
    """Partners share rounds; ops of a rank are in time order; a gradient is applied after its
    hand-over, handed over after its compute; an active loop takes one gradient per round."""
    from sgprepro.timing import Link, adpsgd_schedule
    from sgprepro.timing.gossip_async import APPLY, COMMIT, GRAD, HANDOVER, SEND

    n = 8
    topo = BipartiteExponentialGraph(n)
    compute = synthesize_compute(n, 60, 0.006, compute_cv=0.4, seed=1)
    sched = adpsgd_schedule(list(compute), n * 40, topo, S, Link(NET, np.random.default_rng(0)))
    assert sum(sched.gradients()) == n * 40
    assert sorted(int(t) for ts in sched.tickets for t in ts) == list(range(n * 40))
    for i in range(n):
        ops = sched.ops(i)
        assert [o.time for o in ops] == sorted(o.time for o in ops)
        for r, p in enumerate(sched.rounds_partner[i]):
            assert p == topo.partner(i, r)
            assert sched.rounds_partner[p][r] == i
            assert sched.rounds_commit[i][r] == sched.rounds_commit[p][r]
            assert sched.rounds_snapshot[i][r] < sched.rounds_commit[i][r]
        h, cons, s = sched.handover[i], sched.consume[i], sched.grad_start[i]
        assert np.all(h >= s)
        assert np.all(cons >= h)
        assert np.all(np.diff(cons) >= 0)
        if sched.active[i]:
            assert np.all(np.diff(cons) > 0)  # one gradient per loop iteration
        kinds = {o.kind for o in ops}
        assert kinds == {GRAD, HANDOVER, APPLY, SEND, COMMIT}
    # the same inputs give the same schedule
    again = adpsgd_schedule(list(compute), n * 40, topo, S, Link(NET, np.random.default_rng(0)))
    assert all(np.array_equal(a, b) for a, b in zip(sched.consume, again.consume, strict=True))


# ------------------------------------------------------------------ noise, jitter, results


def test_jitter_is_deterministic_per_seed_and_only_slows_down() -> None:
    noisy = NET.replace(jitter_s=2e-3)
    for pattern in ("allreduce", "push", "overlap_push", "pairwise", "gossip_async"):
        # overlap and AD-PSGD only feel the network while it is slower than compute
        hidden = pattern in ("overlap_push", "gossip_async")
        compute = uniform(8, 50, 0.005 if hidden else 0.05)
        spec = ProgramSpec(pattern, collective="ring")
        base = sim(spec, compute)
        a = sim(spec, compute, noisy, seed=1)
        b = sim(spec, compute, noisy, seed=1)
        c = sim(spec, compute, noisy, seed=2)
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
    ar = sim(ProgramSpec("allreduce", collective="ring"), compute)
    ad = sim(ProgramSpec("gossip_async"), compute)
    ar0 = sim(ProgramSpec("allreduce", collective="ring"), uniform(16, 200, 0.05))
    assert ar.s_per_itr - ar0.s_per_itr > ad.s_per_itr - 0.05


def test_result_to_dict_is_json_and_says_emulated() -> None:
    res = sim(ProgramSpec("push", label="sgp"), uniform(4, 5, 0.05))
    d = json.loads(json.dumps(res.to_dict()))
    assert d["emulated"] is True
    assert d["time/emulated_s_per_itr"] == pytest.approx(0.05 + M)
    assert len(d["time/emulated_s_per_itr_ranks"]) == 4
    assert d["spec"]["pattern"] == "push"
    assert d["spec"]["label"] == "sgp"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"pattern": "gossip"}, "pattern"),
        ({"pattern": "allreduce", "collective": "bcube"}, "collective"),
        ({"pattern": "allreduce", "buckets": -1}, "buckets"),
        ({"pattern": "push", "delay": -1}, "delay"),
        ({"pattern": "push", "peers": 0}, "peers"),
    ],
)
def test_bad_program_specs_name_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        ProgramSpec(**kwargs)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="compute_s"):
        simulate(ProgramSpec("push"), np.ones(4), S, NET, ExponentialGraph(4))
    with pytest.raises(ValueError, match="n=4"):
        simulate(ProgramSpec("push"), uniform(4, 2, 0.1), S, NET, ExponentialGraph(8))
    with pytest.raises(ValueError, match="topology"):
        simulate(ProgramSpec("push"), uniform(4, 2, 0.1), S, NET)


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
        ProgramSpec("push"),
        ProgramSpec("overlap_push"),
        ProgramSpec("push", delay=2),
        ProgramSpec("pairwise"),
        ProgramSpec("gossip_async"),
        ProgramSpec("allreduce", collective="ring"),
    ):
        topo = GRAPH[spec.pattern](8) if spec.pattern in GRAPH else None
        direct = simulate(spec, compute, 123_456, noisy, topo, seed=3)
        replay = emulate_trace(tmp_path, spec, noisy, topo, seed=3)
        assert all(np.array_equal(a, b) for a, b in zip(direct.ends, replay.ends, strict=True))
        assert replay.s_per_itr == direct.s_per_itr


def test_emulate_trace_applies_the_condition_straggler_model(tmp_path: Path) -> None:
    compute = uniform(4, 20, 0.01)
    write_traces(tmp_path, compute, 1000)
    strag = NET.replace(straggler_prob=0.3, straggler_slowdown=5.0)
    spec = ProgramSpec("push")
    topo = ExponentialGraph(4)
    with_noise = emulate_trace(tmp_path, spec, strag, topo, seed=2)
    noisy = apply_compute_noise(compute, strag, seed=2)
    expected = simulate(spec, noisy, 1000, strag, topo, seed=2)
    assert np.array_equal(with_noise.iter_end, expected.iter_end)
    without = emulate_trace(tmp_path, spec, strag, topo, seed=2, compute_noise=False)
    assert without.s_per_itr < with_noise.s_per_itr


def test_load_trace_truncates_and_requires_a_size(tmp_path: Path) -> None:
    compute = uniform(2, 6, 0.01)
    write_traces(tmp_path, compute, None)
    with (tmp_path / "trace_r1.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 6, "compute_s": 0.5, "sent": []}) + "\n")
    trace = load_trace(tmp_path)
    assert trace.compute_s.shape == (2, 6)
    assert trace.message_bytes is None
    assert [len(r) for r in trace.compute_ranks] == [6, 7]  # kept whole for AD-PSGD
    topo = ExponentialGraph(2)
    with pytest.raises(ValueError, match="message_bytes"):
        emulate_trace(tmp_path, ProgramSpec("push"), NET, topo)
    res = emulate_trace(
        Trace(trace.compute_s, None), ProgramSpec("push"), NET, topo, message_bytes=S
    )
    assert res.s_per_itr == pytest.approx(0.01 + M)
    with pytest.raises(ValueError, match="trace_r0"):
        load_trace(tmp_path / "missing")
