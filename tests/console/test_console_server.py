"""`ionm console`'s static server over real HTTP: the files the page needs with the MIME types
browsers require for ES modules, the security headers, no listing and no path escape, the
page's config, and bad arguments refused with one line."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.console.server import STATIC_DIR, main, make_server, serve_in_thread


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    s = make_server("127.0.0.1", 0, "wss://or3.example:8884/", "ionm/v1")
    serve_in_thread(s)
    yield s
    s.shutdown()
    s.server_close()


def _get(server: Any, path: str) -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


@pytest.mark.parametrize(("path", "mime"), [
    ("/", "text/html"), ("/js/app.js", "text/javascript"), ("/style.css", "text/css"),
    ("/vendor/mqtt.min.js", "text/javascript"), ("/vendor/uPlot.esm.js", "text/javascript"),
])
def test_console_server_serves_files_with_module_mime_types(server: Any, path: str,
                                                           mime: str) -> None:
    status, headers, body = _get(server, path)
    assert status == 200 and body
    assert headers["content-type"].startswith(mime)
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]


def test_console_server_config_no_listing_no_escape(server: Any) -> None:
    status, _, body = _get(server, "/config.json")
    assert status == 200
    assert json.loads(body) == {"broker_url": "wss://or3.example:8884/", "topic_root": "ionm/v1"}
    assert _get(server, "/vendor/")[0] == 404  # no directory listing
    status, _, body = _get(server, "/../server.py")
    assert status == 404 and b"make_server" not in body
    # every file the page loads is package data
    assert {"mqtt.min.js", "uPlot.esm.js", "LICENSE-mqtt.md", "LICENSE-uplot", "README.md"} <= {
        p.name for p in (STATIC_DIR / "vendor").iterdir()}


@pytest.mark.parametrize(("args", "says"), [
    (["--cert", "x.pem"], "--cert and --key go together"),
    (["--broker", "http://x"], "--broker: got 'http://x'"),
    (["--port", "70000"], "--port: got 70000"),
])
def test_console_server_bad_arguments(args: list[str], says: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and says in capsys.readouterr().err


def test_console_server_command_is_wired() -> None:
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "console", "--help"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "--broker" in r.stdout
