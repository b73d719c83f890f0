"""The planning commands: ``lotpulse sweep`` judges the planning signals; ``lotpulse planning rebuild`` rebuilds the
demand series from the ledger."""

from __future__ import annotations

import os
import subprocess
import sys

from hub.models.planning import DemandSeries
from tests.planning.conftest import rhythm


def command(hub, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOTPULSE_MONGODB_URI": hub.settings.mongodb_uri, "LOTPULSE_DATABASE": hub.settings.database,
           "LOTPULSE_DATA_DIR": str(tmp_path), "LOTPULSE_SIGNING_KEY_FILE": str(hub.settings.signing_key_file)}
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def series(docs: list[DemandSeries]) -> dict[tuple[str, str], tuple[object, ...]]:
    return {(d.location_id, d.sku_id): (d.on_hand, d.days, d.last_sale_day) for d in docs}


async def test_the_series_rebuilt_from_the_ledger_equal_those_written_with_the_movements(net, hub, tmp_path):
    # given: a history at two stores, then the series are lost
    await net.sku("SUN-50", shelfLifeDays=730)
    daily = [rhythm(91 - i, 0.6 if i >= 84 else 1.0) for i in range(91)]
    await net.history("ST-1", "SUN-50", daily, stock=5000)
    await net.history("ST-2", "SUN-50", [5] * 30, stock=400, lot=None)
    written = series(await DemandSeries.find().to_list())
    await DemandSeries.get_pymongo_collection().delete_many({})

    # when
    rebuilt = command(hub, tmp_path, "planning", "rebuild")

    # then: the same series, and the sweep finds the drop again from them
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "2 demand series rebuilt" in rebuilt.stdout
    again = series(await DemandSeries.find().to_list())
    assert again == written
    swept = command(hub, tmp_path, "sweep", "--full")
    assert swept.returncode == 0, swept.stderr
    assert "planning sweep: 2 demand series judged" in swept.stdout and "1 velocity_drop" in swept.stdout
    [alert] = await net.alerts("shopco", "velocity_drop")
    assert alert["evidence"]["changePct"] == -40.0
