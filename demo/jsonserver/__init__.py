"""Run the real json-server 0.17.4 over the Chinook data, or any data: one process per service, for tests.

The BFF must work against a REST server we did not write, so the end-to-end tests can point it at
json-server instead of our own demo services. This module:

- writes one ``db.json`` per service (``write_db_files`` for the Chinook split, ``write_dbs`` for any
  data), in a directory the caller owns, because json-server writes every POST/PATCH/PUT/DELETE back
  to its file: never point it at shipped data;
- finds the json-server bin (``find_json_server``): ``$BFFTEST_JSON_SERVER_BIN``, else the one ``.ci/run``
  installs under ``<repo>/.ci/node_modules``;
- runs one server per service on free ``127.0.0.1`` ports with ``counter.js`` (``GET``/``DELETE
  /_stats``) loaded, and stops them all when the block exits, however it exits (``run_json_servers``).

Each server is one ``node`` process in its own process group (no shell, no npm wrapper), so stopping
the group stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path

import httpx

from bff_chinook.demo.chinook import SERVICES, Record, load_chinook, service_data

__all__ = [
    "COUNTER_JS",
    "JSON_SERVER_BIN_ENV",
    "JsonServerError",
    "find_json_server",
    "json_server_version",
    "run_json_servers",
    "write_db_files",
    "write_dbs",
]

JSON_SERVER_BIN_ENV = "BFFTEST_JSON_SERVER_BIN"
"""Environment variable naming the json-server bin to use (``.ci/run`` sets it).

