"""Host<->device synchronisations of a training step (counted on CPU by bench/host_syncs.py, which tracks
which tensors would live on a GPU). Before the [yolo] loss planned on the host and uploaded in one
asynchronous copy, a tiny3 step (4 micro-batches x 2 [yolo] layers) made the host wait 96 times (AB) / 88
times (PJ); now only the one read of every layer's statistics remains."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.paths import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from host_syncs import count_step_syncs, counting_syncs  # noqa: E402

TINY3 = ROOT / "tests" / "fixtures" / "train" / "tiny3" / "tiny3.cfg"


def _tiny3(tmp_path, yolo_options: str = "") -> Path:
    """tiny3 at 64x64, batch 8 in 4 micro-batches (2 [yolo] layers each), to keep the test quick."""
    text = TINY3.read_text().replace("width=128", "width=64").replace("height=128", "height=64")
    text = text.replace("batch=16", "batch=8").replace("[yolo]\n", "[yolo]\n" + yolo_options)
    cfg = tmp_path / "tiny3_small.cfg"
    cfg.write_text(text)
    return cfg


def test_the_counter_sees_reads_uploads_and_data_dependent_sizes():
    host = torch.arange(6.0)
    with counting_syncs(host) as count:
        on_device = torch.from_numpy(np.ones(3, dtype=np.float32)).to("cpu")      # blocking upload
        pinned_style = torch.from_numpy(np.ones(3, dtype=np.float32)).to("cpu", non_blocking=True)
        total = (on_device * 2 + pinned_style).sum()
        float(total)                                                               # read
        torch.nonzero(on_device > 0)                                               # data-dependent size
        on_device + torch.from_numpy(np.ones(3, dtype=np.float32))                 # host operand
        host.tolist(), host.sum().item()                                           # host work: no sync
    assert (count.reads, count.uploads, count.async_uploads, count.data_dependent) == (1, 2, 1, 1)
    assert count.syncs == 4


@pytest.mark.parametrize("flavor, uint8", [("ab", False), ("pj", False), ("ab", True)])
def test_a_training_step_waits_for_the_device_once(flavor, uint8, tmp_path):
    """uint8: the 8-bit batch is divided by 255 on the device, by a divisor made there (a `torch.tensor`
    copied from the host was a second wait in every step of an 8-bit pipeline)."""
    count = count_step_syncs(_tiny3(tmp_path), flavor, uint8=uint8)
    assert count.syncs == 1, count.where
    assert count.where["reads"] == {"tolist": 1}
    # the batch itself and one packed truth-side copy per [yolo] layer and micro-batch (4 x 2)
    assert count.async_uploads == 1 + 8


def test_iou_loss_extra_anchors_and_shared_slots_add_no_sync(tmp_path):
    cfg = _tiny3(tmp_path, "iou_loss=ciou\niou_normalizer=0.07\niou_thresh=0.213\n")
    count = count_step_syncs(cfg, "ab", crowded=True)
    assert count.syncs == 1, count.where
