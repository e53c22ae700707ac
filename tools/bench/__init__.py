"""`make bench`: a load report of the stack, taken in one run on this machine.

    python -m tools.bench            # BENCH_ROUNDS=3 BENCH_SECONDS=5 by default
    BENCH_C_DRIVER=1 python -m tools.bench   # also the list query by driver (tools/bench/driver.py)

Starts its own native stack (native/, under .run/bench/) with the per-client limits
lifted for this run only, seeds 20 posts of ~300 bytes, then runs wrk (tools/bench/wrk-report.lua)
on every scenario in turn, round after round (A, B, C, ..., A, B, C, ...), so that load from
elsewhere on the machine falls on all of them alike; reports each scenario's median and spread,
the ratios docs/performance.md sets targets for, as medians of the per-round ratios, peak memory,
and a py-spy profile of the read path. Writes .run/bench/report.md and .run/bench/chart.png. No
response is cached.
"""
