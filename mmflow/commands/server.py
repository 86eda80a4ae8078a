"""`mmflow server`: a local Prefect server with its UI, in the foreground (Ctrl-C stops it).

It runs `prefect server start` with analytics off and the UI pointed at this server's API, and
prints the address of the UI and the PREFECT_API_URL to export for `mmflow serve` and `mmflow run`.
A first start creates the SQLite database and takes about 40 s on 2 cores; later starts about 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from mmflow.cli import UserError

WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def add_parser(subparsers) -> None:
    """Register `mmflow server`."""
    p = subparsers.add_parser(
        "server",
        help="start a local Prefect server and UI in the foreground (Ctrl-C stops it)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for other machines)",
    )
    p.add_argument("--port", type=int, default=4200, help="port to listen on (default 4200)")
    p.add_argument(
        "--home",
        help="Prefect home holding the server's database (default $PREFECT_HOME or ~/.prefect)",
    )
    p.set_defaults(handler=run)


def urls(host: str, port: int, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(the address a browser opens, the API URL the browser and clients use)."""
    env = os.environ if environ is None else environ
    name = socket.gethostname() if host in WILDCARD_HOSTS else host
    if ":" in name:  # an IPv6 literal
        name = f"[{name}]"
    api = env.get("PREFECT_UI_API_URL") or f"http://{name}:{port}/api"
    return api.removesuffix("/api"), api


def server_env(host: str, port: int, home: str | None = None) -> dict[str, str]:
    """The environment of `prefect server start`: analytics off, the UI pointed at this API."""
    env = dict(os.environ)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # no telemetry calls (and no DNS errors)
    env["PREFECT_UI_API_URL"] = urls(host, port)[1]
    env.pop("PREFECT_API_URL", None)  # the server is not a client of another API
    if home:
        env["PREFECT_HOME"] = os.path.abspath(home)
    return env


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is a server already running "
                f"there? Pick another port with --port"
            ) from exc


def _announce_when_healthy(api: str, ui: str, process: subprocess.Popen) -> None:
    """Print one line when /api/health answers (a fresh database takes ~40 s)."""
    started = time.monotonic()
    while process.poll() is None:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as response:
                if response.status == 200:
                    seconds = time.monotonic() - started
                    create_store_limit(api)
                    print(f"\nmmflow server: ready after {seconds:.0f} s - open {ui}", flush=True)
                    return
        except OSError:
            pass
        time.sleep(1)


def create_store_limit(api: str) -> None:
    """Create the one-slot global concurrency limit every store write takes, if missing."""
    from engine.settings import STORE_CONCURRENCY_LIMIT

    body = json.dumps({"name": STORE_CONCURRENCY_LIMIT, "limit": 1}).encode()
    request = urllib.request.Request(
        f"{api}/v2/concurrency_limits/",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # 409: it exists already
            print(f"mmflow server: could not create {STORE_CONCURRENCY_LIMIT}: {exc}", flush=True)
    except OSError as exc:
        print(f"mmflow server: could not create {STORE_CONCURRENCY_LIMIT}: {exc}", flush=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop(process: subprocess.Popen) -> None:
    """Stop the server: Ctrl-C in a terminal has reached it too, so give it a moment to shut its
    services down; then SIGTERM, then SIGKILL."""
    for send, seconds in ((None, 5), (process.terminate, 15), (process.kill, 5)):
        if process.poll() is not None:
            return
        if send is not None:
            send()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pass


def run(args: argparse.Namespace) -> int:
    """Start the server, print where it is, and wait for it (Ctrl-C or SIGTERM stops both)."""
    _check_port_free(args.host, args.port)
    ui, api = urls(args.host, args.port)
    env = server_env(args.host, args.port, args.home)
    print(
        f"Prefect server starting on {args.host}:{args.port} (Prefect home "
        f"{env.get('PREFECT_HOME', '~/.prefect')}); the first start takes about 40 s.\n"
        f"  UI:  {ui}   (the new UI is under {ui}/v2/)\n"
        f"  In the shell where you run `mmflow serve` or `mmflow run`:\n"
        f"    export PREFECT_API_URL={api}\n"
        f"  Ctrl-C stops the server.",
        flush=True,
    )
    if args.host in WILDCARD_HOSTS:
        print(
            f"  Browsers on other machines must reach {api}; if not, set PREFECT_UI_API_URL.",
            flush=True,
        )
    command = [sys.executable, "-m", "prefect", "server", "start"]
    command += ["--host", args.host, "--port", str(args.port)]
    process = subprocess.Popen(command, env=env)
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's stop also stops the server
    threading.Thread(target=_announce_when_healthy, args=(api, ui, process), daemon=True).start()
    try:
        return process.wait()
    except KeyboardInterrupt:
        _stop(process)
        print("mmflow server: stopped", flush=True)
        return 0
    finally:
        if process.poll() is None:
            _stop(process)
