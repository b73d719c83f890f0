"""The committed schema.graphql is the schema the hub serves, and GraphiQL works without internet access."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from pathlib import Path

from hub.config import Settings
from schema.schema import build_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
REGENERATE = "regenerate it with `lotpulse schema print > schema.graphql` (or `.venv/bin/lotpulse ...`) and commit it"


def test_committed_schema_file_is_current():
    current = build_schema(Settings()).as_str() + "\n"
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    assert committed == current, f"schema.graphql is stale: {REGENERATE}"


def test_schema_print_command_prints_the_schema():
    printed = subprocess.run(
        [sys.executable, "-m", "hub.cli", "schema", "print"], capture_output=True, text=True, timeout=60, check=True
    )
    assert printed.stdout == build_schema(Settings()).as_str() + "\n"
    assert printed.stderr == ""  # no third-party warnings on an ordinary command
    assert "type Query {" in printed.stdout


async def test_graphiql_is_served_by_the_hub_with_pinned_assets(module_hub):
    page = await module_hub.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "GraphiQL" in page.text
    assert "Authorization" in page.text  # the headers tab comes pre-filled with the bearer-token template
    assets = re.findall(r'(?:src|href)="(/graphiql/[^"]+)" integrity="(sha384-[^"]+)"', page.text)
    assert len(assets) == 4
    # nothing is loaded from anywhere but the hub
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)
    for path, integrity in assets:
        asset = await module_hub.http.get(path)
        assert asset.status_code == 200, path
        digest = "sha384-" + base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
        assert digest == integrity, f"{path} does not match its pinned hash"
