"""The page in a real browser: headless Chromium that trusts only the dev CA, against each runtime.

Needs Debian's chromium, chromium-driver and libnss3-tools (`make deps`); where they are missing
the tests skip with the reason, and with REQUIRE_BROWSER=1 (.ci/run) they fail instead.
"""

import contextlib
import os
import uuid
from urllib.parse import quote

import pytest
from selenium.common.exceptions import NoAlertPresentException, UnexpectedAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.browser import (
    browser_problem,
    load,
    serve_page,
    start_chromium,
    trusting_home,
)
from tests.e2e.helpers import HSTS, REPO, SECURITY_HEADERS, log_entry

# Written for people to look at (git-ignored).
SCREENSHOTS = REPO / ".run" / "browser"
# Right-to-left Hebrew and Arabic between emoji, one of them a ZWJ sequence (family).
INTERNATIONAL = "שלום 👋 مرحبا بالعالم 🌍 👨\u200d👩\u200d👧"
# Markup that runs script if a page ever inserts it as HTML: a script element and an event handler.
XSS = (
    "<script>window.xssRan = true; alert('script')</script>"
    "<img src=x onerror=\"window.xssRan = true; alert('onerror')\">"
)


@pytest.fixture
def open_browser(stack, tmp_path):
    """open_browser(trust_dev_ca=True): a new headless Chromium, each with its own HOME."""
    problem = browser_problem()
    if problem:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser required (REQUIRE_BROWSER=1): {problem}", pytrace=False)
        pytest.skip(f"browser test skipped: {problem}")
    drivers = []

    def open_browser(trust_dev_ca=True):
        home = tmp_path / f"home{len(drivers)}"
        trusting_home(home, stack.ca_bundle if trust_dev_ca else None)
        drivers.append(start_chromium(home))
        return drivers[-1]

    yield open_browser
    for driver in drivers:
        driver.quit()


@pytest.fixture
def browser(open_browser):
    """A headless Chromium whose only added trust is the stack's dev CA."""
    return open_browser()


def publish(stack, writer, title, body):
    response = writer.post(stack.base_url + "/api/posts", json={"title": title, "body": body})
    assert response.status_code == 201, response.text


def shown_posts(browser):
    """(title, excerpt) of each post on the page, as the browser renders them once the page's
    script has filled them in from the API."""
    WebDriverWait(browser, 10).until(
        lambda b: (
            b.execute_script("return document.getElementById('posts').dataset.state") != "loading"
        )
    )
    assert browser.execute_script("return document.getElementById('posts').dataset.state") == (
        "loaded"
    )
    return [
        (
            article.find_element(By.CSS_SELECTOR, "h2 bdi").text,
            article.find_element(By.CSS_SELECTOR, "p bdi").text,
        )
        for article in browser.find_elements(By.TAG_NAME, "article")
    ]


def console_errors(browser):
    """Console messages of level SEVERE (errors, CSP violations) since the last read."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_page_shows_titles_and_excerpts_exactly_as_text(stack, writer, browser, request):
    marker = uuid.uuid4().hex
    posts = [
        ("<script>", f"A title that is a tag, shown as text. {marker}"),
        (INTERNATIONAL, f"{INTERNATIONAL} {marker}"),
        # A bidi override stays inside its <bdi>: it cannot reorder what follows the title.
        ("\u202eevil title", f"reversed? {marker}"),
    ]
    for title, body in posts:
        publish(stack, writer, title, body)

    load(browser, stack.base_url + "/")
    assert browser.title == "Posts"
    shown = shown_posts(browser)
    for post in posts:
        assert post in shown
    # Text nodes only: no title or excerpt became an element.
    assert browser.find_elements(By.CSS_SELECTOR, "bdi *") == []

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / f"page-{request.node.callspec.params['stack']}.png"
    screenshot.unlink(missing_ok=True)
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_page_logs_no_console_error_and_no_csp_violation(stack, browser):
    load(browser, stack.base_url + "/")
    assert browser.title == "Posts"
    assert console_errors(browser) == []

    # Control: an inline script inserted into the page is refused by the CSP, and the refusal is
    # in the log read above.
    browser.execute_script(
        "const script = document.createElement('script');"
        "script.textContent = 'window.inlineRan = true';"
        "document.head.append(script);"
    )
    assert browser.execute_script("return window.inlineRan") is None
    (refusal,) = console_errors(browser)
    assert "violates the following Content Security Policy directive" in refusal


def test_xss_payload_in_a_post_opens_no_dialog_and_runs_no_script(stack, writer, browser):
    publish(stack, writer, XSS, XSS)
    load(browser, stack.base_url + "/")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (raises when no dialog is open)
    assert browser.execute_script("return window.xssRan") is None
    assert (XSS, XSS) in shown_posts(browser)

    # Control: the same payload as a page of its own opens both dialogs and runs its script. (A
    # dialog may open before the page has loaded: `get` then reports it, as the loop does.)
    with contextlib.suppress(UnexpectedAlertPresentException):
        browser.get("data:text/html;charset=utf-8," + quote(XSS))
    opened = []
    for _ in range(2):
        dialog = WebDriverWait(browser, 5).until(expected_conditions.alert_is_present())
        opened.append(dialog.text)
        dialog.accept()
    assert opened == ["script", "onerror"]
    assert browser.execute_script("return window.xssRan") is True


def test_browser_receives_the_promised_security_headers(stack, browser):
    events = load(browser, stack.base_url + "/")
    (page,) = [
        params["response"]
        for method, params in events
        if method == "Network.responseReceived"
        and params["response"]["url"] == stack.base_url + "/"
    ]
    assert page["status"] == 200
    # Trusted without any exception: the dev CA in the NSS database vouches for the certificate.
    assert page["securityState"] == "secure"
    headers = {name.lower(): value for name, value in page["headers"].items()}
    expected = {**SECURITY_HEADERS, "Strict-Transport-Security": HSTS[stack.configuration]}
    for name, value in expected.items():
        assert headers.get(name.lower()) == value, name


def test_browser_refuses_to_show_the_page_in_a_frame(stack, browser):
    framed = f"/?framed={uuid.uuid4().hex}"
    with serve_page(f'<iframe src="{stack.base_url}{framed}"></iframe>') as framing_page:
        browser.get(framing_page)
        browser.switch_to.frame(0)
        # Chromium's error page stands where the page would be.
        assert browser.execute_script("return document.URL") == "chrome-error://chromewebdata/"
    # nginx did serve it: the browser kept it out because of its headers (frame-ancestors 'none',
    # X-Frame-Options: DENY).
    log_entry(stack, "proxy", "the framed page", uri=framed, status=200)

    # Control: a page without those headers shows in the same kind of frame.
    with (
        serve_page("<p>a page that may be framed</p>") as plain,
        serve_page(f'<iframe src="{plain}"></iframe>') as framing_page,
    ):
        browser.get(framing_page)
        browser.switch_to.frame(0)
        assert browser.execute_script("return document.URL") == plain


def test_browser_without_the_dev_ca_refuses_the_stack(stack, open_browser):
    untrusting = open_browser(trust_dev_ca=False)
    events = load(untrusting, stack.base_url + "/")
    failures = [
        params["errorText"] for method, params in events if method == "Network.loadingFailed"
    ]
    assert failures == ["net::ERR_CERT_AUTHORITY_INVALID"]
    assert untrusting.title != "Posts"
