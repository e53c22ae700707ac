"""Policy rules for the rendered compose configuration (`docker compose config --format json`).

Each rule takes the rendered config and returns a list of violations (empty = compliant), so a
test can run it on the real stack and on a deliberately broken copy.
"""

import re

PROXY = "proxy"
# Services that may talk to the database: its clients (backend, migrate, backup, the monitoring
# profile's exporter) and itself.
DB_CLIENTS = {"backend", "migrate", "backup", "mysqld-exporter", "db"}
# Services that may publish a port on loopback only (the monitoring profile's UI), on a
# non-internal network of their own.
LOOPBACK_PUBLISHERS = {"prometheus"}
# Exact version tag (major.minor.patch with an optional "v", any suffix such as -alpine) or a
# digest; never a floating tag.
PINNED_IMAGE = re.compile(r"^[\w./-]+(:v?\d+\.\d+\.\d+[\w.-]*|@sha256:[0-9a-f]{64})$")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE_KEY|API_KEY", re.IGNORECASE)


def _services(config):
    return config["services"].items()


def _is_one_shot(name, config):
    """A job other services wait on to *complete* (migrate): its exit code is its health."""
    return any(
        dep.get("condition") == "service_completed_successfully"
        for _, svc in _services(config)
        for dep_name, dep in (svc.get("depends_on") or {}).items()
        if dep_name == name
    )


def only_proxy_publishes(config):
    problems = []
    for name, svc in _services(config):
        ports = svc.get("ports") or []
        if name == PROXY or not ports:
            continue
        if name in LOOPBACK_PUBLISHERS and all(p.get("host_ip") == "127.0.0.1" for p in ports):
            continue
        problems.append(f"{name} publishes ports")
    return problems


def private_networks_are_internal(config):
    problems = []
    for name, svc in _services(config):
        public = [n for n in svc.get("networks") or {} if not config["networks"][n].get("internal")]
        if name in LOOPBACK_PUBLISHERS:
            # Its own network, which only carries its published port: shared with no one.
            public = [n for n in public if _members(config, n) != {name}]
        if public and name != PROXY:
            problems.append(f"{name} is on non-internal network(s) {public}")
    if PROXY in config["services"]:
        proxy_nets = set(config["services"][PROXY].get("networks") or {})
        db_nets = set(config["services"].get("db", {}).get("networks") or {})
        if proxy_nets & db_nets:
            problems.append(f"proxy shares {sorted(proxy_nets & db_nets)} with the database")
    return problems


def _members(config, network):
    return {name for name, svc in _services(config) if network in (svc.get("networks") or {})}


def only_db_clients_reach_db(config):
    db_nets = set(config["services"].get("db", {}).get("networks") or {})
    return [
        f"{name} can reach the database"
        for name, svc in _services(config)
        if name not in DB_CLIENTS and db_nets & set(svc.get("networks") or {})
    ]


def every_service_has_healthcheck(config):
    problems = []
    for name, svc in _services(config):
        check = svc.get("healthcheck") or {}
        if _is_one_shot(name, config):
            continue
        if check.get("disable") or not check.get("test"):
            problems.append(f"{name} has no healthcheck")
    return problems


def no_secret_in_environment(config, secret_values=()):
    problems = []
    for name, svc in _services(config):
        for key, value in (svc.get("environment") or {}).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                problems.append(f"{name}: {key} carries a secret in the environment")
            if value and value in secret_values:
                problems.append(f"{name}: {key} holds a secret value")
    return problems


def images_are_pinned(config):
    problems = []
    for name, svc in _services(config):
        refs = [svc["image"]] if "image" in svc and "build" not in svc else []
        refs += [
            v for k, v in (svc.get("build") or {}).get("args", {}).items() if k.endswith("_IMAGE")
        ]
        problems += [
            f"{name}: image {ref!r} is not pinned to an exact version"
            for ref in refs
            if not PINNED_IMAGE.match(ref)
        ]
    return problems


# The one process of the stack that runs as root: a job without network that makes the backup
# directories uid 999's (compose.yaml), with the capabilities that takes.
ROOT_JOBS = {"backup-dir": ["CHOWN", "FOWNER"]}


def _allowed_root_job(name, svc, config):
    return (
        _is_one_shot(name, config)
        and svc.get("network_mode") == "none"
        and sorted(c.upper() for c in svc.get("cap_add") or []) == ROOT_JOBS.get(name)
    )


