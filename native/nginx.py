"""nginx as a plain process, configured from the same files as the proxy container.

entrypoint_env() and render_templates() do what the official image's entrypoint does (source
proxy/docker-entrypoint.d/*.envsh, then 20-envsubst-on-templates.sh); prepare_conf_dir() lays out
the image's /etc/nginx tree under a run directory; Nginx runs it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

from native.processes import wait_until

REPO = Path(__file__).resolve().parents[1]
PROXY_DIR = REPO / "proxy"
NGINX_BIN = os.environ.get("NGINX_BIN", "/usr/sbin/nginx")
SYSTEM_MIME_TYPES = Path("/etc/nginx/mime.types")


def substitute(text: str, env: dict[str, str]) -> str:
    """TEXT as the image's 20-envsubst-on-templates.sh renders it: envsubst, told every variable
    of ENV whose name matches NGINX_ENVSUBST_FILTER (a regex; unset: all). The rest stay as is."""
    pattern = env.get("NGINX_ENVSUBST_FILTER", "")
    names = " ".join(f"${{{name}}}" for name in env if re.search(pattern, name))
    envsubst = shutil.which("envsubst")
    if envsubst is None:
        raise FileNotFoundError("envsubst not found: install Debian's gettext-base (make deps)")
    rendered = subprocess.run(
        [envsubst, names], input=text, env=env, capture_output=True, text=True, timeout=30,
        check=True,
    )  # fmt: skip
    return rendered.stdout


def entrypoint_env(env: dict[str, str]) -> dict[str, str]:
    """ENV plus what proxy/docker-entrypoint.d/*.envsh export, each sourced in order by sh as the
    image's entrypoint sources them (its `nginx` is NGINX_BIN)."""
    for script in sorted((PROXY_DIR / "docker-entrypoint.d").glob("*.envsh")):
        path = f"{Path(NGINX_BIN).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        printed = subprocess.run(
            ["sh", "-c", '. "$1" && env -0', "sh", str(script)],
            env={**env, "PATH": path}, capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
        env = {**env, **dict(item.split("=", 1) for item in printed.split("\0") if item)}
    return env


def render_templates(
    template_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    env: dict[str, str],
    suffix: str = ".template",
) -> list[Path]:
    """Render template_dir/**/*<suffix> into output_dir/** with the suffix dropped."""
    template_dir, output_dir = Path(template_dir), Path(output_dir)
    written = []
    for template in sorted(template_dir.rglob(f"*{suffix}")):
        if not template.is_file():
            continue
        target = output_dir / str(template.relative_to(template_dir))[: -len(suffix)]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(substitute(template.read_text(), env))
        written.append(target)
    return written


def prepare_conf_dir(rundir: str | os.PathLike, env: dict[str, str]) -> Path:
    """Lay out <rundir>/nginx like the image's /etc/nginx and return the path of its nginx.conf.

    Run it with: nginx -p <rundir>/nginx -c <that path> -g 'daemon off; pid <rundir>/nginx.pid;'
    """
    confdir = Path(rundir) / "nginx"
    if confdir.exists():
        shutil.rmtree(confdir)
    confdir.mkdir(parents=True)
    (confdir / "nginx.conf").symlink_to(PROXY_DIR / "nginx.conf")
    (confdir / "mime.types").symlink_to(SYSTEM_MIME_TYPES)
    (confdir / "snippets").symlink_to(PROXY_DIR / "snippets")
    render_templates(PROXY_DIR / "templates", confdir / "conf.d", entrypoint_env(env))
    return confdir / "nginx.conf"


def nginx_command(rundir: str | os.PathLike, *extra: str) -> list[str]:
    rundir = Path(rundir)
    return [
        NGINX_BIN,
        "-p", str(rundir / "nginx"),
        "-c", str(rundir / "nginx" / "nginx.conf"),
        "-g", f"daemon off; pid {rundir / 'nginx.pid'};",
        *extra,
    ]  # fmt: skip


def check_config(rundir: str | os.PathLike) -> subprocess.CompletedProcess:
    """`nginx -t` on a prepared run directory (output in .stderr)."""
    return subprocess.run(
        nginx_command(rundir, "-t"), capture_output=True, text=True, timeout=30, check=False
    )


class Nginx:
    """nginx in the foreground, logging to <rundir>/nginx.log; up once health_url answers 200."""

    def __init__(self, rundir: str | os.PathLike, env: dict[str, str], health_url: str):
        self.rundir = Path(rundir)
        self.env = env
        self.health_url = health_url
        self.log_path = self.rundir / "nginx.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> Nginx:
        prepare_conf_dir(self.rundir, self.env)
        checked = check_config(self.rundir)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{checked.stderr}")
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the life of the process
        self.proc = subprocess.Popen(nginx_command(self.rundir), stdout=log, stderr=log)
        log.close()

        def healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=1) as response:  # noqa: S310
                    return response.status == 200
            except OSError:
                return False

        try:
            wait_until(healthy, timeout, f"{self.health_url} to answer 200", 0.05, self.logs)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)  # graceful, like the image's STOPSIGNAL
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
