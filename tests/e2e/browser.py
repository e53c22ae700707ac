"""Debian's headless Chromium, driven by Selenium, trusting the dev CA through its NSS database.

No certificate error is ignored: the browser trusts the stack because the dev CA is imported into
the NSS database of a throw-away HOME ($HOME/.pki/nssdb, where Chromium on Linux looks), so the
developer's own profile and certificate store are never read or changed.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.stack import wait_until

# Debian's packages (make deps). Named explicitly, so Selenium Manager never looks for, or
# downloads, a browser or a driver of its own.
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = {CHROMIUM: "chromium", CHROMEDRIVER: "chromium-driver"}
# Seconds any one WebDriver command may take (a page load has 30).
COMMAND_TIMEOUT = 60
# Traffic goes to the stack under test and nowhere else: no proxy, no name but localhost resolved
# (not even a DNS query leaves), none of the browser's own background requests (component
# updates, sync, metrics).
FLAGS = (
    "--headless=new",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--window-size=1280,900",
)


def browser_problem():
    """Why the browser tests cannot run here (one sentence), or None when they can."""
    for path, package in PACKAGES.items():
        if not path.is_file():
            return f"{path} not found (`make deps` installs Debian's {package})"
    if shutil.which("certutil") is None:
        return "no certutil to import the dev CA (`make deps` installs Debian's libnss3-tools)"
    return None


def trusting_home(home: Path, ca_bundle=None) -> Path:
    """HOME with an NSS database that trusts CA_BUNDLE to identify servers ("C,,"), or nothing."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    certutil = ["certutil", "-d", f"sql:{nssdb}"]
    subprocess.run([*certutil, "-N", "--empty-password"], check=True, capture_output=True)
    if ca_bundle is not None:
        add = ["-A", "-t", "C,,", "-n", "hardened-stack dev CA", "-i", str(ca_bundle)]
        subprocess.run([*certutil, *add], check=True, capture_output=True)
    return home


def start_chromium(home: Path) -> webdriver.Chrome:
    """Headless Chromium with HOME as its home; its console and network events are logged."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={home / 'profile'}")
    # Start on a blank page: Chromium's new tab page (Debian's default search engine) would
    # request start.duckduckgo.com.
    startup = {"restore_on_startup": 4, "startup_urls": ["about:blank"]}
    options.add_experimental_option("prefs", {"session": startup})
    # Chromium refuses to start as root with its sandbox on (the CI and test machines run as root).
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    # An open dialog (alert) stays open for the test to find, instead of being dismissed unseen.
    options.unhandled_prompt_behavior = "ignore"
    # "browser": the console (errors, CSP violations); "performance": DevTools network events.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # A bare environment: no proxy, display or session bus of the developer's reaches the browser.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    service = Service(str(CHROMEDRIVER), env=env, log_output=str(home / "chromedriver.log"))
    # Selenium waits for each chromedriver answer as long as the socket default allows (forever),
    # read once, when the driver is made; a dialog inside a frame can hold an answer back for good.
    default_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(COMMAND_TIMEOUT)
    try:
        driver = webdriver.Chrome(options=options, service=service)
    finally:
        socket.setdefaulttimeout(default_timeout)
    driver.set_page_load_timeout(30)
    return driver


def load(driver, url, timeout=10):
    """Open URL and wait until every request the page started has finished (the favicon comes
    after the load event); returns its DevTools network events, (method, params) in order."""
    driver.get(url)
    events, started, finished = [], set(), set()

    def settled():
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message["method"], message["params"]
            if not method.startswith("Network."):
                continue
            events.append((method, params))
            if method == "Network.requestWillBeSent":
                started.add(params["requestId"])
            elif method in ("Network.loadingFinished", "Network.loadingFailed"):
                finished.add(params["requestId"])
        return started and started <= finished

    wait_until(settled, timeout, f"the requests of {url} to finish")
    return events


@contextlib.contextmanager
def serve_page(html: str):
    """Serve HTML as http://127.0.0.1:<port>/ (another origin than the stack's) while in the
    block; yields that URL. On loopback like the stack: Chromium lets no public page, not even a
    data: URL, reach into the local network."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):  # the name http.server calls
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Page) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()
            thread.join(timeout=5)
