"""CSV files as they arrive from outside: odd encodings, line endings, quoting and sizes. Each is read or refused
with a reason (a row error, or BAD_USER_INPUT / exit 2 for a file the hub cannot read), never a traceback, and an
all-or-nothing import that refuses a row writes nothing, however many batches the file fills."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.imports import lines_of
from tests.catalog.test_import import IMPORT, lotpulse_import
from tests.conftest import Hub
from tests.epcis.conftest import partner

UPSERT_SKU = "mutation($i: SkuInput!) { upsertSku(input: $i) { sku { id } } }"
CREATE_LOCATION = "mutation($i: CreateLocationInput!) { createLocation(input: $i) { id } }"
STOCK = "{ stockPositions(first: 5) { edges { node { onHand lotCode } } } }"
SKUS = "{ skus(first: 50) { edges { node { code name } } } }"


async def run_import(hub: Hub, tenant: str, kind: str, csv: str, **flags: Any) -> dict[str, Any]:
    body = await hub.gql(IMPORT, {"kind": kind, "csv": csv, **flags}, tenant=tenant)
    return body


async def test_line_endings_bom_and_quoted_newlines_are_read_alike(module_hub: Hub, suffix: str) -> None:
    tenant = await module_hub.tenant(f"csv-{suffix}")
    files = {
        "A1": "code,name\r\nA1,Apple\r\n",
        "A2": "code,name\rA2,Apricot\r",
        "A3": "\ufeffcode,name\nA3,Avocado\n",
        "A4": 'code,name\nA4,"Apple\nsauce"\n',  # read as one value; a newline in a name is a control character
        "A5": "code,name\nA5,Almond,extra,more\n",  # more values than headers: the extra ones are not read
        "A6": "code,name,category\nA6,Anise\n",  # fewer: the missing ones are empty
    }
    for code, csv in files.items():
        report = (await module_hub.ok(IMPORT, {"kind": "SKUS", "csv": csv}, tenant=tenant))["importCsv"]
        assert report["rows"] == 1, (code, report)
        if code == "A4":
            assert report["errors"] == [{"row": 2, "column": "name",
                                         "reason": "SKU name must not contain control characters"}], report
        else:
            assert (report["created"], report["errors"]) == (1, []), (code, report)
    names = {e["node"]["code"]: e["node"]["name"] for e in (await module_hub.ok(SKUS, tenant=tenant))["skus"]["edges"]}
    assert names == {"A1": "Apple", "A2": "Apricot", "A3": "Avocado", "A5": "Almond", "A6": "Anise"}


async def test_files_without_rows_or_with_bad_rows_are_reported_not_crashed(module_hub: Hub, suffix: str) -> None:
    tenant = await module_hub.tenant(f"csvbad-{suffix}")
    for csv in ("", "\ufeff", "\n\n", "code;name\nA1;Apple\n"):
        body = await run_import(module_hub, tenant, "SKUS", csv)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], (csv, body)
    header_only = (await module_hub.ok(IMPORT, {"kind": "SKUS", "csv": "code,name\n"}, tenant=tenant))["importCsv"]
    assert (header_only["rows"], header_only["applied"]) == (0, False)
    bad = 'code,name,pack size,shelf life,temp max\nB1,"Unbalanced\nB2,Nul\x00name,1,1,1\nB3,Ok,nan,inf,NaN\n'
    report = (await module_hub.ok(IMPORT, {"kind": "SKUS", "csv": bad}, tenant=tenant))["importCsv"]
    assert report["applied"] is False and report["errors"], report
    assert (await module_hub.ok(SKUS, tenant=tenant))["skus"]["edges"] == []
    nan = "code,name,temp max,unit cost,currency\nB4,Ok,nan,1,EUR\nB5,Ok,4,inf,EUR\nB6,Ok,4,NaN,EUR\n"
    report = (await module_hub.ok(IMPORT, {"kind": "SKUS", "csv": nan}, tenant=tenant))["importCsv"]
    assert sorted(e["row"] for e in report["errors"]) == [2, 3, 4], report
    assert (await module_hub.ok(SKUS, tenant=tenant))["skus"]["edges"] == []


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=5), max_size=6),
       st.sampled_from(["\n", "\r\n", "\r"]))
def test_any_text_is_read_as_rows_without_an_exception(cells: list[list[str]], ending: str) -> None:
    """The line source the importer reads never raises on text (what raises is refused by ``import_csv``)."""
    import csv

    text = ending.join(",".join(row) for row in cells)
    for _ in csv.reader(lines_of(text)):
        pass


async def test_unreadable_files_exit_2_with_a_reason_and_no_traceback(module_hub: Hub, suffix: str,
                                                                      tmp_path: Path) -> None:
    tenant = await module_hub.tenant(f"csvcli-{suffix}")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("code,name\nA1,Crème brûlée\n".encode("latin-1"))
    huge = tmp_path / "huge.csv"
    huge.write_text("code,name\nA1," + "x" * (1024 * 1024) + "\n")
    for path, reason in ((latin, "UTF-8"), (huge, "field")):
        done = lotpulse_import(module_hub, tmp_path, "skus", str(path), "--tenant", tenant, "--quiet")
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and reason in done.stderr, done.stderr
    assert (await module_hub.ok(SKUS, tenant=tenant))["skus"]["edges"] == []


async def test_all_or_nothing_writes_nothing_when_a_row_of_a_later_batch_is_refused(
        module_hub: Hub, suffix: str, tmp_path: Path) -> None:
    tenant = await module_hub.tenant(f"csvbig-{suffix}")
    await module_hub.ok(UPSERT_SKU, {"i": {"code": "S1", "name": "Soup"}}, tenant=tenant)
    await module_hub.ok(CREATE_LOCATION, {"i": {"code": "W1", "name": "W", "kind": "warehouse"}}, tenant=tenant)
    # 1,001 counts: rows are booked in batches of 1,000 sorted by lot code, so L1000 falls in the second batch
    rows = [f"W1,S1,L{n:04},{3_000_000_000 if n == 1000 else 5}" for n in range(1001)]
    path = tmp_path / "stock.csv"
    path.write_text("location,sku,lot,qty\n" + "\n".join(rows) + "\n")
    done = lotpulse_import(module_hub, tmp_path, "stock", str(path), "--tenant", tenant, "--quiet")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "row 1002, column qty" in done.stdout, done.stdout
    assert "nothing written" in done.stdout
    assert (await module_hub.ok(STOCK, tenant=tenant))["stockPositions"]["edges"] == []
    # the same rows in one batch, with a lot code and an expiry the ledger would refuse: each row named
    odd = "location,sku,lot,qty,expiry\nW1,S1,L1,5,9999-12-31\nW1,S1,\"L\n2\",5,\nW1,S1,L3,-1,\nW1,S1,L4,5,\n"
    report = (await module_hub.ok(IMPORT, {"kind": "STOCK", "csv": odd}, tenant=tenant))["importCsv"]
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(2, "expiry"), (3, "lot"), (4, "qty")], report
    assert report["applied"] is False
    assert (await module_hub.ok(STOCK, tenant=tenant))["stockPositions"]["edges"] == []


async def test_a_partners_lot_never_shipped_is_refused_by_row(module_hub: Hub, suffix: str) -> None:
    brand, shop = await module_hub.tenant(f"csvb-{suffix}"), await module_hub.tenant(f"csvs-{suffix}", "retailer")
    await partner(module_hub, brand, shop, ["sku_master"], [])
    await module_hub.ok(UPSERT_SKU, {"i": {"code": "BR-1", "name": "Brand soup"}}, tenant=brand)
    await module_hub.ok(CREATE_LOCATION, {"i": {"code": "S1", "name": "Store", "kind": "store"}}, tenant=shop)
    csv = "location,sku,lot,qty\nS1,BR-1,,4\nS1,BR-1,NEVER-SHIPPED,5\n"
    report = (await module_hub.ok(IMPORT, {"kind": "STOCK", "csv": csv}, tenant=shop))["importCsv"]
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(3, "lot")], report
    assert "only its owner creates its lots" in report["errors"][0]["reason"]
    assert (report["valid"], report["applied"]) == (1, False)
    assert (await module_hub.ok(STOCK, tenant=shop))["stockPositions"]["edges"] == []
    # valid rows only: the row without a lot is counted
    report = (await module_hub.ok(IMPORT, {"kind": "STOCK", "csv": csv, "valid": True}, tenant=shop))["importCsv"]
    assert (report["created"], report["applied"], len(report["errors"])) == (1, True, 1), report
    stock = (await module_hub.ok(STOCK, tenant=shop))["stockPositions"]["edges"]
    assert [(e["node"]["onHand"], e["node"]["lotCode"]) for e in stock] == [(4, None)]
