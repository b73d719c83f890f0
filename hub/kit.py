"""``lotpulse kit``: what a partner needs to test an integration with the hub before it goes live.

The kit is written fresh each time, from the hub's own rules, so it cannot drift from what the hub accepts:
GS1 scans in each form the hub reads, EPCIS 2.0 documents for its capture interface, a local webhook receiver that
verifies Standard Webhooks signatures and prints each event, the webhook event catalogue with a JSON Schema per type,
and a replay history (``lotpulse replay``) of a small story that raises each kind of alert.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.events.catalogue import CATALOGUE, entry, schema_of

GTIN = "04006381333931"
SSCC = "106141411234567897"
TODAY = date(2026, 9, 7)  # a Monday; the sales history ends the day before
DAYS = 98
RHYTHM = (0.8, 0.87, 0.93, 1.0, 1.13, 1.33, 0.94)  # Monday..Sunday around a mean of 1
MEAN = 20

SCANS = [
    ("GS1-128 element string, FNC1 written as <GS>", f"]C101{GTIN}17261007<GS>10B240315"),
    ("human-readable (HRI) form", f"(01){GTIN}(17)261007(10)B240315(30)100"),
    ("GS1 Digital Link URI", f"https://id.gs1.org/01/{GTIN}/10/B240315?17=261007&30=100"),
    ("pallet label (SSCC) with its contents", f"(00){SSCC}(02){GTIN}(37)12(10)B240315"),
]

RECEIVER = '''"""A local webhook receiver for testing a Lotpulse endpoint: verifies each delivery's Standard Webhooks
signature with the official library and prints the event.

    pip install standardwebhooks
    python receiver.py --secret whsec_... [--port 8765]

