"""``python -m metaxy.testing._moto_main HOST PORT``: moto's S3 server, one request at a time.

moto's own server is threaded and checks ``If-None-Match`` (S3 conditional put) and then writes
in two steps, so two concurrent Delta commits of the same log version could both "succeed" and
one commit would be lost. Real S3 makes the check atomic; serialising the requests restores
that guarantee (connections stay concurrent, request handling does not).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any


def main() -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serial(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))

    run_simple(host, port, serial, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