def services_are_hardened(config):
    """Production: non-root, read-only root, no capabilities, no privilege gain, rotated logs."""
    problems = []
    for name, svc in _services(config):
        user = str(svc.get("user", "")).split(":")[0]
        if user in ("", "0", "root") and not _allowed_root_job(name, svc, config):
            problems.append(f"{name} runs as root")
        if svc.get("cap_add") and not _allowed_root_job(name, svc, config):
            problems.append(f"{name} adds capabilities")
        if not svc.get("read_only"):
            problems.append(f"{name} has a writable root filesystem")
        if [c.upper() for c in svc.get("cap_drop") or []] != ["ALL"]:
            problems.append(f"{name} does not drop all capabilities")
        if "no-new-privileges:true" not in (svc.get("security_opt") or []):
            problems.append(f"{name} may gain privileges (no-new-privileges missing)")
        logging = svc.get("logging") or {}
        options = logging.get("options") or {}
        if logging.get("driver") != "json-file" or not {"max-size", "max-file"} <= set(options):
            problems.append(f"{name} has no log rotation")
    return problems


def services_have_limits(config):
    problems = []
    for name, svc in _services(config):
        resources = (svc.get("deploy") or {}).get("resources") or {}
        missing = {"cpus", "memory", "pids"} - set(resources.get("limits") or {})
        if missing:
            problems.append(f"{name} has no {sorted(missing)} limit")
        if "memory" not in (resources.get("reservations") or {}):
            problems.append(f"{name} has no memory reservation")
    return problems


def long_running_services_restart(config):
    return [
        f"{name} has no restart policy"
        for name, svc in _services(config)
        if not _is_one_shot(name, config)
        and svc.get("restart") not in ("always", "unless-stopped", "on-failure")
    ]


def startup_order_is_safe(config):
    """db healthy -> migrate completed -> backend healthy -> proxy."""
    expected = {
        ("migrate", "db"): "service_healthy",
        ("backend", "migrate"): "service_completed_successfully",
        ("proxy", "backend"): "service_healthy",
    }
    problems = []
    for (svc, dep), condition in expected.items():
        got = (config["services"][svc].get("depends_on") or {}).get(dep, {}).get("condition")
        if got != condition:
            problems.append(f"{svc} waits for {dep} with {got!r}, not {condition!r}")
    return problems


_SIZE = re.compile(r"^(\d+)([kmg]?)$", re.IGNORECASE)
_UNIT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _tmpfs_mounts(svc):
    """(path, size in bytes or None) of each tmpfs of a service, short and long syntax."""
    mounts = []
    for entry in svc.get("tmpfs") or []:
        path, _, options = entry.partition(":")
        sizes = [o.split("=", 1)[1] for o in options.split(",") if o.startswith("size=")]
        match = _SIZE.match(sizes[0]) if sizes else None
        mounts.append((path, int(match[1]) * _UNIT[match[2].lower()] if match else None))
    for volume in svc.get("volumes") or []:
        if volume.get("type") == "tmpfs":
            size = (volume.get("tmpfs") or {}).get("size")
            mounts.append((volume["target"], int(size) if size else None))
    return mounts


def every_tmpfs_is_sized(config):
    """A tmpfs is RAM charged to the container: each has a size, and together they stay below the
    service's memory limit (unsized, one may grow to half the host's RAM)."""
    problems = []
    for name, svc in _services(config):
        mounts = _tmpfs_mounts(svc)
        problems += [f"{name}: tmpfs {path} has no size" for path, size in mounts if not size]
        limit = ((svc.get("deploy") or {}).get("resources") or {}).get("limits", {}).get("memory")
        total = sum(size or 0 for _, size in mounts)
        if limit and total >= int(limit):
            problems.append(f"{name}: tmpfs sizes ({total} bytes) reach its memory limit {limit}")
    return problems


DEV_RULES = [
    only_proxy_publishes,
    private_networks_are_internal,
    only_db_clients_reach_db,
    every_service_has_healthcheck,
    no_secret_in_environment,
    images_are_pinned,
    startup_order_is_safe,
    every_tmpfs_is_sized,
]
PROD_RULES = DEV_RULES + [
    services_are_hardened,
    services_have_limits,
    long_running_services_restart,
]
