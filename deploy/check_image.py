"""Build the Dockerfile unchanged with buildah against local stand-ins for its base images, run it, check it.

Run as root from the repository root: ``python deploy/check_image.py`` (``--help`` for options).

No Docker engine runs here and no image registry is reachable, so the base images the Dockerfile names
(``python:3.11-slim-bookworm``, ``node:20-bookworm-slim``) are stood in for:

1. ``debootstrap --variant=minbase`` makes a Debian bookworm root file system with Debian's Python 3.11,
   pip and the CA certificates (about 4 minutes), cached under ``--cache-dir`` per UTC day, so it is
   made at most once a day; older days are deleted. ``python``/``pip`` are linked where the official
   image has them, and the machine's CA bundle and a ``pip.conf`` (``cert=``, ``break-system-packages``:
   Debian's pip refuses to install into the system Python otherwise) are copied in.
2. ``buildah from scratch`` + ``buildah copy`` + ``buildah commit`` make it
   ``docker.io/library/python:3.11-slim-bookworm``; the Node stand-in is that image plus Debian's
   ``nodejs`` and ``npm`` (Node 18, not 20: what Debian has) with this machine's npm registry and CA.
   Both live in buildah storage under ``--cache-dir`` (vfs driver), labelled with their day.

Then ``buildah bud --isolation chroot --format docker`` builds the Dockerfile as it is, and the checks
run the image (``buildah run --isolation chroot`` shares the host's network, so the BFF in it answers on
127.0.0.1):

- the image's command is ``bff serve``, its user is not root, its HEALTHCHECK reads ``BFF_PORT``;
- the demo services run from the image (``bff demo-services --free-ports``) and ``bff serve`` from the
  image's own command, on a port other than 8000 set by ``BFF_PORT``;
- ``/healthz`` answers, the HEALTHCHECK command passes inside the image, a query returns tracks,
  GraphiQL's page names its locally served assets and they are served, ``/metrics`` answers;
- the ``bff serve`` process runs as a user other than root;
- SIGTERM to the ``bff serve`` process stops it within 10 s, with exit status 0.

Exit status: 0 when every check passed, 1 when one failed (it is named), 2 when a prerequisite is
missing (root, ``buildah``, ``debootstrap``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
NODE_IMAGE = "docker.io/library/node:20-bookworm-slim"
IMAGE = "localhost/bff:check"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
STANDIN_LABEL = "bff.standin.day"
STOP_WITHIN_S = 10.0
START_TIMEOUT_S = 60.0

EXIT_FAILED = 1
EXIT_MISSING = 2


class CheckFailed(Exception):
    """A check of the image failed; ``str()`` says which and why."""


class Missing(Exception):
    """A prerequisite of the build is missing."""


def log(message: str) -> None:
    """One progress line on stderr, with the time since start."""
    print(f"[check_image {time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


STARTED = time.monotonic()


class Buildah:
    """``buildah`` with its storage under the cache directory (vfs, so it works without overlay)."""

    def __init__(self, storage: Path) -> None:
        self.flags = [
            "--root",
            str(storage / "root"),
            "--runroot",
            str(storage / "runroot"),
            "--storage-driver",
            "vfs",
        ]

    def __call__(self, *args: str, capture: bool = False, check: bool = True) -> str:
        command = ["buildah", *self.flags, *args]
        result = subprocess.run(
            command,
            check=False,
            text=True,
            stdout=subprocess.PIPE if capture else None,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise CheckFailed(f"{' '.join(command[: 2 + len(self.flags)])} ... exited {result.returncode}")
        return (result.stdout or "").strip()

    def popen(self, *args: str, **kwargs: object) -> subprocess.Popen[str]:
        """Start ``buildah ARGS`` without waiting."""
        return subprocess.Popen(["buildah", *self.flags, *args], text=True, **kwargs)  # type: ignore[call-overload]

    def exists(self, image: str) -> bool:
        """Whether buildah storage holds ``image``."""
        return (
            image in self("images", "--format", "{{.Name}}:{{.Tag}}", capture=True, check=False).splitlines()
        )

    def label(self, image: str, name: str) -> str | None:
        """A label of a local image, or ``None`` when the image is absent."""
        if not self.exists(image):
            return None
        raw = self("inspect", "--type", "image", image, capture=True)
        labels = json.loads(raw).get("OCIv1", {}).get("config", {}).get("Labels") or {}
        return labels.get(name)


def mirror() -> str:
    """The Debian mirror apt uses on this machine: the first ``URIs:`` of ``debian.sources`` (deb822)
    or ``deb`` line of ``sources.list``; comments, which may name a mirror not reachable from here
    (a ``snapshot.debian.org`` the image was built from), are not read."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if path.exists():
            return mirror_in(path.read_text()) or DEFAULT_MIRROR
    return DEFAULT_MIRROR


