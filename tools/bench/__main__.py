"""`make bench`: see tools/bench/__init__.py."""

from __future__ import annotations

import collections
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from native.mariadb import find_program
from native.nginx import NGINX_BIN
from native.processes import free_port
from native.stack import REPO, NativeStack, children, http_status, tail
from tools.bench import driver

OUT = REPO / ".run" / "bench"
LUA = Path(__file__).with_name("wrk-report.lua")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
PROFILE_SECONDS = 10
CONNECTIONS = (1, 32, 128)
# The list page as clients get it: the default 20 items, each with a ~300-byte excerpt.
READ = "/api/posts"
POSTS, BODY = 20, ("All work and no play makes a benchmark a dull post. " * 6)[:300]
# What production allows each service, in MiB, read from compose.prod.yaml; natively one gunicorn
# master with 2 workers is one backend replica.
SERVICE_OF = {"nginx": "proxy", "gunicorn": "backend", "mariadbd": "db"}


class BenchStack(NativeStack):
    """The native stack with the per-client limits lifted: one wrk process is one client here.
    Only this run's rendered configuration changes; proxy/proxy.env keeps the shipped values."""

    def proxy_env(self):
        env = super().proxy_env()
        env.update(PROXY_RATE="1000000r/s", PROXY_RATE_BURST="1000000", PROXY_CONN_LIMIT="4096")
        return env


@dataclass(frozen=True)
class Scenario:
    name: str
    url: str
    connections: int


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def scenarios(stack: BenchStack) -> list[Scenario]:
    # 127.0.0.1, not localhost: wrk takes the first address, which may be ::1, where nothing
    # listens. nginx serves the name 127.0.0.1 natively (native/stack.py).
    proxied = f"https://127.0.0.1:{stack.https_port}"
    direct = f"http://127.0.0.1:{stack.backend_port}"
    found = []
    for connections in CONNECTIONS:
        found.append(Scenario("read via nginx+TLS", proxied + READ, connections))
        found.append(Scenario("read direct", direct + READ, connections))
    for connections in CONNECTIONS:
        found.append(Scenario("trivial via nginx+TLS", proxied + "/healthz", connections))
        found.append(Scenario("trivial direct", direct + "/healthz", connections))
    health = f"http://127.0.0.1:{stack.health_port}/nginx-health"
    found.append(Scenario("nginx's own health", health, 32))
    return found


def wrk(scenario: Scenario, seconds: int) -> Result:
    command = [
        "wrk", f"-t{min(2, scenario.connections)}", f"-c{scenario.connections}",
        f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), scenario.url,
    ]  # fmt: skip
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    summary = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    errors = sum(summary[key] for key in ("connect", "read", "write", "status", "timeout"))
    return Result(
        rps=summary["requests"] / (summary["duration_us"] / 1e6),
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=errors,
    )


class ComposeLoader(yaml.SafeLoader):
    """YAML with compose's merge tags (!reset, !override) read as the plain values they tag."""


