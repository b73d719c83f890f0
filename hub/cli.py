"""``lotpulse``: run the hub and administer it from the shell.

Commands that need the database use ``LOTPULSE_MONGODB_URI``, else the data folder (``LOTPULSE_DATA_DIR``, or
``./lotpulse-data`` when it exists, or the one of the running ``lotpulse serve`` found in the runtime folder) and its
embedded server: the running one (its address is in ``<data dir>/embedded.json``), else one started for the command.
They never create a data folder nobody asked for: with nothing to use they say what to start or set.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC
from pathlib import Path

from hub import logs
from hub.auth import mint_local_token
from hub.config import Settings, SettingsError
from hub.db import Database, Deadlines, EmbeddedServer, embedded_uri
from hub.errors import HubError
from hub.keys import COLLECTION as KEYS
from hub.running import RunningHub, register, running_hubs, runtime_dir
from hub.state import key_file_for, keyring_for
from tenants.models import Role, TenantKind

log = logging.getLogger("lotpulse.cli")
COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {}
EMBEDDED_MISSING = (
    "the embedded database is not installed and LOTPULSE_MONGODB_URI is not set: set LOTPULSE_MONGODB_URI to a "
    "MongoDB >= 7 replica set, or install the embedded development database with `pip install 'lotpulse[embedded]'` "
    "(SecantusDB, GPL-2.0, beta; `make run` does this)"
)


class CliError(Exception):
    """A problem the user fixes from the shell: printed as it is, exit code 2, no traceback."""


def require_embedded() -> None:
    if importlib.util.find_spec("secantus") is None:
        raise CliError(EMBEDDED_MISSING)


def locate(settings: Settings) -> Settings:
    """The settings of the hub this command administers: its data folder, and the issuer URL and key file of the
    running hub serving that folder (unless set explicitly)."""
    if settings.mongodb_uri:
        return settings  # configured explicitly (several deployments may share this machine's runtime folder)
    env = os.environ
    hubs = running_hubs(runtime_dir(settings.runtime_dir))
    data_dir = settings.data_dir.resolve()
    if "LOTPULSE_DATA_DIR" not in env and not data_dir.exists():
        if not hubs:
            raise CliError(
                f"no Lotpulse hub found: there is no data folder {data_dir} and no running `lotpulse serve` is "
                f"registered in {runtime_dir(settings.runtime_dir)}. Start the hub (`make run` in the project folder), "
                "or run this command in the folder where the hub runs, or set LOTPULSE_DATA_DIR to the hub's data "
                "folder (or LOTPULSE_MONGODB_URI to its database)"
            )
        if len(hubs) > 1:
            listed = "; ".join(hub.describe() for hub in hubs)
            raise CliError(f"several hubs are running ({listed}): set LOTPULSE_DATA_DIR to the data folder of one")
        (hub,) = hubs
        if not hub.embedded:
            raise CliError(f"{hub.describe()}: set the same LOTPULSE_MONGODB_URI here")
        print(f"using {hub.describe()}", file=sys.stderr)
        return _adopt(settings.with_(data_dir=Path(hub.data_dir)), hub)
    serving = [hub for hub in hubs if hub.embedded and Path(hub.data_dir) == data_dir]
    return _adopt(settings, serving[0]) if serving else settings


def _adopt(settings: Settings, hub: RunningHub) -> Settings:
    """Tokens must carry the running hub's issuer and be signed with its key ring, unless set explicitly."""
    if "LOTPULSE_PUBLIC_URL" not in os.environ:
        settings = settings.with_(public_url=hub.public_url)
    if "LOTPULSE_SIGNING_KEY_FILE" not in os.environ:
        settings = settings.with_(signing_key_file=Path(hub.signing_key_file))
    return settings


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


@contextmanager
def embedded_database(settings: Settings) -> Iterator[str]:
    """The embedded server for this data directory: reuse a running one, or start (and later stop) our own."""
    marker = settings.data_dir / "embedded.json"
    if marker.exists():
        port = json.loads(marker.read_text()).get("port")
        if isinstance(port, int) and _port_open(port):
            yield embedded_uri(port)
            return
    require_embedded()
    server = EmbeddedServer(settings.data_dir / "db", log_path=settings.data_dir / "secantusd.log")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server.start()
    marker.write_text(json.dumps({"port": server.port, "pid": os.getpid()}))
    try:
        yield server.uri
    finally:
        marker.unlink(missing_ok=True)
        server.stop()