Register http://<this machine>:PORT/ as the endpoint's URL (createWebhookEndpoint); the secret is the one the hub
answered. A delivery with a bad signature or a stale timestamp gets 401 and is printed as refused.
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> None:
    parser = argparse.ArgumentParser(description="verify and print Lotpulse webhook deliveries")
    parser.add_argument("--secret", required=True, help="the endpoint's signing secret (whsec_...)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    webhook = Webhook(args.secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                event = webhook.verify(body, {k.lower(): v for k, v in self.headers.items()})
            except WebhookVerificationError as exc:
                print(f"REFUSED {self.headers.get('webhook-id')}: {exc}", flush=True)
                self.send_response(401)
                self.end_headers()
                return
            print(f"{self.headers.get('webhook-id')} {event.get('type')}: {json.dumps(event.get('data'))}", flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:  # the events are the output
            pass

    print(f"listening on http://{args.host}:{args.port}/", flush=True)
    HTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
'''

README = """Lotpulse conformance kit
========================

scans.txt        GS1 scans the hub reads on dispatch, receipt and movement lines (field `scan`), one per line
                 after its description; a scan with a wrong check digit is refused naming the element.
epcis/*.jsonld   EPCIS 2.0 documents for POST /epcis/capture (bearer token with the write scope): a shipping
                 event with the lot's ILMD, the matching receiving event, and a sensor report. Replace the
                 GTIN and locations with yours to see your own data mapped to dispatches, receipts and readings.
receiver.py      a local webhook receiver: `python receiver.py --secret whsec_...` verifies every delivery's
                 Standard Webhooks signature and prints its event.
webhooks/        catalogue.json (every event type: meaning, partnership scope, audience, ordering key) and
                 schemas/<type>.json, the JSON Schema of each delivery body; the hub serves the same at
                 GET /webhooks/catalogue and GET /webhooks/schemas/<type>.json.
story.jsonl      a history for `lotpulse replay story.jsonl`: a brand and a retailer, 14 weeks of sales and
                 one day of dock, shelf and sensor trouble; it raises every kind of alert the hub knows
                 (mismatch, expiry_risk, sensor_spike, sensor_offline, velocity_drop, velocity_spike,
                 obsolescence_risk, fefo_violation).
"""


def _noon(day: date) -> str:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC).isoformat()


def _day(n: int) -> date:
    return TODAY - timedelta(days=DAYS - n)


def _sales_story() -> list[dict[str, Any]]:
    """The retailer's own label, four SKUs at one store: a sales drop, a surge, a surplus and a FEFO slip."""
    actions: list[dict[str, Any]] = []
    moves: dict[date, list[dict[str, Any]]] = {}
    first = _day(0) - timedelta(days=1)
    for sku in ("DROP", "SURGE", "SURPLUS", "FEFO"):
        actions.append({"action": "sku", "tenant": "shop", "code": sku, "name": f"House {sku.lower()}",
                        "shelf_life_days": 400})
        daily = [round(MEAN * RHYTHM[_day(d).weekday()]) for d in range(DAYS)]
        if sku == "DROP":
            daily[-7:] = [round(x * 0.35) for x in daily[-7:]]
        elif sku == "SURGE":
            daily[-7:] = [round(x * 2.6) for x in daily[-7:]]
        # a surge that empties the shelf within days is what makes a velocity spike worth an alert
        stock = sum(daily) + (MEAN * 5 if sku == "SURGE" else MEAN * 30)
        lots = {"A": stock // 2, "B": stock - stock // 2}
        if sku == "FEFO":
            lots = {"A": stock - MEAN * 10, "B": MEAN * 10}
        for code, units in lots.items():
            expires = TODAY + timedelta(days=160 if code == "A" else 330)
            moves.setdefault(first, []).append({"sku": sku, "kind": "receipt", "quantity": units,
                                                "lot": f"{sku}-{code}", "expires_on": expires.isoformat(),
                                                "occurred_at": _noon(first)})
        left = dict(lots)
        for d, units in enumerate(daily):
            order = ["B", "A"] if sku == "FEFO" and d >= DAYS - 3 else ["A", "B"]  # the newer lot sold first
            for code in order:
                take = min(units, left[code])
                if take > 0:
                    moves.setdefault(_day(d), []).append({"sku": sku, "kind": "sale", "quantity": -take,
                                                          "lot": f"{sku}-{code}", "occurred_at": _noon(_day(d))})
                    left[code] -= take
                    units -= take
        if sku == "SURPLUS":
            late = TODAY - timedelta(days=10)
            moves.setdefault(late, []).append({"sku": sku, "kind": "receipt", "quantity": MEAN * 300,
                                               "lot": "SURPLUS-C", "expires_on": (TODAY + timedelta(days=700))
                                               .isoformat(), "occurred_at": _noon(late)})
    for day in sorted(moves):
        actions.append({"action": "movements", "tenant": "shop", "location": "STORE-1", "at": _noon(day),
                        "movements": [dict(m, key=f"{m['sku']}-{m['occurred_at'][:10]}-{n}")
                                      for n, m in enumerate(moves[day])]})
    actions.append({"action": "planning_sweep", "at": _noon(TODAY)})
    return actions


def _dock_story() -> list[dict[str, Any]]:
    """The day after: a lot swapped at the dock, a short-dated dispatch, a warm shelf, a sensor gone quiet."""
    t = datetime(TODAY.year, TODAY.month, TODAY.day, 14, tzinfo=UTC)
    expires = TODAY + timedelta(days=30)
    line = {"sku": "YOG-1", "lot": "B240315", "quantity": 100, "produced_on": TODAY.isoformat(),
            "expires_on": expires.isoformat()}
    short = {"sku": "YOG-1", "lot": "B240301", "quantity": 50, "produced_on": (TODAY - timedelta(days=20))
             .isoformat(), "expires_on": (TODAY + timedelta(days=10)).isoformat()}
    actions: list[dict[str, Any]] = [
        {"action": "dispatch", "at": t.isoformat(), "tenant": "brand", "ref": "ASN-1", "consignee": "shop",
         "to_location": "STORE-1", "lines": [line]},
        # the bags say B240314: one near-miss mismatch, the lot held
        {"action": "receipt", "at": (t + timedelta(hours=2)).isoformat(), "tenant": "shop", "dispatch": "ASN-1",
         "location": "STORE-1", "lines": [dict(line, lot="B240314")]},
        # 10 days of shelf life left where the retailer asks for 20: an expiry risk before it ships
        {"action": "dispatch", "at": (t + timedelta(hours=3)).isoformat(), "tenant": "brand", "ref": "ASN-2",
         "consignee": "shop", "to_location": "STORE-1", "lines": [short]},
        {"action": "sensor", "at": (t + timedelta(hours=4)).isoformat(), "tenant": "shop", "device": "probe-1",
         "location": "STORE-1", "interval_minutes": 5},
    ]
    start = t + timedelta(hours=4, minutes=5)
    samples: list[list[Any]] = []
    for k in range(36):  # three hours every 5 minutes; a blocked vent from the 12th sample for 30 minutes
        at = start + timedelta(minutes=5 * k)
        samples.append([at.isoformat(), 9.5 if 12 <= k < 18 else 4.0])
    for k in range(0, len(samples), 3):  # the gateway uploads every 15 minutes
        batch = samples[k:k + 3]
        actions.append({"action": "readings", "at": (datetime.fromisoformat(batch[-1][0]) + timedelta(minutes=1))
                        .isoformat(), "tenant": "shop", "device": "probe-1", "samples": batch})
    last = datetime.fromisoformat(samples[-1][0])
    actions += [{"action": "clock", "at": (last + timedelta(minutes=10 * k)).isoformat()} for k in range(1, 9)]
    return actions


def story() -> list[dict[str, Any]]:
    setup: list[dict[str, Any]] = [
        {"action": "clock", "at": _noon(_day(0) - timedelta(days=2))},
        {"action": "tenant", "id": "brand", "kind": "supplier", "name": "Acme Dairy"},
        {"action": "tenant", "id": "shop", "kind": "retailer", "name": "Shopco"},
        {"action": "partnership", "inviter": "brand", "invitee": "shop", "inviter_shares": ["sku_master", "dispatches"],
         "invitee_shares": ["dispatches", "stock", "sensors", "alerts"]},
        {"action": "sku", "tenant": "brand", "code": "YOG-1", "name": "Yogurt 500 g", "gtin": GTIN,
         "shelf_life_days": 30, "temp_max_c": 6, "excursion_sensitivity": 0.2, "excursion_min_minutes": 15,
         "min_remaining_shelf_life_days": 20},
        {"action": "location", "tenant": "shop", "code": "STORE-1", "name": "Store 1", "kind": "store"},
        {"action": "location", "tenant": "brand", "code": "DC-1", "name": "Acme DC", "kind": "dc"},
    ]
    return setup + _sales_story() + _dock_story()


def epcis_documents() -> dict[str, dict[str, Any]]:
    """Shipping (with the lot's ILMD), receiving and a sensor report, as EPCIS 2.0 JSON-LD documents."""
    lot = f"https://id.gs1.org/01/{GTIN}/10/B240315"
    context = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]

    def document(name: str, event: dict[str, Any]) -> dict[str, Any]:
        return {"@context": context, "type": "EPCISDocument", "schemaVersion": "2.0",
                "creationDate": "2026-09-07T14:00:00Z", "id": f"urn:uuid:lotpulse-kit-{name}",
                "epcisBody": {"eventList": [event]}}

    shipping = {"type": "ObjectEvent", "eventTime": "2026-09-07T14:00:00Z", "eventTimeZoneOffset": "+00:00",
                "action": "ADD", "bizStep": "shipping", "disposition": "in_transit",
                "epcList": [], "quantityList": [{"epcClass": lot, "quantity": 100, "uom": "EA"}],
                "bizLocation": {"id": "https://id.gs1.org/414/4006381000016"},
                "ilmd": {"cbvmda:lotNumber": "B240315", "cbvmda:itemExpirationDate": "2026-10-07",
                         "cbvmda:productionDate": "2026-09-07"}}
    receiving = {"type": "ObjectEvent", "eventTime": "2026-09-07T16:00:00Z", "eventTimeZoneOffset": "+00:00",
                 "action": "OBSERVE", "bizStep": "receiving", "disposition": "in_progress",
                 "epcList": [], "quantityList": [{"epcClass": lot, "quantity": 100, "uom": "EA"}],
                 "bizLocation": {"id": "https://id.gs1.org/414/4006381000023"}}
    sensor = {"type": "ObjectEvent", "eventTime": "2026-09-07T18:00:00Z", "eventTimeZoneOffset": "+00:00",
              "action": "OBSERVE", "bizStep": "storing", "epcList": [],
              "quantityList": [{"epcClass": lot, "quantity": 100, "uom": "EA"}],
              "sensorElementList": [{"sensorMetadata": {"time": "2026-09-07T18:00:00Z",
                                                        "deviceID": "urn:epc:id:giai:4006381.probe1"},
                                     "sensorReport": [{"type": "gs1:Temperature", "value": 9.5, "uom": "CEL"}]}]}
    return {"shipping.jsonld": document("shipping", shipping), "receiving.jsonld": document("receiving", receiving),
            "sensor.jsonld": document("sensor", sensor)}


def write_kit(out: Path) -> list[Path]:
    """Write the kit into ``out`` (created if needed); answers the files written."""
    (out / "epcis").mkdir(parents=True, exist_ok=True)
    (out / "webhooks" / "schemas").mkdir(parents=True, exist_ok=True)
    files = {
        out / "README.txt": README,
        out / "scans.txt": "".join(f"# {what}\n{scan}\n" for what, scan in SCANS),
        out / "receiver.py": RECEIVER,
        out / "story.jsonl": "".join(json.dumps(a) + "\n" for a in story()),
        **{out / "epcis" / name: json.dumps(doc, indent=1) + "\n" for name, doc in epcis_documents().items()},
        out / "webhooks" / "catalogue.json": json.dumps({"eventTypes": [entry(name) for name in CATALOGUE]},
                                                        indent=1) + "\n",
        **{out / "webhooks" / "schemas" / f"{name}.json": json.dumps(schema_of(name), indent=1) + "\n"
           for name in CATALOGUE},
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return sorted(files)
