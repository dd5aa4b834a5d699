"""`ionm console`: serve the web console's static files (appliance/console/static/).

The page itself talks MQTT 5 over the broker's WebSocket listener with the user's login; this
server only hands out files and `/config.json` (the broker URL and topic root), so it holds no
credentials and needs nothing from the running appliance. Why not mosquitto's own `http_dir`:
mosquitto 2.0.11 serves files without a Content-Type, and browsers refuse ES modules without
one (docs/console.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import ssl
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STATIC_DIR = Path(__file__).with_name("static")
log = logging.getLogger(__name__)

# the page may load only its own files and talk only to its own origin and WebSocket brokers
# (MQTT.js runs its keepalive timer in a blob: worker so a background tab keeps its connection)
CSP = ("default-src 'self'; worker-src 'self' blob:; connect-src 'self' ws: wss:; "
       "img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; form-action 'none'; "
       "base-uri 'none'")


class ConsoleHandler(SimpleHTTPRequestHandler):
    """Static files only (GET/HEAD), no directory listings, strict MIME types and headers."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".css": "text/css", ".json": "application/json",
                      ".md": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8"}

    def __init__(self, *a: Any, page_config: bytes, **kw: Any) -> None:
        self.page_config = page_config
        super().__init__(*a, directory=str(STATIC_DIR), **kw)

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] == "/config.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.page_config)))
            self.end_headers()
            self.wfile.write(self.page_config)
            return
        super().do_GET()

    def list_directory(self, path: Any) -> None:
        self.send_error(404, "no listing")
        return None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)


def make_server(host: str, port: int, broker_url: str = "", topic_root: str = "ionm/v1",
                cert_file: str | None = None, key_file: str | None = None
                ) -> ThreadingHTTPServer:
    """A bound server (port 0 = any free port: `server.server_address`); call serve_forever()."""
    page_config = json.dumps({"broker_url": broker_url, "topic_root": topic_root}).encode()
    server = ThreadingHTTPServer((host, port), partial(ConsoleHandler, page_config=page_config))
    server.daemon_threads = True
    if cert_file:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_file, key_file)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name="ionm-console", daemon=True)
    t.start()
    return t


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm console", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    ap.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    ap.add_argument("--broker", default="",
                    help="MQTT WebSocket URL the page connects to, e.g. wss://or3.example:8884/ "
                         "(default: the page's host, port 8884, wss when the page is https)")
    ap.add_argument("--topic-root", default="ionm/v1", help="mqtt.topic_root of the devices")
    ap.add_argument("--cert", default=None, help="TLS certificate (PEM): serve https")
    ap.add_argument("--key", default=None, help="TLS private key (PEM) for --cert")
    args = ap.parse_args(argv)
    if not 0 <= args.port <= 65535:
        ap.error(f"--port: got {args.port}, allowed: 0-65535")
    if bool(args.cert) != bool(args.key):
        ap.error("--cert and --key go together (https needs both)")
    if args.broker and not args.broker.startswith(("ws://", "wss://")):
        ap.error(f"--broker: got {args.broker!r}, allowed: a ws:// or wss:// URL")
    try:
        server = make_server(args.host, args.port, args.broker, args.topic_root,
                             args.cert, args.key)
    except (ssl.SSLError, FileNotFoundError, PermissionError) as e:
        print(f"ionm console: cannot load --cert/--key: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"ionm console: cannot listen on {args.host}:{args.port}: {e.strerror or e}",
              file=sys.stderr)
        return 1
    scheme = "https" if args.cert else "http"
    print(f"ionm console: {scheme}://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
