"""importCsv: 10,000 SKUs with 20 bad rows, each named; all or nothing, valid rows only, idempotent re-import."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from hub.gs1 import check_digit
from hub.imports import _ranges
from hub.models.sku import Sku
from tests.catalog.conftest import fresh_gtin

REPO = Path(__file__).resolve().parents[2]

IMPORT = """
mutation($kind: ImportKind!, $csv: String!, $dry: Boolean, $valid: Boolean, $mapping: [ColumnMapping!]) {
  importCsv(kind: $kind, csv: $csv, dryRun: $dry, validRowsOnly: $valid, mapping: $mapping) {
    rows valid created updated unchanged applied ignoredColumns errors { row column reason }
  }
}
"""


def gtin(n: int) -> str:
    body = f"2{n:011d}"
    return body + str(check_digit(body))


def sku_file(tenant: str, taken_gtin: str) -> tuple[str, dict[int, str]]:
    """10,000 rows (spreadsheet rows 2-10,001) with 20 bad ones; answers the CSV and the bad row -> column."""
    bad_rows = {}
    lines = ["Item Code,Description,EAN,Pack Size,Unit Cost,Currency,Category,Colour"]
    for n in range(10_000):
        row = n + 2
        code, name, ean, pack, cost, currency = f"{tenant}-{n}", f"Item {n}", gtin(n), "6", "1.25", "EUR"
        kind = (n // 500) % 7 if n % 500 == 7 else None  # one bad row in each block of 500, of seven kinds
        if kind == 0:
            ean, bad_rows[row] = ean[:-1] + str((int(ean[-1]) + 1) % 10), "EAN"  # wrong check digit
        elif kind == 1:
            name, bad_rows[row] = "", "Description"
        elif kind == 2:
            pack, bad_rows[row] = "-2", "Pack Size"
        elif kind == 3:
            cost, bad_rows[row] = "cheap", "Unit Cost"
        elif kind == 4:
            currency, bad_rows[row] = "EURO", "Currency"
        elif kind == 5:
            ean, bad_rows[row] = taken_gtin, "EAN"  # another brand's GTIN
        elif kind == 6:
            code, bad_rows[row] = f"{tenant}-0", "Item Code"  # the code of row 2 again
        lines.append(f"{code},{name},{ean},{pack},{cost},{currency},dairy,blue")
    return "\n".join(lines) + "\n", bad_rows


def lotpulse_import(hub, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lotpulse import ...`` from a shell pointed at the test hub's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")} | {
        "LOTPULSE_MONGODB_URI": hub.settings.mongodb_uri, "LOTPULSE_DATABASE": hub.settings.database,
        "LOTPULSE_DATA_DIR": str(tmp_path / "cli-data"),
        "LOTPULSE_SIGNING_KEY_FILE": str(hub.settings.signing_key_file), "LOTPULSE_LOG_LEVEL": "WARNING",
        "LOTPULSE_RUNTIME_DIR": str(tmp_path / "run"), "PYTHONPATH": str(REPO),
    }
    return subprocess.run([sys.executable, "-m", "hub.cli", "import", *args], env=env, capture_output=True,
                          text=True, timeout=300)


async def test_ten_thousand_skus_with_twenty_bad_rows(hub, tenants, tmp_path):
    brand, other = tenants
    taken = fresh_gtin()
    await hub.ok('mutation($g: String) { upsertSku(input: {code: "X", name: "Theirs", gtin: $g}) { created } }',
                 {"g": taken}, tenant=other)
    csv, bad = sku_file(brand, taken.zfill(14))
    assert len(bad) == 20
    path = tmp_path / "skus.csv"
    path.write_text(csv)
    # all or nothing (the default): every bad row named, nothing written, exit 1
    refused = lotpulse_import(hub, tmp_path, "skus", str(path), "--tenant", brand)
    assert refused.returncode == 1, refused.stderr
    assert "10000 rows, 9980 valid, 9980 created, 0 updated, 0 unchanged, 20 refused" in refused.stdout
    assert "(all or nothing: nothing written)" in refused.stdout
    named = dict(re.findall(r"row (\d+), column ([^:]+):", refused.stdout))
    assert {int(row): column for row, column in named.items()} == bad
    assert "ignored columns: Colour" in refused.stdout
    assert "10000/10000" in refused.stderr  # the progress bar
    assert await Sku.find({"tenant_id": brand}).count() == 0
    # valid rows only: the 9,980 are written, the 20 still reported
    written = lotpulse_import(hub, tmp_path, "skus", str(path), "--tenant", brand, "--valid-rows-only", "--quiet")
    assert "9980 created" in written.stdout and written.returncode == 1
    stored = await Sku.find_one({"tenant_id": brand, "code": f"{brand}-1"})
    assert stored is not None and (stored.gtin, stored.pack_size, stored.unit_cost, stored.category) == (
        gtin(1).zfill(14), 6, 1.25, "dairy")
    # the same file again changes nothing; a dry run with a changed row says what would change and writes nothing
    again = lotpulse_import(hub, tmp_path, "skus", str(path), "--tenant", brand, "--valid-rows-only", "--quiet")
    assert "0 created, 0 updated, 9980 unchanged" in again.stdout
    path.write_text(csv.replace(f"{brand}-1,Item 1,", f"{brand}-1,Item one,"))
    dry = lotpulse_import(hub, tmp_path, "skus", str(path), "--tenant", brand, "--valid-rows-only", "--dry-run",
                          "--quiet")
    assert "0 created, 1 updated, 9979 unchanged" in dry.stdout and "dry run" in dry.stdout
    unchanged = await Sku.find_one({"tenant_id": brand, "code": f"{brand}-1"})
    assert unchanged is not None and unchanged.name == "Item 1"
    # the other brand's SKU is untouched, and it sees none of these
    assert await Sku.find({"tenant_id": other}).count() == 1
    theirs = await hub.ok('query($p: String) { skus(first: 5, filter: {codePrefix: $p}) { edges { node { code } } } }',
                          {"p": brand}, tenant=other)
    assert theirs["skus"]["edges"] == []
    unknown = lotpulse_import(hub, tmp_path, "skus", str(path), "--tenant", "nobody-here", "--quiet")
    assert unknown.returncode == 2 and "not found" in unknown.stderr


LOCATIONS = "code,name,type,gln\nDC-1,Central,dc,\nST-1,Store one,store,\nST-2,Store two,shop,\n"
STOCK = "location,sku,batch,qty,expiry\nDC-1,{sku},L1,40,2031-01-31\nST-1,{sku},L1,5,2031-01-31\nXX,{sku},L1,1,\n"


async def test_locations_and_stock_counts_through_the_mutation_once_each(hub, tenants):
    brand, other = tenants
    await hub.ok('mutation { upsertSku(input: {code: "IMP-1", name: "Imported"}) { created } }', tenant=brand)
    places = (await hub.ok(IMPORT, {"kind": "LOCATIONS", "csv": LOCATIONS, "valid": True}, tenant=brand))
    assert places["importCsv"]["created"] == 2
    assert places["importCsv"]["errors"] == [{"row": 4, "column": "type",
                                              "reason": "kind 'shop' is not one of dc, store, warehouse, zone"}]
    stock = STOCK.format(sku="IMP-1")
    counted = (await hub.ok(IMPORT, {"kind": "STOCK", "csv": stock, "valid": True}, tenant=brand))["importCsv"]
    assert (counted["created"], counted["errors"][0]["row"], counted["errors"][0]["column"]) == (2, 4, "location")
    again = (await hub.ok(IMPORT, {"kind": "STOCK", "csv": stock, "valid": True}, tenant=brand))["importCsv"]
    assert (again["created"], again["unchanged"]) == (0, 2)
    positions = await hub.ok('{ stockPositions(first: 10) { nodes { lotCode onHand } } }', tenant=brand)
    assert sorted(p["onHand"] for p in positions["stockPositions"]["nodes"]) == [5, 40]
    # a stranger can name neither the brand's locations nor its SKU
    theirs = (await hub.ok(IMPORT, {"kind": "STOCK", "csv": stock, "valid": True}, tenant=other))["importCsv"]
    assert theirs["created"] == 0 and {e["column"] for e in theirs["errors"]} == {"location"}
    assert (await hub.ok('{ stockPositions(first: 10) { nodes { onHand } } }', tenant=other))[
        "stockPositions"]["nodes"] == []


async def test_headers_are_mapped_and_a_missing_column_is_refused(hub, tenants):
    brand, _ = tenants
    csv = "Artikel,Bezeichnung\nA-1,Apfel\n"
    missing = await hub.gql(IMPORT, {"kind": "SKUS", "csv": csv}, tenant=brand)
    assert missing["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "no column for code, name" in missing["errors"][0]["message"]
    mapping = [{"column": "Artikel", "field": "code"}, {"column": "Bezeichnung", "field": "name"}]
    report = (await hub.ok(IMPORT, {"kind": "SKUS", "csv": csv, "mapping": mapping}, tenant=brand))["importCsv"]
    assert (report["created"], report["errors"]) == (1, [])
    wrong = await hub.gql(IMPORT, {"kind": "SKUS", "csv": csv, "mapping": [{"column": "Artikel", "field": "sku"}]},
                          tenant=brand)
    assert wrong["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    viewer = await hub.gql(IMPORT, {"kind": "SKUS", "csv": csv}, tenant=brand, roles=("viewer",))
    assert viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_rows_of_a_refused_batch_are_named_as_ranges():
    # stock rows are booked sorted by position, so a refused batch's rows need not be one span of the file
    assert _ranges([7, 2, 3, 4, 9, 10]) == "2-4, 7, 9-10"
    assert _ranges(range(2, 100, 2), limit=2) == "2, 4 and 47 more ranges"