def _plain(loader, _tag, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


ComposeLoader.add_multi_constructor("!", _plain)


def limits_mib():
    """Each program's memory limit in production (compose.prod.yaml), in MiB."""
    text = (REPO / "compose.prod.yaml").read_text()
    services = yaml.load(text, Loader=ComposeLoader)["services"]  # noqa: S506 - a safe loader
    return {
        program: int(services[service]["deploy"]["resources"]["limits"]["memory"].removesuffix("M"))
        for program, service in SERVICE_OF.items()
    }


class MemoryPeaks:
    """Peak resident memory of each service (all its processes together), sampled 4 times a
    second on a thread while the `with` block runs. RSS counts pages the gunicorn workers share
    with their master once per process: an upper bound."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.peak_kib = dict.fromkeys(pids, 0)
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self.loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self._thread.join(5)

    @staticmethod
    def rss_kib(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def loop(self):
        while not self.stopped.wait(0.25):
            for name, pid in self.pids.items():
                total = sum(self.rss_kib(p) for p in (pid, *children(pid)))
                self.peak_kib[name] = max(self.peak_kib[name], total)


def seed(stack: BenchStack) -> None:
    """Enough posts for a full default page, written straight to gunicorn (no write limit)."""
    with requests.Session() as session:
        session.trust_env = False
        token = (stack.secrets_dir / "api_tokens").read_text().split()[0]
        session.headers["Authorization"] = f"Bearer {token}"
        for number in range(POSTS):
            response = session.post(
                f"http://127.0.0.1:{stack.backend_port}/api/posts",
                json={"title": f"Benchmark post {number}", "body": BODY},
                timeout=10,
            )
            response.raise_for_status()


def profile(stack: BenchStack, scenario: Scenario) -> tuple[str, int]:
    """py-spy samples of the gunicorn workers while wrk runs SCENARIO: (raw stacks, samples)."""
    raw = OUT / "profile.txt"
    master = stack.running_pids()["backend"]
    spy = subprocess.Popen(
        [
            Path(sys.executable).with_name("py-spy"), "record", "--pid", str(master),
            "--subprocesses", "--rate", "250", "--duration", str(PROFILE_SECONDS),
            "--format", "raw", "--output", str(raw), "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    time.sleep(1)  # py-spy attaches
    wrk(scenario, PROFILE_SECONDS - 2)
    _, err = spy.communicate(timeout=60)
    if spy.returncode != 0 or not raw.exists():
        return f"(py-spy failed: {err.strip()[-300:]})", 0
    text = raw.read_text()
    return text, sum(count for _, count in collapsed_stacks(text))


# Where a sample's time goes: the innermost frame of a known package decides (a socket read inside
# PyMySQL counts as PyMySQL). py-spy names files relative to their sys.path entry.
PACKAGES = [
    ("PyMySQL (driver: protocol, row decoding, socket)", re.compile(r"^pymysql/")),
    ("SQLAlchemy (engine, pool, result rows)", re.compile(r"^sqlalchemy/")),
    ("JSON encoding", re.compile(r"^json/|^flask/json/")),
    ("logging (access and app lines)", re.compile(r"^logging/|^app/logging\.py|glogging\.py")),
    ("Jinja2", re.compile(r"^jinja2/")),
    ("Werkzeug (HTTP, routing, response objects)", re.compile(r"^werkzeug/")),
    ("Flask (request context, hooks)", re.compile(r"^flask/")),
    ("gunicorn (worker loop, HTTP parser)", re.compile(r"^gunicorn/")),
    ("the app (backend/app)", re.compile(r"^app/")),
]


def frame_file(frame: str) -> str:
    # py-spy raw frames: "function (path/to/file.py:line)"; the root is "process <pid>:...".
    return frame.rsplit("(", 1)[-1].rstrip(")").rsplit(":", 1)[0]


def collapsed_stacks(text: str) -> list[tuple[str, int]]:
    """py-spy's raw lines, "frame;frame;... <samples>", as (stack, samples). A process's command
    line can hold a newline, which breaks its line in two: the part without a count is dropped."""
    return [(m[1], int(m[2])) for m in re.finditer(r"^(.*) (\d+)$", text, re.MULTILINE)]


def summarize_profile(text: str, total: int, top: int = 20) -> str:
    if not total:
        return text
    by_package = collections.Counter()
    inclusive = collections.Counter()
    leaf = collections.Counter()
    for stack, count in collapsed_stacks(text):
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        label = "other (stdlib, interpreter)"
        for frame in reversed(frames):
            path = frame_file(frame)
            match = next((name for name, pattern in PACKAGES if pattern.search(path)), None)
            if match:
                label = match
                break
        by_package[label] += count
        for name in {f"{f.rsplit('(', 1)[0].strip()} ({frame_file(f)})" for f in frames}:
            inclusive[name] += count
        leaf[frames[-1].replace(str(REPO) + "/", "")] += count
    lines = ["| where (innermost known package) | share of samples |", "|---|---:|"]
    for label, count in by_package.most_common():
        lines.append(f"| {label} | {100 * count / total:.1f}% |")
    # Frames in nearly every sample are the worker loop around each request: left out.
    inside = [(name, count) for name, count in inclusive.most_common() if count < 0.9 * total]
    lines += ["", f"Top {top} functions below the worker loop, inclusive (with what they call):"]
    lines += ["", "| function | share |", "|---|---:|"]
    for name, count in inside[:top]:
        lines.append(f"| `{name}` | {100 * count / total:.1f}% |")
    lines += ["", "Top 10 lines where the samples were taken (system calls show as their caller):"]
    lines += ["", "| line | share |", "|---|---:|"]
    for name, count in leaf.most_common(10):
        lines.append(f"| `{name}` | {100 * count / total:.1f}% |")
    return "\n".join(lines)


def median_range(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def target_line(label, target, values, better="higher", unit=""):
    """A table row: the median of per-round VALUES against TARGET."""
    mid, low, high = median_range(values)
    met = mid >= target if better == "higher" else mid <= target
    sign = ">=" if better == "higher" else "<="
    verdict = "met" if met else "NOT met"
    row = [label, f"{mid:.2f}{unit}", f"{low:.2f}-{high:.2f}", f"{sign} {target}{unit}", verdict]
    return "| " + " | ".join(row) + " |"


def ratio_line(label, target, numerators, denominators, better="higher"):
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True) if b]
    return target_line(label, target, ratios, better)


def chart(path: Path, plan: list[Scenario], results: dict[Scenario, list[Result]], measured: str):
    """Throughput and p99 against connections, one line per path (medians of the rounds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for name in ("read via nginx+TLS", "read direct", "trivial via nginx+TLS", "trivial direct"):
        runs = {s.connections: results[s] for s in plan if s.name == name}
        style = ("o" if name.startswith("read") else "s") + ("-" if "nginx" in name else "--")
        rps = [statistics.median(r.rps for r in runs[c]) for c in CONNECTIONS]
        p99 = [statistics.median(r.p99_ms for r in runs[c]) for c in CONNECTIONS]
        left.plot(CONNECTIONS, rps, style, label=name)
        right.plot(CONNECTIONS, p99, style, label=name)
    for axes, label in ((left, "requests per second"), (right, "p99 latency, ms (log scale)")):
        axes.set_xscale("log")
        axes.set_xticks(CONNECTIONS, [str(c) for c in CONNECTIONS])
        axes.set_xlabel("connections")
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
    right.set_yscale("log")
    left.legend()
    figure.suptitle(f"make bench: {measured}; {ROUNDS} rounds of {SECONDS} s", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> int:
    compare_drivers = os.environ.get("BENCH_C_DRIVER") == "1"
    if compare_drivers and driver.missing():
        print(f"bench: {driver.missing()}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    stack = BenchStack(OUT / "stack", http_port=free_port(), https_port=free_port())
    stack.up()
    try:
        seed(stack)
        status = http_status(f"{stack.base_url}{READ}", stack.ca_bundle)
        if status != 200:
            raise RuntimeError(f"{READ} answered {status} after seeding")
        pids = stack.running_pids()
        names = {"nginx": pids["proxy"], "gunicorn": pids["backend"], "mariadbd": pids["db"]}
        plan = scenarios(stack)
        load_before = os.getloadavg()
        results: dict[Scenario, list[Result]] = {s: [] for s in plan}
        print(f"bench: {len(plan)} scenarios x {ROUNDS} rounds x {SECONDS} s", flush=True)
        with MemoryPeaks(names) as memory:
            for scenario in plan:  # warm-up: imports, pools, TLS session caches
                wrk(scenario, 1)
            for number in range(ROUNDS):
                for scenario in plan:
                    result = wrk(scenario, SECONDS)
                    results[scenario].append(result)
                    print(
                        f"  round {number + 1}: {scenario.name} c={scenario.connections}: "
                        f"{result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms",
                        flush=True,
                    )
        load_after = os.getloadavg()
        measured = versions(stack.log_dir / "backend.log")  # before down() removes the logs
        read = next(s for s in plan if s.name.startswith("read via") and s.connections == 32)
        profile_text, samples = profile(stack, read)
        drivers = {}
        if compare_drivers:
            print("bench: the list query alone, PyMySQL against mysqlclient", flush=True)
            drivers = driver.compare(stack.db_client_env("app"), ROUNDS, SECONDS)
    except BaseException:
        print("\n".join(tail(stack.log_dir / f"{s}.log", 10) for s in ("proxy", "backend")))
        raise
    finally:
        stack.down()

    profile_summary = summarize_profile(profile_text, samples)
    report = render(plan, results, measured, memory.peak_kib, profile_summary)
    if drivers:
        report += render_drivers(drivers)
    report += (
        f"\nLoad average (1 min) before the rounds {load_before[0]:.2f}, after {load_after[0]:.2f}:"
        " anything else running on the machine meanwhile shows as spread between rounds.\n"
    )
    (OUT / "report.md").write_text(report)
    try:
        chart(OUT / "chart.png", plan, results, measured)
        charted = f"chart:  {OUT / 'chart.png'}"
    except ImportError:
        charted = "chart: skipped (matplotlib missing: pip install -r tools/bench/requirements.txt)"
    print(report)
    print(f"report: {OUT / 'report.md'}\n{charted}")
    return 0


def render_drivers(drivers: dict[str, list[float]]) -> str:
    pure, c = drivers.values()
    ratio, low, high = median_range([b / a for a, b in zip(pure, c, strict=True)])
    lines = [
        "",
        "## The list query alone, by driver (BENCH_C_DRIVER=1; tools/bench/driver.py)",
        "",
        f"{driver.PROCESSES} processes of {driver.THREADS} threads, as gunicorn runs the backend,"
        " each running the list page's query through SQLAlchemy's pool as fast as it can.",
        "",
        "| driver | queries/s | spread |",
        "|---|---:|---:|",
    ]
    for name, runs in drivers.items():
        median, least, most = median_range(runs)
        lines.append(f"| {name} | {median:.0f} | {100 * (most - least) / median:.0f}% |")
    lines += ["", f"mysqlclient ÷ PyMySQL, per round: {ratio:.2f} (range {low:.2f}-{high:.2f})", ""]
    return "\n".join(lines)


def versions(backend_log: Path) -> str:
    """What this run measured: the native stack's servers, the lowest supported versions (README,
    "Supported versions"), not the containers' shipped ones; the worker class gunicorn says it
    used in BACKEND_LOG."""

    def printed(*command):
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
        return result.stdout + result.stderr

    nginx = re.search(r"nginx/(\S+)", printed(NGINX_BIN, "-v"))[1]
    mariadb = re.search(r"Ver (\S+)", printed(find_program("mariadbd"), "--version"))[1]
    gunicorn = printed(sys.executable, "-m", "gunicorn", "--version").split()[-1].strip("()")
    python = ".".join(map(str, sys.version_info[:3]))
    worker = re.search(r"Using worker: (\w+)", backend_log.read_text())[1]
    return f"nginx {nginx}, MariaDB {mariadb}, Python {python}, gunicorn {gunicorn} ({worker})"


def render(plan, results, measured, peak_kib, profile_summary) -> str:
    def pick(name, connections):
        return results[next(s for s in plan if s.name == name and s.connections == connections)]

    cores = len(os.sched_getaffinity(0))
    lines = [
        f"# make bench: {cores} cores, {ROUNDS} rounds of {SECONDS} s per scenario, interleaved",
        "",
        f"Measured on the native stack: {measured}.",
        "",
        f"`GET {READ}` returns {POSTS} posts of ~300 bytes. Medians of the rounds; the spread is",
        "(max - min) / median of req/s. Errors: wrk's socket errors plus non-2xx answers.",
        "",
        "| scenario | connections | req/s | spread | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in plan:
        runs = results[s]
        rps, low, high = median_range([r.rps for r in runs])
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        errors = sum(r.errors for r in runs)
        spread = (high - low) / rps if rps else 0
        lines.append(
            f"| {s.name} | {s.connections} | {rps:.0f} | {100 * spread:.0f}% | {p50:.2f} "
            f"| {p99:.2f} | {errors} |"
        )

    def rps(name, connections):
        return [r.rps for r in pick(name, connections)]

    read_128 = pick("read via nginx+TLS", 128)
    lines += [
        "",
        "| ratio (per round, then the median) | median | range | target | |",
        "|---|---:|---:|---:|---|",
        ratio_line(
            "read ÷ trivial, both via nginx, 32 connections",
            0.60,
            rps("read via nginx+TLS", 32),
            rps("trivial via nginx+TLS", 32),
        ),
        ratio_line(
            "read ÷ trivial, both via nginx, 1 connection",
            0.67,
            rps("read via nginx+TLS", 1),
            rps("trivial via nginx+TLS", 1),
        ),
        target_line(
            "read p50 - trivial p50, both via nginx, 1 connection (the database path's cost)",
            1.0,
            [
                read.p50_ms - trivial.p50_ms
                for read, trivial in zip(
                    pick("read via nginx+TLS", 1), pick("trivial via nginx+TLS", 1), strict=True
                )
            ],
            better="lower",
            unit=" ms",
        ),
        ratio_line(
            "read via nginx ÷ read direct, 32 connections (1 - this = nginx+TLS share)",
            0.85,
            rps("read via nginx+TLS", 32),
            rps("read direct", 32),
        ),
        ratio_line(
            "trivial via nginx ÷ trivial direct, 32 connections",
            0.70,
            rps("trivial via nginx+TLS", 32),
            rps("trivial direct", 32),
        ),
        ratio_line(
            "p99 ÷ p50, read via nginx, 128 connections",
            2.0,
            [r.p99_ms for r in read_128],
            [r.p50_ms for r in read_128],
            better="lower",
        ),
        "",
        f"Errors at 128 connections via nginx: {sum(r.errors for r in read_128)} (target 0).",
        "",
        "| service | peak RSS, all its processes | production limit |",
        "|---|---:|---:|",
    ]
    for name, kib in peak_kib.items():
        lines.append(f"| {name} | {kib / 1024:.0f} MiB | {limits_mib()[name]} MiB |")
    lines += [
        "",
        f"## Profile: gunicorn workers, read via nginx+TLS at 32 connections, {PROFILE_SECONDS} s",
        "",
        "py-spy samples of the workers while they run Python (idle waits excluded).",
        "",
        profile_summary,
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
