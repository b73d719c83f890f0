"""The garbage collector's policy (hub/gcpolicy.py) and its metrics (hub/metrics.py ``GcPauses``): pure unit tests.

That ``lotpulse serve`` applies the policy is shown on a real process in tests/test_cli.py."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hub import gcpolicy
from hub.config import Settings
from hub.metrics import GC_PAUSES


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records freezes instead of freezing the test runner (its garbage would stay for good); thresholds restored."""
    calls: list[str] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gcpolicy, "_freeze_after_startup", False)
    previous = gc.get_threshold()
    try:
        yield calls
    finally:
        gc.set_threshold(*previous)


def test_the_settings_read_thresholds_and_the_freeze_from_the_environment():
    settings = Settings.from_env({"LOTPULSE_GC_THRESHOLDS": "20000, 15, 12", "LOTPULSE_GC_FREEZE": "false"})
    assert settings.gc_thresholds == (20000, 15, 12)
    assert settings.gc_freeze is False
    assert Settings.from_env({"LOTPULSE_GC_THRESHOLDS": ""}).gc_thresholds == Settings().gc_thresholds


def test_a_serving_process_gets_its_thresholds_and_a_freeze_once_started(collector):
    gcpolicy.configure(Settings(gc_thresholds=(12345, 11, 13)))
    assert gc.get_threshold() == (12345, 11, 13)
    assert collector == []  # not before start-up is done
    gcpolicy.started()
    gcpolicy.started()  # another app started in the same process freezes nothing more
    assert collector == ["freeze"]


def test_nothing_is_frozen_without_configure_or_with_the_freeze_off(collector):
    gcpolicy.started()  # an app started in a test process: no configure
    gcpolicy.configure(Settings(gc_freeze=False, gc_thresholds=()))
    gcpolicy.started()
    assert collector == []


def test_empty_thresholds_keep_the_interpreters_own(collector):
    gc.set_threshold(700, 10, 10)
    gcpolicy.configure(Settings(gc_thresholds=()))
    assert gc.get_threshold() == (700, 10, 10)


def test_every_collection_is_timed_by_generation_and_the_metrics_show_pauses_objects_and_thresholds():
    before_count, before_sum = sum(GC_PAUSES.counts[2]), GC_PAUSES.sums[2]
    cycles = [[] for _ in range(20_000)]
    for item in cycles:
        item.append(item)
    del cycles
    gc.collect()
    assert sum(GC_PAUSES.counts[2]) == before_count + 1
    assert GC_PAUSES.sums[2] > before_sum
    assert GC_PAUSES.longest[2] > 0
    families = {family.name: family for family in GC_PAUSES.collect()}
    full = {(sample.name, sample.labels.get("le")): sample.value
            for sample in families["lotpulse_gc_pause_seconds"].samples if sample.labels["generation"] == "2"}
    assert full[("lotpulse_gc_pause_seconds_count", None)] == before_count + 1
    assert full[("lotpulse_gc_pause_seconds_bucket", "+Inf")] == before_count + 1
    assert full[("lotpulse_gc_pause_seconds_bucket", "0.001")] <= full[("lotpulse_gc_pause_seconds_bucket", "2.5")]
    tracked = {sample.labels["generation"]: sample.value for sample in families["lotpulse_gc_tracked_objects"].samples}
    assert set(tracked) == {"0", "1", "2", "permanent"} and tracked["2"] > 0
    thresholds = [sample.value for sample in families["lotpulse_gc_threshold"].samples]
    assert thresholds == list(gc.get_threshold())