def mirror_in(sources: str) -> str | None:
    """The first Debian archive URL of an apt ``URIs:`` field or ``deb`` line in ``sources``."""
    for line in sources.splitlines():
        found = re.match(r"\s*(?:URIs:|deb(?:\s+\[[^]]*\])?)\s+(https?://\S+/debian)/?(?:\s|$)", line)
        if found:
            return found.group(1)
    return None


def rootfs(cache: Path, day: str) -> Path:
    """Today's stand-in root file system, made with debootstrap unless it is already there."""
    for old in cache.glob("rootfs-*"):
        if old.name != f"rootfs-{day}":
            log(f"removing the stand-in of another day: {old}")
            shutil.rmtree(old, ignore_errors=True)
    target = cache / f"rootfs-{day}" / "python"
    if (target / ".complete").exists():
        log(f"stand-in root file system cached: {target}")
        return target
    partial = target.with_name("python.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    source = mirror()
    log(f"debootstrap {SUITE} from {source} (about 4 minutes)")
    include = "python3,python3-pip,python3-venv,ca-certificates"
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={include}", SUITE, str(partial), source],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    prepare_python(partial)
    (partial / ".complete").write_text(day)
    partial.rename(target)
    return target


def prepare_python(root: Path) -> None:
    """Make the Debian root file system look like the official Python image where the build needs it."""
    local_bin = root / "usr/local/bin"
    local_bin.mkdir(parents=True, exist_ok=True)
    for name, target in (("python", "/usr/bin/python3"), ("pip", "/usr/bin/pip3")):
        link = local_bin / name
        if not link.is_symlink():
            link.symlink_to(target)
    # The machine's bundle holds the CA of any proxy between here and the registry.
    if CA_BUNDLE.exists():
        shutil.copyfile(CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
    (root / "etc/pip.conf").write_text(
        "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\nbreak-system-packages = true\n"
        "disable-pip-version-check = true\n"
    )


def standins(buildah: Buildah, cache: Path, day: str) -> None:
    """Commit today's stand-ins for the two base images, unless buildah storage has them already."""
    if buildah.label(PYTHON_IMAGE, STANDIN_LABEL) != day:
        base = rootfs(cache, day)
        log(f"committing {PYTHON_IMAGE} from {base}")
        ctr = buildah("from", "scratch", capture=True)
        try:
            buildah("copy", ctr, str(base), "/")
            buildah(
                "config",
                "--label",
                f"{STANDIN_LABEL}={day}",
                "--env",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--env",
                "LANG=C.UTF-8",
                "--cmd",
                "python3",
                ctr,
            )
            buildah("commit", "--format", "docker", ctr, PYTHON_IMAGE)
        finally:
            buildah("rm", ctr, check=False)
    else:
        log(f"{PYTHON_IMAGE} stand-in of {day} in storage")
    if buildah.label(NODE_IMAGE, STANDIN_LABEL) != day:
        log(f"committing {NODE_IMAGE}: the Python stand-in plus Debian's nodejs and npm")
        registry = npm_registry()
        ctr = buildah("from", "--pull=never", PYTHON_IMAGE, capture=True)
        try:
            npmrc = f"registry={registry}\\ncafile={CA_BUNDLE}\\n"
            install = (
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                "--no-install-recommends nodejs npm >/dev/null && rm -rf /var/lib/apt/lists/* && "
                f"printf '{npmrc}' > /etc/npmrc"
            )
            buildah("run", "--isolation", "chroot", ctr, "--", "sh", "-c", install)
            buildah("config", "--label", f"{STANDIN_LABEL}={day}", "--cmd", "node", ctr)
            buildah("commit", "--format", "docker", ctr, NODE_IMAGE)
        finally:
            buildah("rm", ctr, check=False)
    else:
        log(f"{NODE_IMAGE} stand-in of {day} in storage")


def npm_registry() -> str:
    """This machine's npm registry (``npm config get registry``), or npm's default."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        found = subprocess.run(
            ["npm", "config", "get", "registry"], check=True, text=True, capture_output=True
        ).stdout.strip()
        if found.startswith("http"):
            return found
    return "https://registry.npmjs.org/"


def build(buildah: Buildah) -> None:
    """``buildah bud`` of the Dockerfile as it is, with the stand-ins as its bases."""
    log("buildah bud of the Dockerfile")
    buildah(
        "bud",
        "--isolation",
        "chroot",
        "--format",
        "docker",
        "--pull=never",
        "-t",
        IMAGE,
        "-f",
        str(ROOT / "Dockerfile"),
        str(ROOT),
    )


def inspect_config(buildah: Buildah) -> dict[str, object]:
    """The built image's Docker config (``Cmd``, ``User``, ``Healthcheck``, ``Env``)."""
    raw = json.loads(buildah("inspect", "--type", "image", IMAGE, capture=True))
    config: dict[str, object] = raw.get("Docker", {}).get("config", {})
    return config


def free_port() -> int:
    """A TCP port nothing listens on at the moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Status and body of one request (no proxies: everything is on 127.0.0.1)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for(url: str, process: subprocess.Popen[str], what: str) -> None:
    """Poll ``url`` until it answers 200; fail when ``process`` exits first or after the start timeout."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CheckFailed(f"{what} exited with {process.returncode} before answering {url}")
        with contextlib.suppress(OSError):
            if http(url)[0] == 200:
                return
        time.sleep(0.2)
    raise CheckFailed(f"{what} did not answer {url} within {START_TIMEOUT_S:g} s")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> list[str]:
    """The arguments of process ``pid`` (empty once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def uid_of(pid: int) -> int:
    """The real user id of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise CheckFailed(f"no Uid line for process {pid}")


def the_process(root: subprocess.Popen[str], argv_tail: Sequence[str]) -> int:
    """The process under ``root`` that runs ``argv_tail`` (the container's command) itself.

    buildah's chroot isolation runs ``buildah-chroot-exec bff serve``, a Go helper that catches
    every signal and kills its child on SIGTERM, with the command as its child; a console script
    runs as ``python3 /usr/local/bin/bff serve``. The process wanted is the deepest one whose
    arguments end with ``argv_tail`` (base names compared): the interpreter, which docker stop signals.
    """
    wanted = [Path(arg).name for arg in argv_tail]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        matching = [
            pid
            for pid in descendants(root.pid)
            if [Path(arg).name for arg in command_line(pid)][-len(wanted) :] == wanted
        ]
        deepest = [pid for pid in matching if not set(descendants(pid)) & set(matching)]
        if deepest:
            return deepest[0]
        time.sleep(0.1)
    raise CheckFailed(f"no process running {' '.join(argv_tail)} under buildah run (pid {root.pid})")


@contextlib.contextmanager
def container(buildah: Buildah) -> Iterator[str]:
    """A working container of the built image, removed afterwards."""
    ctr = buildah("from", "--pull=never", IMAGE, capture=True)
    try:
        yield ctr
    finally:
        buildah("rm", ctr, check=False)


def stop(process: subprocess.Popen[str]) -> None:
    """End a ``buildah run`` this script started (its process group), if it still runs."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def demo_services(buildah: Buildah, ctr: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start ``bff demo-services --free-ports`` from the image; its ``BFF_SERVICE_*_URL`` lines."""
    process = buildah.popen(
        "run",
        "--isolation",
        "chroot",
        ctr,
        "--",
        "bff",
        "demo-services",
        "--free-ports",
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None
    urls: dict[str, str] = {}
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and len(urls) < 5:
        line = process.stdout.readline()
        if not line:
            raise CheckFailed(f"bff demo-services exited with {process.wait()} before printing its URLs")
        name, _, url = line.strip().partition("=")
        if name.startswith("BFF_SERVICE_") and url.startswith("http://"):
            urls[name] = url
    return process, urls


def check(buildah: Buildah) -> None:
    """Run the built image and check it (see the module docstring)."""
    config = inspect_config(buildah)
    cmd = list(config.get("Cmd") or [])  # type: ignore[call-overload]
    log(f"image command {cmd}, user {config.get('User')!r}")
    if cmd != ["bff", "serve"]:
        raise CheckFailed(f"the image's command is {cmd}, not ['bff', 'serve']")
    if str(config.get("User") or "root") in ("", "root", "0"):
        raise CheckFailed("the image runs as root")
    healthcheck = config.get("Healthcheck") or {}
    test = list(healthcheck.get("Test") or [])  # type: ignore[attr-defined]
    if not test or "BFF_PORT" not in " ".join(test):
        raise CheckFailed(f"the HEALTHCHECK does not follow BFF_PORT: {test}")
    port = free_port()
    with container(buildah) as ctr:
        services, urls = demo_services(buildah, ctr)
        try:
            log(f"demo services from the image: {', '.join(sorted(urls.values()))}")
            env = {**urls, "BFF_PORT": str(port), "BFF_LOG_FORMAT": "json"}
            env_flags = [flag for name, value in env.items() for flag in ("--env", f"{name}={value}")]
            server = buildah.popen(
                "run", "--isolation", "chroot", *env_flags, ctr, "--", *cmd, start_new_session=True
            )
            try:
                check_running(buildah, ctr, server, port, cmd, test)
            finally:
                stop(server)
        finally:
            stop(services)


def check_running(
    buildah: Buildah, ctr: str, server: subprocess.Popen[str], port: int, cmd: list[str], test: list[str]
) -> None:
    """The checks of a running ``bff serve`` from the image on ``port``."""
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/healthz", server, "bff serve")
    log(f"/healthz answers on {base}")
    pid = the_process(server, cmd)
    uid = uid_of(pid)
    if uid == 0:
        raise CheckFailed(f"bff serve (pid {pid}) runs as root")
    log(f"bff serve is pid {pid} ({' '.join(command_line(pid))}), uid {uid}")
    shell = test[1:] if test and test[0] == "CMD-SHELL" else None
    argv = ["sh", "-c", shell[0]] if shell else test[1:]
    probe = subprocess.run(
        [
            "buildah",
            *buildah.flags,
            "run",
            "--isolation",
            "chroot",
            "--env",
            f"BFF_PORT={port}",
            ctr,
            "--",
            *argv,
        ],
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if probe.returncode != 0:
        raise CheckFailed(f"the HEALTHCHECK command failed with {probe.returncode} on port {port}")
    log("the HEALTHCHECK command passes with BFF_PORT")
    query = json.dumps({"query": "{ tracks(first: 2) { edges { node { name } } } }"}).encode()
    status, body = http(f"{base}/graphql", data=query, headers={"Content-Type": "application/json"})
    edges = json.loads(body).get("data", {}).get("tracks", {}).get("edges", []) if status == 200 else []
    if len(edges) != 2:
        raise CheckFailed(f"the query answered {status}: {body[:300]!r}")
    log(f"a query returns tracks: {[edge['node']['name'] for edge in edges]}")
    status, page = http(f"{base}/graphql", headers={"Accept": "text/html"})
    assets = re.findall(rb'(?:src|href)="(/graphiql/assets/[^"]+)"', page)
    if status != 200 or not assets:
        raise CheckFailed(f"GraphiQL's page ({status}) names no local assets")
    for asset in assets:
        asset_status, content = http(base + asset.decode())
        if asset_status != 200 or not content:
            raise CheckFailed(f"GraphiQL asset {asset.decode()} answered {asset_status}")
    log(f"GraphiQL's page and its {len(assets)} assets are served by the BFF")
    status, metrics = http(f"{base}/metrics")
    if status != 200 or b"bff_operation_duration_seconds" not in metrics:
        raise CheckFailed(f"/metrics answered {status} without the operation metrics")
    log("/metrics answers")
    began = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while time.monotonic() - began < STOP_WITHIN_S:
        if not command_line(pid):
            break
        time.sleep(0.05)
    else:
        raise CheckFailed(f"bff serve did not stop within {STOP_WITHIN_S:g} s of SIGTERM")
    log(f"SIGTERM stopped bff serve in {time.monotonic() - began:.2f} s")
    status = server.wait(timeout=STOP_WITHIN_S)
    if status != 0:
        raise CheckFailed(f"bff serve exited with {status} after SIGTERM, not 0")
    log("and exited with 0")


def main(argv: Sequence[str] | None = None) -> int:
    """Build and check the image; returns the exit status (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bff-image",
        help="stand-in root file system and buildah storage (default: ~/.cache/bff-image)",
    )
    parser.add_argument("--keep-image", action="store_true", help="keep the built image afterwards")
    parser.add_argument(
        "--reuse-image", action="store_true", help="check the image kept by an earlier --keep-image run"
    )
    args = parser.parse_args(argv)
    try:
        if os.geteuid() != 0:
            raise Missing("root (buildah with --isolation chroot and debootstrap need it)")
        for tool in ("buildah", "debootstrap"):
            if shutil.which(tool) is None:
                raise Missing(f"{tool} (apt-get install {tool})")
        day = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        buildah = Buildah(args.cache_dir / "storage")
        if not (args.reuse_image and buildah.exists(IMAGE)):
            standins(buildah, args.cache_dir, day)
            build(buildah)
        try:
            check(buildah)
        finally:
            if not args.keep_image:
                buildah("rmi", IMAGE, check=False, capture=True)
            # Images left without a name (an earlier build of the tag, the Node stage): vfs keeps a
            # full copy of each, so they would fill the cache directory run after run.
            buildah("rmi", "--prune", check=False, capture=True)
    except Missing as exc:
        print(f"check_image: missing {exc}", file=sys.stderr)
        return EXIT_MISSING
    except (CheckFailed, subprocess.CalledProcessError) as exc:
        print(f"check_image: FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    log("every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
