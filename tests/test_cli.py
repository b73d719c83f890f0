"""The ``lotpulse`` command, run as a user runs it: a separate process, configured by environment variables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.db import free_port

ME = "{ me { tenant { id name kind } subject roles } }"
UPSERT_SKU = (
    'mutation { upsertSku(input: {code: "APL-1", name: "Apple", gtin: "4006381333931"}) { created sku { id } } }'
)
SKU = "query ($id: ID!) { sku(id: $id) { code name gtin } }"


REPO = Path(__file__).resolve().parent.parent


def lotpulse(*args: str, env: dict[str, str], timeout: float = 60, cwd: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: the project's modules, from whatever folder the user runs the command in.
    env = env | {"PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


@pytest.fixture
def cli_env(settings, key_file: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a shell user pointing the CLI at the test hub's database, key and issuer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")}
    return env | {
        "LOTPULSE_MONGODB_URI": settings.mongodb_uri,
        "LOTPULSE_DATABASE": settings.database,
        "LOTPULSE_DATA_DIR": str(tmp_path / "cli-data"),
        "LOTPULSE_SIGNING_KEY_FILE": str(key_file),
        "LOTPULSE_PUBLIC_URL": settings.public_url,
        "LOTPULSE_LOG_LEVEL": "WARNING",
        "LOTPULSE_RUNTIME_DIR": str(tmp_path / "run"),
    }


async def test_tenant_create_add_member_and_token_work_against_the_hub(hub, cli_env):
    # given a tenant and a member created from the shell
    created = lotpulse("tenant", "create", "acme", "--name", "Acme Foods", "--kind", "supplier", env=cli_env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "created tenant acme (supplier)"
    member = lotpulse("tenant", "add-member", "acme", "--subject", "alice", "--role", "planner", "--role", "viewer",
                      env=cli_env)
    assert member.returncode == 0, member.stderr
    assert "added member alice to acme" in member.stdout
    # when the shell mints a token
    minted = lotpulse("token", "--tenant", "acme", "--role", "admin", "--ttl", "1h", env=cli_env)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["iss"] == hub.settings.issuer
    # then the hub accepts it for that tenant and role
    response = await hub.http.post("/graphql", json={"query": ME}, headers={"authorization": f"Bearer {token}"})
    assert response.json()["data"]["me"] == {
        "tenant": {"id": "acme", "name": "Acme Foods", "kind": "supplier"},
        "subject": "local:acme",
        "roles": ["admin"],
    }
    members = await hub.ok("{ members { edges { node { subject issuer roles } } } }", tenant="acme")
    assert members["members"]["edges"] == [
        {"node": {"subject": "alice", "issuer": hub.settings.issuer, "roles": ["planner", "viewer"]}}
    ]


def test_cli_reports_errors_without_tracebacks(cli_env):
    assert lotpulse("tenant", "create", "acme", "--name", "Acme", "--kind", "supplier", env=cli_env).returncode == 0
    again = lotpulse("tenant", "create", "acme", "--name", "Acme", "--kind", "supplier", env=cli_env)
    assert again.returncode == 2 and "already exists" in again.stderr
    bad_id = lotpulse("tenant", "create", "Not_A_Slug", "--name", "X", "--kind", "supplier", env=cli_env)
    assert bad_id.returncode == 2 and "tenant id" in bad_id.stderr
    unknown = lotpulse("tenant", "add-member", "ghost", "--subject", "s", "--role", "admin", env=cli_env)
    assert unknown.returncode == 2 and "not found" in unknown.stderr
    for result in (again, bad_id, unknown):
        assert "Traceback" not in result.stderr


def test_token_options_are_checked(cli_env):
    assert lotpulse("tenant", "create", "acme", "--name", "Acme", "--kind", "supplier", env=cli_env).returncode == 0
    short = lotpulse("token", "--tenant", "acme", "--role", "viewer", "--ttl", "15m", env=cli_env)
    claims = jwt.decode(short.stdout.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900
    assert claims[ "https://lotpulse.dev/claims"] == {"tenant": "acme", "roles": ["viewer"]}
    assert lotpulse("token", "--tenant", "acme", "--role", "admin", "--ttl", "soon", env=cli_env).returncode == 2
    assert lotpulse("token", "--tenant", "acme", "--role", "root", env=cli_env).returncode == 2


def test_token_refuses_an_unknown_tenant_and_tenant_list_shows_them(cli_env):
    ghost = lotpulse("token", "--tenant", "ghost", "--role", "admin", env=cli_env)
    assert ghost.returncode == 2 and ghost.stdout == ""
    assert "tenant 'ghost' not found" in ghost.stderr and "Traceback" not in ghost.stderr
    assert lotpulse("tenant", "list", env=cli_env).stdout.strip() == "no tenants yet"
    for tenant_id, kind in (("zeta", "retailer"), ("acme", "supplier")):
        created = lotpulse("tenant", "create", tenant_id, "--name", tenant_id.title(), "--kind", kind, env=cli_env)
        assert created.returncode == 0, created.stderr
    listed = lotpulse("tenant", "list", env=cli_env)
    assert listed.returncode == 0 and listed.stderr == ""
    assert listed.stdout.splitlines() == ["acme\tsupplier\tAcme", "zeta\tretailer\tZeta"]


def test_without_a_hub_the_cli_says_what_to_do_and_creates_nothing(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")} | {
        "LOTPULSE_RUNTIME_DIR": str(tmp_path / "run"),
    }
    for args in (("tenant", "create", "acme", "--name", "Acme", "--kind", "supplier"),
                 ("token", "--tenant", "acme", "--role", "admin")):
        result = lotpulse(*args, env=env, cwd=elsewhere)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "no Lotpulse hub found" in result.stderr
        assert str(elsewhere / "lotpulse-data") in result.stderr  # names the folder it looked for
        assert "make run" in result.stderr and "LOTPULSE_DATA_DIR" in result.stderr
    assert list(elsewhere.iterdir()) == []  # no second database, no second key ring


def test_serve_without_the_embedded_extra_or_a_uri_says_what_to_install_or_set(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")} | {
        "LOTPULSE_DATA_DIR": str(tmp_path / "data"),
        "LOTPULSE_RUNTIME_DIR": str(tmp_path / "run"),
        "PYTHONPATH": str(REPO),
    }
    # as if `pip install lotpulse` without the extra: the secantus package cannot be imported
    without = "import sys; sys.modules['secantus'] = None; from hub.cli import main; sys.exit(main(['serve']))"
    result = subprocess.run([sys.executable, "-c", without], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "LOTPULSE_MONGODB_URI" in result.stderr and "pip install 'lotpulse[embedded]'" in result.stderr
    assert not (tmp_path / "data").exists()


def test_the_embedded_database_is_an_optional_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [dep for dep in project["dependencies"] if dep.lower().startswith("secantusdb")]
    assert [dep for dep in project["optional-dependencies"]["embedded"] if dep.startswith("secantusdb")]
    assert '".[embedded,test]"' in (REPO / "Makefile").read_text()  # make run / make test / .ci/run install it


# -- lotpulse serve on the embedded database ------------------------------------------------------------------------


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    env = env | {"PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("lotpulse serve did not become ready")


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def _port_open(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
        return True
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_serve_on_the_embedded_database_keeps_data_across_a_restart(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")} | {
        "LOTPULSE_DATA_DIR": str(tmp_path / "data"),
        "LOTPULSE_PORT": str(port),
        "LOTPULSE_LOG_LEVEL": "WARNING",
        "LOTPULSE_WEBHOOK_WORKER": "false",
        "LOTPULSE_RUNTIME_DIR": str(tmp_path / "run"),
    }
    url = f"http://127.0.0.1:{port}/graphql"
    # given a running hub with no MongoDB URI: it starts its embedded database
    hub = _serve(env, port)
    try:
        marker = json.loads((tmp_path / "data" / "embedded.json").read_text())
        # when a tenant is created from the shell in another folder, naming no data folder: the CLI finds the
        # running hub (its data folder, embedded database, issuer URL and key ring) instead of making its own
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        shell = {k: v for k, v in env.items() if k not in ("LOTPULSE_DATA_DIR", "LOTPULSE_PORT")}
        created = lotpulse("tenant", "create", "acme", "--name", "Acme", "--kind", "supplier", env=shell, cwd=elsewhere)
        assert created.returncode == 0, created.stderr
        assert f"using the hub on port {port}" in created.stderr
        token = lotpulse("token", "--tenant", "acme", "--role", "admin", env=shell, cwd=elsewhere).stdout.strip()
        assert list(elsewhere.iterdir()) == []
        headers = {"authorization": f"Bearer {token}"}
        upserted = httpx.post(url, json={"query": UPSERT_SKU}, headers=headers, timeout=30).json()
        assert upserted["data"]["upsertSku"]["created"] is True, upserted
        sku_id = upserted["data"]["upsertSku"]["sku"]["id"]
    finally:
        _stop(hub)
    # then stopping the hub stops its database too
    assert hub.returncode == 0
    assert not _port_open(marker["port"])
    assert not (tmp_path / "data" / "embedded.json").exists()
    assert list((tmp_path / "run").iterdir()) == []  # the running-hub record went with it
    # and after a restart the SKU is still there
    hub = _serve(env, port)
    try:
        read = httpx.post(url, json={"query": SKU, "variables": {"id": sku_id}}, headers=headers, timeout=30).json()
        assert read == {"data": {"sku": {"code": "APL-1", "name": "Apple", "gtin": "04006381333931"}}}
    finally:
        _stop(hub)


def test_serve_applies_the_garbage_collector_settings(cli_env, settings):
    # given a hub served with thresholds of its own and the metrics on
    port = free_port()
    env = cli_env | {"LOTPULSE_PORT": str(port), "LOTPULSE_PUBLIC_URL": f"http://127.0.0.1:{port}",
                     "LOTPULSE_WEBHOOK_WORKER": "false", "LOTPULSE_METRICS_TOKEN": "gc-test",
                     "LOTPULSE_GC_THRESHOLDS": "12345,11,13"}
    hub = _serve(env, port)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"authorization": "Bearer gc-test"},
                         timeout=30).text
    finally:
        _stop(hub)
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(text) for sample in family.samples}
    # then its collector runs with them, and what start-up made is frozen (LOTPULSE_GC_FREEZE is on by default)
    assert [samples[("lotpulse_gc_threshold", (("generation", str(g)),))] for g in range(3)] == [12345, 11, 13]
    assert samples[("lotpulse_gc_tracked_objects", (("generation", "permanent"),))] > 50_000
    assert samples[("lotpulse_gc_pause_seconds_count", (("generation", "2"),))] >= 1  # the collection before the freeze


def test_an_unusable_setting_stops_the_cli_with_one_line_naming_it(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")}
    result = lotpulse("serve", env=env | {"LOTPULSE_GC_THRESHOLDS": "abc", "LOTPULSE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: LOTPULSE_GC_THRESHOLDS='abc': not a comma-separated list of whole numbers"]
    assert not any(tmp_path.iterdir())  # nothing was started or written