# A shell command may take its time over a large database; it still gives up on an unreachable one.
SHELL_DEADLINES = Deadlines(operation=None, server_selection=10.0, transaction=None)


@asynccontextmanager
async def database(settings: Settings, uri: str) -> AsyncIterator[Database]:
    db = await Database.connect(uri, settings.database, deadlines=SHELL_DEADLINES)
    try:
        yield db
    finally:
        await db.close()


def run_with_database(settings: Settings, work: Callable[[Database], object]) -> object:
    """Run ``work`` on the database of ``settings`` (pass them through ``locate`` first)."""

    async def main(uri: str) -> object:
        async with database(settings, uri) as db:
            return await work(db)  # type: ignore[misc]

    if settings.mongodb_uri:
        return asyncio.run(main(settings.mongodb_uri))
    with embedded_database(settings) as uri:
        return asyncio.run(main(uri))


def command(name: str) -> Callable[[Callable[[argparse.Namespace, Settings], int]], Callable]:
    def register(fn: Callable[[argparse.Namespace, Settings], int]) -> Callable:
        COMMANDS[name] = fn
        return fn

    return register


@command("serve")
def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; the embedded database (without LOTPULSE_MONGODB_URI) is supervised and stopped
    after the hub (hub/embedded.py)."""
    from hub.app import create_app
    from hub.embedded import serve_embedded, serve_hub

    host, port = args.host or settings.host, args.port or settings.port
    settings = settings.with_(host=host, port=port)
    if "LOTPULSE_PUBLIC_URL" not in os.environ:
        # The issuer URL follows the address actually served unless it was set explicitly (behind a proxy).
        settings = settings.with_(public_url=f"http://{host}:{port}")
    if not settings.mongodb_uri:
        require_embedded()
    record = register(
        runtime_dir(settings.runtime_dir),
        RunningHub(
            pid=os.getpid(),
            port=port,
            public_url=settings.public_url,
            data_dir=str(settings.data_dir.resolve()),
            signing_key_file=str(key_file_for(settings).resolve()),
            embedded=not settings.mongodb_uri,
        ),
    )
    try:
        if settings.mongodb_uri:
            asyncio.run(serve_hub(create_app(settings), settings))
        else:
            asyncio.run(serve_embedded(settings))
        return 0
    finally:
        record.unlink(missing_ok=True)


def _parse_ttl(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError("TTL like 900, 15m, 1h or 7d")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


@command("token")
def token(args: argparse.Namespace, settings: Settings) -> int:
    """Mint a token for an existing tenant, signed by the key ring of the hub that will check it."""
    from tenants.models import Tenant

    settings = locate(settings)

    ring = keyring_for(settings)

    async def work(db: Database) -> object:
        await ring.load(db.db[KEYS])
        return await Tenant.get(args.tenant) is not None

    if not run_with_database(settings, work):
        raise CliError(f"tenant {args.tenant!r} not found (`lotpulse tenant list` shows the tenants)")
    ttl = args.ttl if args.ttl is not None else settings.token_default_ttl_seconds
    print(mint_local_token(settings, ring, args.tenant, args.role, ttl, subject=args.subject))
    return 0


@command("tenant")
def tenant(args: argparse.Namespace, settings: Settings) -> int:
    from tenants import service
    from tenants.models import Tenant

    settings = locate(settings)

    async def work(_: Database) -> object:
        if args.tenant_command == "list":
            tenants = await Tenant.find_all().sort("_id").to_list()
            return "\n".join(f"{t.id}\t{t.kind.value}\t{t.name}" for t in tenants) or "no tenants yet"
        if args.tenant_command == "create":
            created = await service.create_tenant(args.id, args.name, args.kind, args.gln)
            return f"created tenant {created.id} ({created.kind.value})"
        member = await service.add_member(args.tenant, args.issuer or settings.issuer, args.subject, args.role)
        return f"added member {member.subject} to {member.tenant_id} as {', '.join(r.value for r in member.roles)}"

    print(run_with_database(settings, work))
    return 0


@command("sweep")
def sweep(args: argparse.Namespace, settings: Settings) -> int:
    """Assess every stock position for expiry risk and judge the planning signals now (the hub also does both every
    sweep_interval_minutes)."""
    from datetime import date

    from hub.detect.fefo import FefoRules
    from hub.services import expiry, fefo, signals

    settings = locate(settings)

    async def work(db: Database) -> object:
        today = date.fromisoformat(args.date) if args.date else None
        report = await expiry.sweep(db, today)
        fefo.configure(FefoRules(settings.fefo_tolerance_days, settings.fefo_tolerance_units))
        planning = await signals.sweep(db, today, signals.rules_from(settings), full=args.full)
        found = ", ".join(f"{count} {kind}" for kind, count in sorted(planning.findings.items())) or "nothing"
        incremental = " (changed since the last sweep today)" if planning.incremental else ""
        return (
            f"expiry sweep: {report.positions} stock positions assessed, {report.alerts} alerts raised or raised "
            f"again; {report.sensors_refreshed} sensors re-derived the brands they watch\n"
            f"planning sweep: {planning.judged} demand series judged{incremental}"
            f" in {planning.seconds:.1f} s, found {found}; {planning.raised} alerts raised or updated, "
            f"{planning.resolved} resolved; {planning.recommendations} transfer recommendations open"
        )

    print(run_with_database(settings, work))
    return 0


@command("planning")
def planning(args: argparse.Namespace, settings: Settings) -> int:
    """Rebuild the daily demand series from the movement ledger (history recorded before planning, or a restore)."""
    from hub.services import demand

    async def work(_: Database) -> object:
        return await demand.rebuild(args.tenant)

    written = run_with_database(settings, work)
    print(f"{written} demand series rebuilt from the movement ledger")
    return 0


@command("keys")
def keys(args: argparse.Namespace, settings: Settings) -> int:
    """Rotate or list the hub's signing keys (the ring in its database). After a rotation the new key signs on every
    hub process within signing_key_refresh_seconds; the old one stays in the JWKS (and verifiable) until every token
    it signed has expired."""
    import time

    settings = locate(settings)
    ring = keyring_for(settings)
    longest = max(settings.oauth_access_token_ttl_seconds, settings.token_default_ttl_seconds)
    keep = getattr(args, "keep", None)
    keep = keep if keep is not None else longest + 60  # + the validator's clock leeway

    async def work(db: Database) -> object:
        await ring.load(db.db[KEYS])
        return await ring.rotate(keep) if args.keys_command == "rotate" else None

    new = run_with_database(settings, work)
    if args.keys_command == "rotate":
        print(f"new signing key {new.kid}; previous keys stay verifiable for {keep} s")  # type: ignore[attr-defined]
        return 0
    for key in ring.keys():
        if key.kid == ring.current.kid:
            state = "signing"
        else:
            state = "kept" if key.retire_after is None else f"retires in {int(key.retire_after - time.time())} s"
        print(f"{key.kid}  created {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(key.created_at))}  {state}")
    return 0


@command("stock")
def stock(args: argparse.Namespace, settings: Settings) -> int:
    """Recompute positions from the movement ledger; exit 1 when any drift was found (0: positions were true)."""
    from hub.services.stock import rebuild

    settings = locate(settings)

    async def work(_: Database) -> object:
        return await rebuild(args.tenant, repair=not args.check)

    report = run_with_database(settings, work)
    scope = f"tenant {args.tenant}" if args.tenant else "all tenants"
    print(f"{scope}: {report.movements} movements, {report.positions} positions, {len(report.drift)} drifted")  # type: ignore[attr-defined]
    for d in report.drift:  # type: ignore[attr-defined]
        print(f"  drift {d.tenant_id} location={d.location_id} sku={d.sku_id} lot={d.lot_id}: "
              f"stored {d.recorded if d.recorded is not None else 'missing'}, movements say {d.derived}")
    if report.drift:  # type: ignore[attr-defined]
        print("repaired" if report.repaired else "not repaired (--check)")  # type: ignore[attr-defined]
    return 1 if report.drift else 0  # type: ignore[attr-defined]


@command("import")
def import_command(args: argparse.Namespace, settings: Settings) -> int:
    """Import a CSV file for a tenant as its admin would; exit 1 when any row was refused."""
    from tqdm import tqdm

    from hub.auth import Principal
    from hub.imports import import_csv
    from tenants.access import Access
    from tenants.models import Tenant

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    mapping = {}
    for pair in args.map or []:
        column, sep, target = pair.partition("=")
        if not sep:
            raise CliError(f"--map takes COLUMN=FIELD, not {pair!r}")
        mapping[column] = target
    settings = locate(settings)
    try:
        total = sum(1 for _ in path.open(encoding="utf-8-sig")) - 1  # also reads every byte once: UTF-8 or not
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text: save it as CSV UTF-8") from None

    async def work(db: Database) -> object:
        if await Tenant.get(args.tenant) is None:
            raise CliError(f"tenant {args.tenant!r} not found (`lotpulse tenant list` shows the tenants)")
        principal = Principal(tenant_id=args.tenant, subject="cli:import", issuer="cli", roles=frozenset({"admin"}))
        access = await Access.load(principal)
        with path.open(encoding="utf-8-sig", newline="") as lines, tqdm(
            total=max(total, 0), unit="rows", desc=f"{args.kind} {'checked' if args.dry_run else 'imported'}",
            disable=args.quiet,
        ) as bar:
            return await import_csv(access, db, args.kind, lines, dry_run=args.dry_run,
                                    all_or_nothing=not args.valid_rows_only, mapping=mapping, progress=bar.update,
                                    audit_threshold=settings.audit_count_threshold)

    report = run_with_database(settings, work)
    print(f"{report.kind}: {report.rows} rows, {report.valid} valid, {report.created} created, "  # type: ignore[attr-defined]
          f"{report.updated} updated, {report.unchanged} unchanged, {len(report.errors)} refused"  # type: ignore[attr-defined]
          f"{' (dry run: nothing written)' if report.dry_run else ''}"  # type: ignore[attr-defined]
          f"{' (all or nothing: nothing written)' if report.errors and not report.applied else ''}"  # type: ignore[attr-defined]
          f"{' (refused part-way: earlier rows were written)' if report.errors and report.written else ''}")  # type: ignore[attr-defined]
    if report.ignored_columns:  # type: ignore[attr-defined]
        print(f"ignored columns: {', '.join(report.ignored_columns)}")  # type: ignore[attr-defined]
    for error in report.errors:  # type: ignore[attr-defined]
        print(f"  row {error.row}{f', column {error.column}' if error.column else ''}: {error.reason}")
    return 1 if report.errors else 0  # type: ignore[attr-defined]


@command("kit")
def kit_command(args: argparse.Namespace, settings: Settings) -> int:
    """Write the partner conformance kit (needs no database)."""
    from hub.kit import write_kit

    out = Path(args.out)
    for path in write_kit(out):
        print(path)
    print(f"see {out / 'README.txt'}")
    return 0


@command("webhooks")
def webhooks(args: argparse.Namespace, settings: Settings) -> int:
    """Run webhook dispatch and delivery without serving the API (any number of these may run)."""
    from webhooks.runtime import drain, run_forever

    settings = locate(settings)

    async def work(database: Database) -> object:
        if args.once:
            return await drain(settings)
        await run_forever(settings, database)
        return 0

    result = run_with_database(settings, work)
    if args.once:
        print(f"{result} delivery attempts made")
    return 0


@command("events")
def events_command(args: argparse.Namespace, settings: Settings) -> int:
    """Export the event history (archived months and the live log) since a date as gzip JSON lines, in log order."""
    from datetime import datetime

    from hub.events.archive import export

    def instant(text: str | None) -> datetime | None:
        if text is None:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise CliError(f"not an ISO date or instant: {text!r}") from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    since, until = instant(args.since), instant(args.until)
    assert since is not None
    out = Path(args.out or f"lotpulse-events-since-{since:%Y-%m-%d}.jsonl.gz")
    settings = locate(settings)

    async def work(db: Database) -> object:
        return await export(db, since, out, until=until, tenant_id=args.tenant)

    written = run_with_database(settings, work)
    print(f"{written} events written to {out}")
    return 0


@command("replay")
def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    """Play histories (JSON Lines of actions) through the real services on scratch databases with a virtual clock;
    print every alert raised. Each file gets its own database, dropped afterwards."""
    import tempfile
    import uuid
    from datetime import datetime

    from hub import replay

    histories = []
    for path in args.files:
        try:
            histories.append((path, Path(path).read_text().splitlines()))
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from None

    def first_instant(lines: list[str]) -> datetime:
        for text in lines:
            try:
                at = json.loads(text).get("at") if text.strip() else None
            except (ValueError, AttributeError):
                at = None
            if at:
                return replay.clock.VirtualClock(datetime.fromisoformat(at)).now()
        return datetime.now(UTC)

    async def play_all(uri: str) -> dict[str, object]:
        reports: dict[str, object] = {}
        for path, lines in histories:
            # A history's day of movements is one large batch: no request deadlines, like any shell tool.
            db = await Database.connect(uri, f"replay_{uuid.uuid4().hex[:12]}", deadlines=SHELL_DEADLINES)
            try:
                start = datetime.fromisoformat(args.start) if args.start else first_instant(lines)
                reports[path] = await replay.play(db, settings, lines, start)
            finally:
                await db.client.drop_database(db.db.name)
                await db.close()
        return reports

    if settings.mongodb_uri:
        reports = asyncio.run(play_all(settings.mongodb_uri))
    else:
        require_embedded()
        with tempfile.TemporaryDirectory(prefix="lotpulse-replay-") as scratch:
            server = EmbeddedServer(Path(scratch) / "db", log_path=Path(scratch) / "secantusd.log",
                                    sync_on_commit=False)
            server.start()
            try:
                reports = asyncio.run(play_all(server.uri))
            finally:
                server.stop()
    for path, report in reports.items():
        if len(reports) > 1:
            print(f"== {path}")
        print(replay.summary(report) or "no alerts")  # type: ignore[arg-type]
    if args.report:
        content = next(iter(reports.values())) if len(reports) == 1 else reports
        Path(args.report).write_text(json.dumps(content, indent=1, default=str))
    return 0


@command("schema")
def schema_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the GraphQL schema (SDL); the committed schema.graphql is this output."""
    from schema.schema import build_schema

    print(build_schema(settings).as_str())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lotpulse", description="Lotpulse supply-chain hub")
    sub = root.add_subparsers(dest="command", required=True)

    serve_p = sub.add_parser("serve", help="run the hub (embedded database unless LOTPULSE_MONGODB_URI is set)")
    serve_p.add_argument("--host")
    serve_p.add_argument("--port", type=int)

    token_p = sub.add_parser("token", help="print a bearer token signed with the hub's own key")
    token_p.add_argument("--tenant", required=True)
    token_p.add_argument("--role", action="append", choices=[r.value for r in Role], required=True)
    token_p.add_argument("--ttl", type=_parse_ttl, help="lifetime, e.g. 15m, 1h (default 1h)")
    token_p.add_argument("--subject")

    tenant_p = sub.add_parser("tenant", help="create tenants and members")
    tenant_sub = tenant_p.add_subparsers(dest="tenant_command", required=True)
    create_p = tenant_sub.add_parser("create")
    create_p.add_argument("id", help="slug, e.g. acme-foods")
    create_p.add_argument("--name", required=True)
    create_p.add_argument("--kind", required=True, choices=[k.value for k in TenantKind])
    create_p.add_argument("--gln")
    tenant_sub.add_parser("list", help="print every tenant: id, kind, name")
    member_p = tenant_sub.add_parser("add-member")
    member_p.add_argument("tenant")
    member_p.add_argument("--subject", required=True)
    member_p.add_argument("--issuer", help="identity provider (default: the hub itself)")
    member_p.add_argument("--role", action="append", choices=[r.value for r in Role], required=True)
    sweep_p = sub.add_parser("sweep", help="assess all stock for expiry risk and planning signals now")
    sweep_p.add_argument("--date", help="judge as of this ISO date (default: today, UTC)")
    sweep_p.add_argument("--full", action="store_true", help="judge every demand series, not only those changed "
                         "since the last sweep today")
    planning_p = sub.add_parser("planning", help="planning signals")
    planning_sub = planning_p.add_subparsers(dest="planning_command", required=True)
    rebuild_series_p = planning_sub.add_parser("rebuild", help="rebuild the daily demand series from the ledger")
    rebuild_series_p.add_argument("--tenant", help="only this tenant")
    keys_p = sub.add_parser("keys", help="rotate or list the hub's token signing keys")
    keys_sub = keys_p.add_subparsers(dest="keys_command", required=True)
    rotate_p = keys_sub.add_parser("rotate", help="sign with a new key; keep the old one until its tokens expired")
    rotate_p.add_argument(
        "--keep", type=_parse_ttl, help="how long the old key stays verifiable (default: longest token lifetime)"
    )
    keys_sub.add_parser("list")

    stock_p = sub.add_parser("stock", help="stock positions")
    stock_sub = stock_p.add_subparsers(dest="stock_command", required=True)
    rebuild_p = stock_sub.add_parser("rebuild", help="recompute positions from movements and report any drift")
    rebuild_p.add_argument("--tenant", help="only this tenant")
    rebuild_p.add_argument("--check", action="store_true", help="report drift without repairing it")

    import_p = sub.add_parser("import", help="import SKUs, locations or stock counts from a CSV file")
    import_p.add_argument("kind", choices=["skus", "locations", "stock"])
    import_p.add_argument("file", help="CSV with a header row (UTF-8)")
    import_p.add_argument("--tenant", required=True, help="the tenant the rows belong to")
    import_p.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    import_p.add_argument("--valid-rows-only", action="store_true",
                          help="write the valid rows even when others are refused (default: all or nothing)")
    import_p.add_argument("--map", action="append", metavar="COLUMN=FIELD", help="read COLUMN as FIELD (repeatable)")
    import_p.add_argument("--quiet", action="store_true", help="no progress bar")
    kit_p = sub.add_parser("kit", help="write the partner conformance kit (scans, EPCIS documents, webhook "
                           "receiver, a replay story raising every alert kind)")
    kit_p.add_argument("--out", default="lotpulse-kit", help="folder to write (default: ./lotpulse-kit)")
    webhooks_p = sub.add_parser("webhooks", help="outgoing webhooks")
    webhooks_sub = webhooks_p.add_subparsers(dest="webhooks_command", required=True)
    worker_p = webhooks_sub.add_parser("worker", help="dispatch events and deliver webhooks until stopped")
    worker_p.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    events_p = sub.add_parser("events", help="the event log")
    events_sub = events_p.add_subparsers(dest="events_command", required=True)
    export_p = events_sub.add_parser("export", help="write archived and live events as gzip JSON lines")
    export_p.add_argument("--since", required=True, help="ISO date or instant (UTC unless it says otherwise)")
    export_p.add_argument("--until", help="ISO date or instant, exclusive (default: now)")
    export_p.add_argument("--tenant", help="only events this tenant is in the audience of")
    export_p.add_argument("--out", help="file to write (default: lotpulse-events-since-DATE.jsonl.gz)")
    replay_p = sub.add_parser("replay", help="play histories of actions on a scratch database and print the alerts")
    replay_p.add_argument("files", nargs="+", help="JSON Lines histories (see README: Replaying a history)")
    replay_p.add_argument("--report", help="write the alerts with audiences, evidence and events as JSON here")
    replay_p.add_argument("--start", help="start the virtual clock here (default: the first action's `at`, or now)")
    schema_p = sub.add_parser("schema", help="the GraphQL schema")
    schema_sub = schema_p.add_subparsers(dest="schema_command", required=True)
    schema_sub.add_parser("print", help="print the schema in GraphQL SDL (e.g. > schema.graphql)")
    return root


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings)
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args, settings)
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
