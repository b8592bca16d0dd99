"""Benchmark: the vectorised cost grid on 1M scenarios against the scalar functions in a Python loop.

Run from the repository root::

    python benchmarks/bench_cost_grid.py [--n 1000000] [--repeats 5] [--baseline-sample 2000]

The 1M scenarios vary eight inputs at random (volume, knowledge cadence, hosting, GPU price,
input-token price, context size, fine-tuned price multiplier, GPUs always on), half of them
self-hosted so half the crossovers are piecewise. The baseline, measured in the same run, is the
scalar path (``CostInputs`` + ``monthly_cost`` x 3 + ``crossover``) over a random sample,
extrapolated to n. The grid's results are checked against the scalar ones on that sample.
Prints the first-call time (after a tiny warm-up that pays one-time import costs), the best of
``--repeats`` and the speed-up.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from ragft_lib.cost import APPROACHES, CostInputs, cost_grid, crossover, monthly_cost  # noqa: E402


def scenarios(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "requests_per_day": 10 ** rng.uniform(2, 7, n),
        "knowledge_update_days": np.where(rng.random(n) < 0.2, np.inf, 10 ** rng.uniform(0, 2.5, n)),
        "hosting": np.where(rng.random(n) < 0.5, "api", "self-hosted"),
        "gpu_hour_usd": rng.uniform(1.0, 4.0, n),
        "price_per_1k_input_tokens_usd": rng.uniform(1e-4, 3e-3, n),
        "rag_context_tokens_per_request": rng.uniform(500, 8_000, n),
        "finetuned_token_price_multiplier": rng.uniform(1.0, 3.0, n),
        "min_gpus": rng.choice([0.0, 1.0, 2.0], n),
    }


def scalar_loop(axes: dict[str, np.ndarray], idx: np.ndarray) -> tuple[float, list[tuple[float, ...]]]:
    t = time.perf_counter()
    out = []
    for i in idx:
        kw = {k: v[i].item() for k, v in axes.items()}
        if math.isinf(kw["knowledge_update_days"]):
            kw["knowledge_update_days"] = None
        x = CostInputs(**kw)
        c = crossover(x).requests_per_day
        out.append(tuple(monthly_cost(x, a) for a in APPROACHES) + (math.inf if c is None else c,))
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline-sample", type=int, default=2_000)
    args = ap.parse_args()

    axes = scenarios(args.n)
    cost_grid(**{k: v[:10] for k, v in axes.items()})  # warm-up: one-time imports, not the grid
    t = time.perf_counter()
    grid = cost_grid(**axes)
    first = time.perf_counter() - t
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        cost_grid(**axes)
        times.append(time.perf_counter() - t)
    best = min(times)

    idx = np.random.default_rng(1).choice(args.n, args.baseline_sample, replace=False)
    loop_s, scalar = scalar_loop(axes, idx)
    per_scenario = loop_s / len(idx)
    baseline = per_scenario * args.n
    cols = [grid[a] for a in APPROACHES] + [grid["crossover_requests_per_day"]]
    for j, i in enumerate(idx):
        for col, want in zip(cols, scalar[j]):
            assert math.isclose(col[i], want, rel_tol=1e-9, abs_tol=1e-9) or col[i] == want == math.inf

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    print(f"cost_grid, {args.n:,} scenarios (3 monthly costs, cheapest, crossover):")
    print(f"  first call {first:.3f} s; best of {args.repeats}: {best:.3f} s "
          f"({args.n / best / 1e6:.2f} M scenarios/s)")
    print(f"baseline: scalar functions in a Python loop, {len(idx):,} scenarios in {loop_s:.3f} s "
          f"= {per_scenario * 1e6:.1f} us each -> {baseline:.1f} s for {args.n:,} (extrapolated)")
    print(f"speed-up: {baseline / best:.0f}x (best), {baseline / first:.0f}x (first call); "
          f"grid == scalar on the {len(idx):,} sampled scenarios")
    print(f"target <= 1 s for 1M: {'met' if best <= 1.0 else 'NOT met'} (best of {args.repeats}); "
          f"first call {'within' if first <= 1.0 else 'over'} it (it pays the page faults of fresh arrays)")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          "(timings on a shared machine are noisy: compare the ratio)")


if __name__ == "__main__":
    main()