Not ``BFF_*``: the BFF refuses unknown ``BFF_*`` variables at start-up, and tests start BFFs with
this one in their environment.
"""

COUNTER_JS: Path = Path(__file__).with_name("counter.js")
"""The json-server middleware that serves ``GET``/``DELETE /_stats``."""

_REPO_BIN = Path(__file__).resolve().parents[2] / ".ci" / "node_modules" / ".bin" / "json-server"
_HOST = "127.0.0.1"
_POLL_INTERVAL = 0.05  # seconds between readiness probes
_PORT_ATTEMPTS = 3  # a free port can be taken between our probe and json-server's bind


class JsonServerError(RuntimeError):
    """json-server could not be started: no node, a bad bin, a crash, or no answer in time."""


def find_json_server(env: Mapping[str, str] | None = None) -> Path | None:
    """Return the json-server bin to run, or ``None`` when there is none.

    Looks at ``$BFFTEST_JSON_SERVER_BIN`` (from ``env``, default ``os.environ``) first, then at
    ``<repo>/.ci/node_modules/.bin/json-server``. A path that does not exist counts as none.
    """
    environ = os.environ if env is None else env
    candidates = [Path(environ[JSON_SERVER_BIN_ENV])] if environ.get(JSON_SERVER_BIN_ENV) else []
    candidates.append(_REPO_BIN)
    return next((path for path in candidates if path.is_file()), None)


def json_server_version(bin_path: Path) -> str | None:
    """Return the version in the ``package.json`` of the package ``bin_path`` belongs to, if found."""
    for parent in bin_path.resolve().parents:
        manifest = parent / "package.json"
        if manifest.is_file():
            version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
            return version if isinstance(version, str) else None
    return None


def write_db_files(
    directory: Path, data: dict[str, list[Record]] | None = None, *, services: Iterable[str] | None = None
) -> dict[str, Path]:
    """Write ``<directory>/<service>/db.json`` for each service and return service -> file.

    ``data`` is the Chinook data (default: a fresh load); ``services`` defaults to all of ``SERVICES``.
    Each file holds exactly the resources that service owns, as ``service_data`` returns them.
    """
    source = load_chinook() if data is None else data
    names = SERVICES if services is None else services
    return write_dbs(directory, {service: service_data(service, source) for service in names})


def write_dbs(directory: Path, dbs: Mapping[str, Mapping[str, list[Record]]]) -> dict[str, Path]:
    """Write ``<directory>/<name>/db.json`` for each entry of ``dbs`` and return name -> file.

    ``dbs`` maps a server name to its resources (resource -> records), which the file holds as they
    are, in their order. Raises ``ValueError`` for a name that is not one plain directory name
    (empty, ``.``, ``..``, or with a path separator): every server must get its own directory.
    """
    files: dict[str, Path] = {}
    for name, resources in dbs.items():
        if name in {"", ".", ".."} or Path(name).name != name:  # "a/b" and "a/" are not plain names
            raise ValueError(f"not a plain directory name for a json-server: {name!r}")
        service_dir = directory / name
        service_dir.mkdir(parents=True, exist_ok=True)
        path = service_dir / "db.json"
        path.write_text(json.dumps(dict(resources)), encoding="utf-8")
        files[name] = path
    return files


@contextlib.asynccontextmanager
async def run_json_servers(
    bin_path: Path,
    directory: Path,
    *,
    services: Iterable[str] | None = None,
    data: dict[str, list[Record]] | None = None,
    dbs: Mapping[str, Mapping[str, list[Record]]] | None = None,
    startup_timeout: float = 30.0,
) -> AsyncIterator[dict[str, str]]:
    """Run one json-server per service and yield service -> base URL (``http://127.0.0.1:PORT``).

    By default the services are the Chinook ones (``services``, default all of ``SERVICES``), each
    over its share of ``data`` (default: a fresh ``load_chinook()``). ``dbs`` runs any data instead:
    one server per entry, named by its key, serving that entry's resources (see ``write_dbs``).
    Passing ``dbs`` with ``services`` or ``data`` raises ``ValueError``.

    The db files and each server's log (``<directory>/<service>/json-server.log``) go under
    ``directory``, which the caller owns (a temporary directory). Every server answers
    ``GET /_stats`` before this yields, and every counter starts at zero. On exit, normal or not,
    each process group gets SIGTERM, then SIGKILL after 5 s, and is waited for.

    Raises ``JsonServerError`` when ``node`` is missing or a server does not start within
    ``startup_timeout`` seconds; servers already started are stopped first.
    """
    if dbs is not None and (services is not None or data is not None):
        raise ValueError("pass dbs, or the Chinook services and data, not both")
    command = _command(bin_path)
    # About 0.1 s of JSON encoding: off the event loop.
    if dbs is None:
        files = await asyncio.to_thread(write_db_files, directory, data, services=services)
    else:
        files = await asyncio.to_thread(write_dbs, directory, dbs)
    processes: list[asyncio.subprocess.Process] = []
    try:
        try:
            # A TaskGroup, not gather: when one server fails, the others stop starting at once.
            async with (
                asyncio.timeout(startup_timeout),
                httpx.AsyncClient(timeout=2.0, trust_env=False) as client,
                asyncio.TaskGroup() as group,
            ):
                starts = {
                    service: group.create_task(_start(command, path, client=client, processes=processes))
                    for service, path in files.items()
                }
        except ExceptionGroup as errors:
            raise errors.exceptions[0] from None  # the first failure tells the story
        except TimeoutError:
            raise JsonServerError(
                f"json-server did not answer within {startup_timeout} s; see the logs under {directory}"
            ) from None
        yield {service: f"http://{_HOST}:{start.result()}" for service, start in starts.items()}
    finally:
        await _stop_all(processes)


def _command(bin_path: Path) -> list[str]:
    """Return the argv prefix that runs ``bin_path`` as one process: ``node <script>`` for a script."""
    script = bin_path.resolve()
    if not script.is_file():
        raise JsonServerError(f"json-server bin not found: {bin_path}")
    with script.open("rb") as file:
        first_line = file.readline()
    if script.suffix in {".js", ".cjs"} or (first_line.startswith(b"#!") and b"node" in first_line):
        node = shutil.which("node")
        if node is None:
            raise JsonServerError("node is not on PATH; json-server needs Node.js")
        return [node, str(script)]
    return [str(script)]


async def _start(
    command: list[str],
    db_file: Path,
    *,
    client: httpx.AsyncClient,
    processes: list[asyncio.subprocess.Process],
) -> int:
    """Start one server for ``db_file``, wait until it answers, and return its port.

    Every process started is appended to ``processes`` at once, so the caller stops it whatever
    happens next. A server that exits before answering is tried again on a new port (json-server
    exits with status 1 when its port was taken in the meantime), ``_PORT_ATTEMPTS`` times in all.
    """
    log_path = db_file.with_name("json-server.log")
    for _attempt in range(_PORT_ATTEMPTS):
        port = _free_port()
        argv = [
            *command,
            *("--host", _HOST, "--port", str(port)),
            *("--middlewares", str(COUNTER_JS), "--quiet"),
            str(db_file),
        ]
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=db_file.parent,  # json-server looks for ./public and ./json-server.json here
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group, stopped as a whole
                preexec_fn=_die_with_parent(),
            )
        processes.append(process)
        if await _wait_ready(process, f"http://{_HOST}:{port}/_stats", client=client):
            return port
    log_tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
    raise JsonServerError(f"json-server for {db_file} did not start; its log:\n{log_tail}")


async def _wait_ready(process: asyncio.subprocess.Process, url: str, *, client: httpx.AsyncClient) -> bool:
    """Poll ``url`` until it answers 200 (True) or the process exits (False); the caller times out."""
    while process.returncode is None:
        with contextlib.suppress(httpx.TransportError):
            if (await client.get(url)).status_code == 200:
                return True
        await asyncio.sleep(_POLL_INTERVAL)
    return False


async def _stop_all(processes: list[asyncio.subprocess.Process]) -> None:
    """Stop every process, even when the caller is cancelled meanwhile; that is re-raised after.

    Stopping takes at most about 5 s (``_stop``), so holding a cancellation that long is safe, and
    it is the only way a cancelled test cannot leave servers running.
    """
    stopping = asyncio.gather(*(_stop(process) for process in processes))
    cancelled = False
    while True:
        try:
            await asyncio.shield(stopping)
            break
        except asyncio.CancelledError:
            if stopping.done():  # the stops themselves were cancelled: the loop is shutting down
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def _stop(process: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    """Stop ``process`` and its process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.returncode is not None:
            return
        # The group id is the pid (start_new_session). It is signalled only while asyncio has not
        # reported the leader's exit, so the id still names our group and nobody else's.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), grace)
    await process.wait()


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> Callable[[], None] | None:
    """Return a pre-exec hook making the child get SIGTERM when this process dies (Linux only).

    The last guard against orphans: if the test run is killed outright (SIGKILL, CI timeout),
    no ``finally`` runs, but the kernel still stops the servers.
    """
    if sys.platform != "linux":
        return None
    # Looked up here, in the parent: the child between fork and exec must not load anything.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def hook() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)

    return hook
