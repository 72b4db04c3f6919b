"""The ``bff`` command: ``bff serve``, ``bff demo``, ``bff demo-services`` and ``bff schema``.

Every command serves one app, named ``MODULE:ATTR`` by ``--app`` or ``BFF_APP`` (default: the Chinook
app, ``bff_chinook.schema:app``); the working directory is searched first, so an app in the current
checkout needs no install.

- ``bff serve [--app A] [--host H] [--port P] [--workers N]`` runs the BFF against the services named
  by ``BFF_SERVICE_<NAME>_URL`` (default: each service's ``default_url``); with ``--workers N`` (or
  ``BFF_WORKERS``) above 1, N processes on one port sharing their state in ``BFF_REDIS_URL``
  (:mod:`bff.workers`). ``--reuse-port`` binds with ``SO_REUSEPORT``, so other processes may serve the
  same port (what the workers do).
- ``bff demo [--app A] [--host H] [--port P]`` also starts the app's demo services and points the BFF
  at them: on their usual ports, or all on free ports with ``--port 0``. Webhooks of the demo go to
  the BFF, signed with ``BFF_WEBHOOK_SECRETS`` (or a fresh secret when unset).
- ``bff demo-services [--app A] [--free-ports]`` runs the demo services alone and prints one
  ``BFF_SERVICE_<NAME>_URL=...`` line per service, for another ``bff serve`` (or several) to use.
- ``bff schema [--app A]`` prints the app's schema in SDL (the subgraph's with ``BFF_FEDERATION``).
- ``bff schema check [--app A] BASE.graphql`` compares the app's schema with the SDL in ``BASE``
  (:mod:`bff.sdl`): prints each breaking and dangerous change, exits 1 when any change is breaking.
- ``bff persisted-queries build [--app A] [--output FILE] DOCUMENTS...`` validates every operation
  in the ``.graphql`` files (or directories) against the schema and the limits and writes Apollo's
  ``persisted-query-manifest.json`` (:mod:`bff.manifest`); exits 1, writing nothing, when any is refused.

Servers print ``GraphiQL: http://HOST:PORT/graphql`` once they accept connections and stop cleanly on
Ctrl-C or SIGTERM. A bad setting or app prints one line naming it and exits with 2.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import ipaddress
import json
import os
import secrets
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from bff import event_loop
from bff.app import create_app
from bff.application import App, AppLoadError, DemoServices, WebhookSender, load_app
from bff.connections import runner_args
from bff.observability import configure_logging
from bff.settings import (
    DEFAULT_APP,
    SERVICE_PREFIX,
    ServiceSettings,
    Settings,
    SettingsError,
    load_settings,
    service_variable,
)
from bff.workers import run_workers

EXIT_BAD_SETTINGS = 2


def exposed_in_development(settings: Settings) -> bool:
    """Whether the BFF would listen beyond loopback with the development profile (worth a warning)."""
    if settings.profile == "production" or settings.host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(settings.host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bff", description="GraphQL backend-for-frontend.")
    commands = parser.add_subparsers(dest="command", required=True)
    app_help = f"the app to serve, MODULE:ATTR (default: BFF_APP or {DEFAULT_APP})"
    for name, help_text in (
        ("serve", "run the BFF against the configured services"),
        ("demo", "run the app's demo services and the BFF over them"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--app", help=app_help)
        command.add_argument("--host", help="interface to listen on (default: BFF_HOST or 127.0.0.1)")
        command.add_argument(
            "--port", type=int, help="port to listen on (default: BFF_PORT or 8000; 0: a free one)"
        )
        if name == "serve":
            command.add_argument(
                "--workers", type=int, help="processes serving the port (default: BFF_WORKERS or 1)"
            )
            command.add_argument(
                "--reuse-port", action="store_true", help="bind with SO_REUSEPORT (for several processes)"
            )
    services = commands.add_parser("demo-services", help="run the app's demo services alone")
    services.add_argument("--app", help=app_help)
    services.add_argument("--free-ports", action="store_true", help="listen on free ports")
    schema = commands.add_parser("schema", help="print the GraphQL schema (SDL), or check it against a base")
    schema.add_argument("--app", help=app_help)
    schema_commands = schema.add_subparsers(dest="schema_command")
    check = schema_commands.add_parser(
        "check", help="report breaking and dangerous changes against BASE; exit 1 on breaking ones"
    )
    check.add_argument("--app", help=app_help, default=argparse.SUPPRESS)
    check.add_argument("base", type=Path, help="the SDL to compare with (e.g. the merge base's)")
    persisted = commands.add_parser("persisted-queries", help="persisted-query manifest tools")
    persisted_commands = persisted.add_subparsers(dest="persisted_command", required=True)
    build = persisted_commands.add_parser(
        "build", help="validate documents and write Apollo's persisted-query-manifest.json"
    )
    build.add_argument("--app", help=app_help)
    build.add_argument(
        "--output",
        type=Path,
        default=Path("persisted-query-manifest.json"),
        help="where to write the manifest (default: persisted-query-manifest.json; - for stdout)",
    )
    build.add_argument("documents", type=Path, nargs="+", help=".graphql/.gql files or directories")
    return parser


def _schema_check(schema_sdl: str, base: Path) -> int:
    """``bff schema check``: the changes from ``base`` to the app's schema; 1 when any breaks."""
    from graphql import GraphQLError

    from bff.sdl import compare_schemas

    try:
        base_sdl = base.read_text(encoding="utf-8")
        changes = compare_schemas(base_sdl, schema_sdl)
    except OSError as exc:
        print(f"bff: cannot read {base}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    except GraphQLError as exc:
        print(f"bff: {base} is not a schema: {exc.message}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    for line in changes.lines():
        print(line)
    print(
        f"{len(changes.breaking)} breaking, {len(changes.dangerous)} dangerous change(s) against {base}"
        + (
            f", {len(changes.removed_after_deprecation)} removal(s) after deprecation"
            if changes.removed_after_deprecation
            else ""
        )
    )
    if changes.breaking:
        print(
            "A breaking change needs its field (argument, enum value) deprecated first: "
            '@deprecated(reason: "...") in one change, removed in a later one once unused.',
            file=sys.stderr,
        )
        return 1
    return 0


def _build_manifest(settings: Settings, app: App, documents: Sequence[Path], output: Path) -> int:
    """``bff persisted-queries build``: 0 when written, 1 when a document was refused."""
    from bff.compat import graphql_core_schema
    from bff.graph.schema import build_schema
    from bff.limits import Limits
    from bff.manifest import build_manifest, find_documents

    try:
        sources = [(str(path), path.read_text(encoding="utf-8")) for path in find_documents(documents)]
    except OSError as exc:
        print(f"bff: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    schema = graphql_core_schema(build_schema(app, settings))
    built = build_manifest(schema, sources, limits=Limits.from_settings(settings, app.cost_map))
    for warning in built.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if built.manifest is None:
        for problem in built.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"bff: {len(built.problems)} problem(s); no manifest written", file=sys.stderr)
        return 1
    text = json.dumps(built.manifest, indent=2) + "\n"
    if str(output) == "-":
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        print(f"{output}: {len(built.manifest['operations'])} operation(s)")
    return 0


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _with_demo_urls(settings: Settings, urls: Mapping[str, str]) -> Settings:
    services = dict(settings.services)
    for name, url in urls.items():
        if name in services:
            services[name] = ServiceSettings.model_validate({**services[name].model_dump(), "url": url})
    return settings.model_copy(update={"services": services})


async def _serve(settings: Settings, app: App, *, with_demo: bool, reuse_port: bool = False) -> None:
    async with contextlib.AsyncExitStack() as stack:
        demo: DemoServices | None = None
        if with_demo:
            if app.demo is None:
                raise SettingsError(f"BFF_APP: the app {app.name!r} has no demo services; use bff serve")
            demo = await stack.enter_async_context(app.demo("127.0.0.1", settings.port == 0))
            settings = _with_demo_urls(settings, demo.urls)
            settings = settings.model_copy(update=_demo_webhook_secret(settings, app))
            for name, url in demo.urls.items():
                print(f"demo {name} service: {url}", flush=True)
        runner = web.AppRunner(
            create_app(settings, app), shutdown_timeout=5.0, access_log=None, **runner_args(settings)
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        # Everything made so far (modules, schema, settings, demo data) lives as long as the process.
        # Frozen, it is left out of the cyclic GC's full collections, which a wide operation
        # triggers about once: they then scan the operation's objects only (a 2,240-line query:
        # 20 ms of GC instead of 60).
        gc.collect()
        gc.freeze()
        if exposed_in_development(settings):
            print(
                f"bff: warning: listening on {settings.host} with the development profile "
                "(GraphiQL, introspection, no sign-in): set BFF_PROFILE=production for a public address",
                file=sys.stderr,
                flush=True,
            )
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None)
        await site.start()
        host, port = _bound_address(runner, settings)
        if isinstance(demo, WebhookSender) and settings.webhook_secrets:
            demo.point_webhooks(
                _base_url(_reachable(host), port), settings.webhook_secrets[0].get_secret_value()
            )
        print(f"GraphiQL: {_base_url(host, port)}{settings.graphql_path}", flush=True)
        await _wait_for_stop()


async def _demo_services(app: App, *, free_ports: bool) -> None:
    if app.demo is None:
        raise SettingsError(f"BFF_APP: the app {app.name!r} has no demo services")
    async with app.demo("127.0.0.1", free_ports) as demo:
        for name, url in demo.urls.items():
            print(f"{SERVICE_PREFIX}{service_variable(name)}_URL={url}", flush=True)
        await _wait_for_stop()


def _demo_webhook_secret(settings: Settings, app: App) -> dict[str, Any]:
    """A fresh webhook secret for the demo and the BFF, unless one is configured or none is needed."""
    if settings.webhook_secrets or not app.webhooks:
        return {}
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    return {"webhook_secrets": (SecretStr(secret),)}


def _bound_address(runner: web.AppRunner, settings: Settings) -> tuple[str, int]:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return str(address[0]), int(address[1])
    return settings.host, settings.port


def _app_reference(option: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """The app to serve and where it was named: ``--app``, ``BFF_APP`` or the default."""
    if option:
        return option, "--app"
    if environ.get("BFF_APP"):
        return environ["BFF_APP"], "BFF_APP"
    return DEFAULT_APP, "default app"


def _reachable(host: str) -> str:
    """A local address that reaches a server bound to ``host`` (the loopback one for a wildcard)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _base_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, with an IPv6 host in brackets (``http://[::1]:8000``)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bff`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    reference, source = _app_reference(args.app, os.environ)
    try:
        app = load_app(reference)
    except AppLoadError as exc:
        print(f"bff: bad app ({source}): {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    try:
        overrides = {
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "workers": getattr(args, "workers", None),
        }
        settings = load_settings(os.environ, services=app.service_defaults(), app=reference, **overrides)
    except SettingsError as exc:
        print(f"bff: bad setting: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    if args.command == "schema":
        from bff.graph.schema import build_schema

        sdl = build_schema(app, settings).as_str()
        if args.schema_command == "check":
            return _schema_check(sdl, args.base)
        print(sdl)
        return 0
    if args.command == "persisted-queries":
        return _build_manifest(settings, app, args.documents, args.output)
    if args.command == "serve" and settings.workers > 1:
        if settings.redis_url is None:
            print("bff: bad setting: --workers/BFF_WORKERS above 1 needs BFF_REDIS_URL", file=sys.stderr)
            return EXIT_BAD_SETTINGS
        command = [sys.executable, "-m", "bff.cli", "serve", "--app", reference]
        return asyncio.run(
            run_workers(
                command, host=settings.host, port=settings.port, workers=settings.workers, env=os.environ
            )
        )
    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "demo-services":
            event_loop.run(_demo_services(app, free_ports=args.free_ports), settings.event_loop)
        else:
            reuse_port = bool(getattr(args, "reuse_port", False))
            serving = _serve(settings, app, with_demo=args.command == "demo", reuse_port=reuse_port)
            event_loop.run(serving, settings.event_loop)
    except SettingsError as exc:
        print(f"bff: bad setting: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    except OSError as exc:
        print(f"bff: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
