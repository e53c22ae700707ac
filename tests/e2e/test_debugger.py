"""No debugger behind the proxy: the probe that finds `flask run --debug`'s (tests/backend/
test_debugger.py) finds nothing here. Compose: the production image; its processes are checked by
tests/containers/test_containers.py::test_backend_runs_gunicorn_not_flask_run."""

from tests.debugger_probe import LOG_SIGNS, PROBES, debugger_evidence, signs_in


def test_no_debugger_page_console_or_pin_through_the_proxy(stack, client):
    answers = {}

    def get(path):
        answers[path] = client.get(stack.base_url + path)
        return answers[path].text

    assert debugger_evidence(get) == {path: [] for path in PROBES}
    # The console path is an unknown URL to the app, not a page.
    assert answers["/console"].status_code == 404
    assert answers["/console"].headers["Content-Type"] == "application/json"
    assert signs_in(stack.logs("backend"), LOG_SIGNS) == []
