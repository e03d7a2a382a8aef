"""How the global batch is split over ranks, and how `-gpus` becomes a torchrun command (no processes)."""
from __future__ import annotations

import pytest

from darknet_py.commands.train import _argv_without_gpus
from darknet_py.errors import UsageError
from darknet_py.train.distributed import DistributedContext, parse_gpus, shard_plan, torchrun_command


def _plans(mini, subdivisions, world):
    return [shard_plan(mini, subdivisions, DistributedContext(rank, world)) for rank in range(world)]


def test_whole_micro_batches_when_subdivisions_divide():
    # B = 4 x 4: rank 0 runs micro-batches 0, 1 (images 0..7), rank 1 micro-batches 2, 3 (images 8..15)
    first, second = _plans(4, 4, 2)
    assert (first.micro_batches, first.micro_batch_size) == (2, 4)
    assert first.indices == tuple(range(8)) and second.indices == tuple(range(8, 16))


def test_split_micro_batches_otherwise():
    # B = 8 x 1 over 2 ranks: each takes half of the one micro-batch
    first, second = _plans(8, 1, 2)
    assert (first.micro_batches, first.micro_batch_size) == (1, 4)
    assert first.indices == (0, 1, 2, 3) and second.indices == (4, 5, 6, 7)
    # B = 4 x 3 over 2 ranks: half of every micro-batch, in training order
    first, second = _plans(4, 3, 2)
    assert first.indices == (0, 1, 4, 5, 8, 9) and second.indices == (2, 3, 6, 7, 10, 11)


def test_every_image_trained_exactly_once():
    for mini, subdivisions, world in ((6, 4, 2), (6, 3, 3), (16, 8, 4), (3, 4, 4), (6, 2, 3), (4, 3, 2)):
        plans = _plans(mini, subdivisions, world)
        assert sorted(i for p in plans for i in p.indices) == list(range(mini * subdivisions))
        assert all(p.micro_batches * p.micro_batch_size == len(p.indices) for p in plans)


def test_unsplittable_batch_is_refused():
    with pytest.raises(UsageError, match="cannot split batch=9"):
        shard_plan(3, 3, DistributedContext(0, 2))
    assert shard_plan(5, 3, DistributedContext()).indices == tuple(range(15))     # one process: all


def test_gpus_flag_becomes_torchrun():
    assert parse_gpus("0,1") == [0, 1] and parse_gpus(None) == []
    for bad in ("0,x", "1,1", "-1"):
        with pytest.raises(UsageError):
            parse_gpus(bad)
    argv = _argv_without_gpus(["detector", "train", "a.data", "b.cfg", "-gpus", "0,2", "-map"])
    assert argv == ["detector", "train", "a.data", "b.cfg", "-map"]
    command, env = torchrun_command([0, 2], argv)
    assert "--nproc_per_node=2" in command and command[-6:] == ["darknet_py", *argv]
    assert env["CUDA_VISIBLE_DEVICES"] == "0,2"


def test_gpus_without_cuda_is_an_error_unless_device_cpu(monkeypatch):
    import torch
    from darknet_py.train.distributed import check_gpus_exist
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="-gpus asks for CUDA devices but torch sees none"):
        check_gpus_exist([0, 1], None)
    with pytest.raises(UsageError):
        check_gpus_exist([0], "cuda")
    check_gpus_exist([0, 1], "cpu")
    check_gpus_exist([], None)


def test_darknet_gpus_plan_gives_each_rank_a_whole_batch():
    from darknet_py.train.distributed import DistributedContext, darknet_gpus_plan
    plans = [darknet_gpus_plan(2, 3, DistributedContext(rank, 2)) for rank in range(2)]
    assert [p.indices for p in plans] == [tuple(range(0, 6)), tuple(range(6, 12))]
    assert all((p.micro_batches, p.micro_batch_size) == (3, 2) for p in plans)
