from __future__ import annotations

from dci6_processing.lifecycle.claim import similarity


def test_same_cpu_beats_shared_disks() -> None:
    ordered = "i9-9900K-64Gb-2x1024NVMe"
    same_cpu = "i9-9900K-128Gb-2x1024NVMe"
    same_disks = "E5-2690v4-64Gb-2x1024NVMe"
    assert similarity(ordered, same_cpu) > similarity(ordered, same_disks)
    assert similarity(ordered, same_disks) > similarity(ordered, "EPYC-7302-256Gb-4x960SSD")
    assert similarity(ordered, ordered) == (4, 4)
