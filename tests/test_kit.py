"""``lotpulse kit``: every part of the partner kit works against the hub that wrote it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jsonschema
import pytest
from standardwebhooks.webhooks import Webhook

from hub.db import free_port
from hub.epcis.validation import cbv_errors, schema_errors
from hub.events.catalogue import schema_of
from hub.models.alert import AlertKind
from hub.models.event import EVENT_TYPES
from hub.scans import parse_scan

REPO = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def run(*args: str, env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env | {"PYTHONPATH": str(REPO)}, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kit")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")}
    written = run("kit", "--out", "partner-kit", env=env, cwd=folder, timeout=60)
    assert written.returncode == 0, written.stderr
    return folder / "partner-kit"


def test_the_scans_parse_and_the_epcis_documents_are_valid(kit):
    lines = (kit / "scans.txt").read_text().splitlines()
    scans = [line for line in lines if not line.startswith("#")]
    assert len(scans) == 4
    parsed = [parse_scan(scan) for scan in scans]
    assert {p.gtin for p in parsed} == {"04006381333931"} and {p.lot_code for p in parsed} == {"B240315"}
    assert parsed[-1].sscc == "106141411234567897"
    documents = sorted((kit / "epcis").glob("*.jsonld"))
    assert [d.name for d in documents] == ["receiving.jsonld", "sensor.jsonld", "shipping.jsonld"]
    for path in documents:
        document = json.loads(path.read_text())
        assert schema_errors(document) == [], path.name
        for event in document["epcisBody"]["eventList"]:
            assert cbv_errors(event) == [], path.name


def test_the_receiver_verifies_signatures_and_prints_each_event(kit):
    port = free_port()
    receiver = subprocess.Popen([sys.executable, str(kit / "receiver.py"), "--secret", SECRET, "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert receiver.stdout is not None
        assert "listening" in receiver.stdout.readline()  # waits for the server to be up
        body = json.dumps({"type": "alert.raised", "timestamp": "2026-09-07T14:00:00Z", "data": {"kind": "mismatch"}})
        now = datetime.now(UTC)
        headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": Webhook(SECRET).sign("msg_1", now, body), "content-type": "application/json"}
        assert httpx.post(f"http://127.0.0.1:{port}/", content=body, headers=headers).status_code == 204
        assert receiver.stdout.readline().startswith('msg_1 alert.raised: {"kind": "mismatch"}')
        forged = headers | {"webhook-id": "msg_2", "webhook-signature": "v1,AAAA"}
        assert httpx.post(f"http://127.0.0.1:{port}/", content=body, headers=forged).status_code == 401
        assert receiver.stdout.readline().startswith("REFUSED msg_2")
    finally:
        receiver.kill()
        receiver.wait(10)


def test_the_story_raises_every_kind_of_alert(kit, mongo_uri):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")} | {
        "LOTPULSE_MONGODB_URI": mongo_uri, "LOTPULSE_LOG_LEVEL": "WARNING"}
    played = run("replay", "story.jsonl", "--report", "report.json", env=env, cwd=kit)
    assert played.returncode == 0, played.stderr
    report = json.loads((kit / "report.json").read_text())
    assert report["errors"] == []
    assert {alert["kind"] for alert in report["alerts"]} == {kind.value for kind in AlertKind}
    # the retailer's own findings stay its own: the brand hears only of what concerns its goods
    brand_heard = {alert["kind"] for alert in report["alerts"] if "brand" in alert["audience"]}
    assert brand_heard <= {"mismatch", "expiry_risk", "sensor_spike", "sensor_offline"}


def test_the_webhook_catalogue_and_schemas_are_those_the_hub_serves(kit):
    listing = json.loads((kit / "webhooks" / "catalogue.json").read_text())["eventTypes"]
    assert [item["type"] for item in listing] == list(EVENT_TYPES)
    for item in listing:
        schema = json.loads((kit / "webhooks" / "schemas" / f"{item['type']}.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema == schema_of(item["type"]) and item["schema"] == f"/webhooks/schemas/{item['type']}.json"
