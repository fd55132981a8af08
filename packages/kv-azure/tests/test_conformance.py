"""The shared kv suites against Azurite."""

from __future__ import annotations

from kv_core.testing import (
    CrossProcessConformance,
    DriverConformance,
    Harness,
    StoreModelTest,
    UnreachableConformance,
    cross_process_increments,
)


class TestConformance(DriverConformance):
    # No file_peak_limit of its own: the harness (conftest.py) uses 512 KiB blocks, so a
    # streamed 8 MiB file stays within the default 4 MiB (2.4 MiB traced).
    pass


class TestModel(StoreModelTest):
    max_examples = 10  # every step is one or more HTTP round trips to Azurite


class TestCrossProcess(CrossProcessConformance):
    def test_update_loses_nothing_across_processes(self, kv_harness: Harness) -> None:
        """The shared test, with its figure printed for the README."""
        processes, tasks, increments = 2, 4, 125
        total = cross_process_increments(
            kv_harness, processes=processes, tasks=tasks, increments=increments
        )
        expected = processes * tasks * increments
        print(
            f"FAULT kv-azure cross-process update(): {processes} processes x {tasks} tasks x "
            f"{increments} increments -> {total} (expected {expected})"
        )
        assert total == expected


class TestUnreachable(UnreachableConformance):
    pass
