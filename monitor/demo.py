"""`news-monitor demo`: serve the bundled sample feeds on loopback and run one pass of
the demo config against them, so a newcomer sees alerts with no network.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_CONTENT_TYPES = {
    ".xml": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
}


def demo_dir() -> Path:
    """The sample feeds: packaged beside the code in a wheel, config/demo in a checkout."""
    packaged = Path(__file__).parent / "demo_data"
    return packaged if packaged.is_dir() else Path(__file__).parents[1] / "config" / "demo"


def _handler_for(root: Path) -> type[BaseHTTPRequestHandler]:
    class FeedFiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = root / Path(self.path.split("?")[0]).name
            if path.suffix not in _CONTENT_TYPES or not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", f"{_CONTENT_TYPES[path.suffix]}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return FeedFiles


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve `root`'s feed files on a free loopback port; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
