"""All-reduce collectives: when every rank leaves a sum all-reduce of ``nbytes`` started at ``start``.

Each function takes the start time (every rank has arrived), the node count, the payload, the
link and the CPU reduction cost per byte (charged after every reducing receive), and returns the
``[n]`` end times.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sgprepro.timing.link import Link

Collective = Callable[[float, int, float, Link, float], np.ndarray]


def ring(start: float, n: int, nbytes: float, link: Link, red_per_byte: float) -> np.ndarray:
    """Ring all-reduce: n-1 reduce-scatter then n-1 all-gather steps of ``nbytes/n`` each.

    In step k every rank sends one chunk to rank+1; it can forward in step k+1 once it has
    received (and, during reduce-scatter, added) the chunk of step k. No noise:
    ``2(n-1)(latency + S/(n bw)) + (n-1) reduce(S/n)``.
    """
    if n == 1:
        return np.full(1, start)
    chunk = nbytes / n
    steps = 2 * (n - 1)
    red = red_per_byte * chunk
    if link.jitter <= 0.0:
        d = link.message_time(chunk)
        end = arrive = start
        for k in range(steps):
            ready = start if k == 0 else arrive + (red if k - 1 < n - 1 else 0.0)
            end = max(ready, end) + d
            arrive = end
        return np.full(n, arrive)
    durs = link.durations(chunk, (steps, n))
    assert isinstance(durs, np.ndarray)  # with jitter: one draw per message
    left = np.roll(np.arange(n), 1)  # rank i receives from rank i-1
    end_v = np.full(n, start)
    arrive_v = end_v
    for k in range(steps):
        # forward once the previous chunk is in; add it first during reduce-scatter (k-1 < n-1)
        ready_v = arrive_v + red if 0 < k < n else arrive_v
        end_v = np.maximum(ready_v, end_v)
        end_v += durs[k]
        arrive_v = end_v[left]
    return arrive_v


def recursive_doubling(
    start: float, n: int, nbytes: float, link: Link, red_per_byte: float
) -> np.ndarray:
    """Recursive-doubling all-reduce: log2(n) rounds, each a full ``nbytes`` exchange both ways.

    Round r pairs rank i with i XOR 2^r; each side sends while it receives (full duplex), then
    adds the received vector. For n not a power of two, the n - 2^k extra ranks first send their
    vector to a partner among the first 2^k and get the result back at the end (two extra
    rounds). No noise, n a power of two: ``log2(n) (latency + S/bw + reduce(S))``.
    """
    t = np.full(n, start)
    if n == 1:
        return t
    red = red_per_byte * nbytes
    p2 = 1 << (n.bit_length() - 1)
    extra = n - p2
    recv_last = np.full(n, start)
    if extra:
        src = np.arange(p2, n)
        arr = t[src] + link.durations(nbytes, extra)
        t[src - p2] = np.maximum(t[src - p2], arr) + red
        recv_last[src - p2] = arr
        t[src] = arr
    core = np.arange(p2)
    for r in range(p2.bit_length() - 1):
        partner = core ^ (1 << r)
        start_send = np.maximum(t[core], recv_last[partner])
        arr = start_send + link.durations(nbytes, p2)  # arr[i]: i's message reaches partner[i]
        got = arr[partner]  # what rank i receives from its partner
        t[core] = np.maximum(arr, got) + red
        recv_last[core] = got
    if extra:  # blocking send of the result back: both sides are done when it arrives
        src = np.arange(extra)
        t[src + p2] = t[src] + link.durations(nbytes, extra)
        t[src] = t[src + p2]
    return t


def tree(start: float, n: int, nbytes: float, link: Link, red_per_byte: float) -> np.ndarray:
    """Binary-tree all-reduce: reduce to rank 0 over the heap tree (children 2v+1, 2v+2), then
    broadcast down it. A parent receives its children one after the other (receive port) and
    sends to them one after the other (send port); every edge carries ``nbytes``.
    """
    if n == 1:
        return np.full(1, start)
    red = red_per_byte * nbytes
    d = link.durations(nbytes, 2 * (n - 1))
    durs = [d] * (2 * (n - 1)) if isinstance(d, float) else d.tolist()
    ready = [start] * n
    recv_free = [start] * n
    for v in range(n - 1, 0, -1):  # children have larger indices: processed first
        parent = (v - 1) // 2
        end = max(ready[v], recv_free[parent]) + durs[v - 1]
        recv_free[parent] = end
        ready[parent] = max(ready[parent], end) + red
    have = [0.0] * n
    done = [0.0] * n
    have[0] = ready[0]
    k = n - 1
    for v in range(n):
        send_free = have[v]
        for child in (2 * v + 1, 2 * v + 2):
            if child < n:
                send_free = send_free + durs[k]
                k += 1
                have[child] = send_free
        done[v] = send_free
    return np.array(done)


COLLECTIVES: dict[str, Collective] = {
    "ring": ring,
    "recursive_doubling": recursive_doubling,
    "tree": tree,
}
"""The collectives the engine emulates, by name (``ProgramSpec.collective``)."""
