"""The training loader (spec §11.1): with-replacement draws, determinism by (seed, iteration, slot) whatever the
worker count, multiscale size changes, chunk-level mosaic switch, unreadable images and missing labels."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from darknet_py.errors import DarknetWarning
from darknet_py.data.augment import AugmentOptions
from darknet_py.data.loader import DetectionDataset, DetectionLoader, chunk_of, detection_loader
from darknet_py.errors import DataFileError, LabelError
from helpers.datasets import add_picture

AUGMENT = dict(jitter=0.3, hue=0.1, saturation=1.5, exposure=1.5, flip=True)


def _tree(root, n=6, size=(96, 72)):
    """n small images under JPEGImages/ with one box each under labels/."""
    rng = np.random.default_rng(0)
    return [str(add_picture(root, f"{i}.png", rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8),
                            f"{i % 3} 0.5 0.5 {0.2 + 0.05 * i:.2f} 0.3\n"))
            for i in range(n)]


def _options(flavor="ab", backend="opencv", **kw):
    return AugmentOptions(flavor=flavor, backend=backend, width=64, height=64, channels=3, classes=3,
                          max_boxes=200 if flavor == "ab" else 90, **{**AUGMENT, **kw})


def _loader(paths, options, seed=7, batch=4, **kw):
    return DetectionLoader(DetectionDataset(paths, options, seed, batch), **kw)


def _same(a, b):
    return torch.equal(a.images, b.images) and torch.equal(a.truth, b.truth) and a.paths == b.paths


def test_batches_are_deterministic_and_independent_of_workers(tmp_path):
    paths = _tree(tmp_path)
    options = _options(mosaic=True)
    runs = []
    for workers in (0, 2):
        loader = _loader(paths, options, num_workers=workers)
        batches = [loader.next_batch()]
        loader.set_size(96, 64)
        batches += [loader.next_batch(), loader.next_batch()]
        runs.append(batches)
    for a, b in zip(*runs):
        assert _same(a, b)
    assert [tuple(b.images.shape) for b in runs[0]] == [(4, 3, 64, 64), (4, 3, 64, 96), (4, 3, 64, 96)]
    assert [b.iteration for b in runs[0]] == [0, 1, 2]
    other = _loader(paths, options, seed=8).next_batch()
    assert not torch.equal(other.images, runs[0][0].images)


def test_state_dict_resumes_the_sequence(tmp_path):
    paths = _tree(tmp_path)
    loader = _loader(paths, _options())
    loader.next_batch()
    loader.set_size(96, 96)
    loader.next_batch()
    state = loader.state_dict()
    expected = loader.next_batch()
    resumed = _loader(paths, _options())
    resumed.load_state_dict(state)
    assert _same(resumed.next_batch(), expected)


def test_draws_are_uniform_with_replacement(tmp_path):
    paths = _tree(tmp_path, n=3)
    loader = _loader(paths, _options("ab", "darknet"), batch=8)
    drawn = [p for _ in range(30) for used in loader.next_batch().paths for p in used]
    counts = np.array([drawn.count(p) for p in paths])
    assert counts.sum() == 240 and counts.min() > 50        # ~80 each
    batch = loader.next_batch()
    assert len({u[0] for u in batch.paths}) < 8             # 8 slots, 3 images: repeats within a batch


def test_mosaic_switch_is_per_chunk(tmp_path):
    paths = _tree(tmp_path)
    dataset = DetectionDataset(paths, _options(mosaic=True), seed=3, batch=8, loader_threads=2)
    assert [chunk_of(s, 8, 2) for s in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [chunk_of(s, 3, 6) for s in range(3)] == [1, 3, 5]        # Darknet's i*n/threads split
    loader = DetectionLoader(dataset)
    modes = set()
    for _ in range(8):
        used = [len(p) for p in loader.next_batch().paths]
        assert len(set(used[:4])) == 1 and len(set(used[4:])) == 1
        modes.update(used)
    assert modes == {1, 4}


def test_unreadable_image_is_replaced_and_warned_once(tmp_path):
    paths = _tree(tmp_path, n=1)
    bad = tmp_path / "JPEGImages" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    loader = _loader([str(bad)] + paths, _options(), batch=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = [loader.next_batch() for _ in range(3)]
    assert all(p == [paths[0]] for b in batches for p in b.paths)
    messages = [str(w.message) for w in caught if "broken.jpg" in str(w.message)]
    assert len(messages) == 1 and "another image" in messages[0]



def test_a_train_list_without_a_readable_image_is_an_error_naming_the_list(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    listed = tmp_path / "train.txt"
    loader = DetectionLoader(DetectionDataset([str(bad)], _options(), 7, 2, source=str(listed)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataFileError) as err:
            loader.next_batch()
    assert err.value.file == str(listed) and "no readable image" in str(err.value) and "broken.jpg" in str(err.value)

def test_missing_label_file_means_no_boxes_for_ab(tmp_path):
    paths = _tree(tmp_path, n=2)
    (tmp_path / "labels" / "0.txt").unlink()
    (tmp_path / "labels" / "1.txt").unlink()
    with pytest.warns(DarknetWarning, match="label file not found"):
        batch = _loader(paths, _options()).next_batch()
    assert batch.truth.abs().sum().item() == 0


@pytest.mark.parametrize("workers", [0, 1])
def test_missing_label_files_for_pj_are_skipped_and_named_even_from_a_worker(tmp_path, workers):
    """pjreddie's missing label file: the image is left out with a warning (issue 23: a file vanishing while
    training runs); when no image is left, the label file's own error, even from a worker process."""
    paths = _tree(tmp_path, n=2)
    (tmp_path / "labels" / "0.txt").unlink()
    with pytest.warns(UserWarning, match=f"{tmp_path / 'labels' / '0.txt'}: label file not found; skipped"):
        batch = _loader(paths, _options("pj"), num_workers=0).next_batch()
    assert {p for used in batch.paths for p in used} == {paths[1]}
    (tmp_path / "labels" / "1.txt").unlink()
    loader = _loader(paths, _options("pj"), num_workers=workers)
    with pytest.raises(LabelError, match="label file not found") as err:
        loader.next_batch()
    assert err.value.file in {str(tmp_path / "labels" / f"{k}.txt") for k in (0, 1)} and err.value.hint


def test_detection_loader_from_cfg(tmp_path):
    from darknet_py.network import parse_cfg
    paths = _tree(tmp_path)
    cfg_path = tmp_path / "t.cfg"
    cfg_path.write_text("[net]\nbatch=4\nsubdivisions=2\nwidth=64\nheight=64\nchannels=3\nflip=0\n"
                        "[convolutional]\nfilters=24\nsize=1\nstride=1\nactivation=linear\n"
                        "[yolo]\nmask=0,1,2\nanchors=10,10,20,20,30,30\nclasses=3\nnum=3\njitter=.1\nmax=5\n")
    for flavor, width in (("ab", 6), ("pj", 5)):
        loader = detection_loader(parse_cfg(str(cfg_path), flavor), paths, seed=1)
        assert loader.dataset.options.max_boxes == 5 and loader.dataset.options.flip is False
        batch = loader.next_batch()
        assert tuple(batch.truth.shape) == (4, 5, width) and tuple(batch.images.shape) == (4, 3, 64, 64)


def test_rank_slots_partition_the_global_batch(tmp_path):
    paths = _tree(tmp_path)
    options = _options(mosaic=True)
    full = DetectionLoader(DetectionDataset(paths, options, 4, batch=4)).next_batch()
    parts = [DetectionLoader(DetectionDataset(paths, options, 4, batch=4), slots=s).next_batch()
             for s in ((0, 1), (2, 3))]
    assert torch.equal(torch.cat([p.images for p in parts]), full.images)
    assert torch.equal(torch.cat([p.truth for p in parts]), full.truth)
    assert parts[0].paths + parts[1].paths == full.paths


EXIT_SCRIPT = """
import sys
from pathlib import Path
sys.path[:0] = [{tests!r}, {tests_root!r}]
from test_data_loader import _loader, _options, _tree
from darknet_py.errors import DataFileError, LabelError
paths = _tree(Path({root!r}), n=2)
Path({root!r}, "labels", "0.txt").unlink()
Path({root!r}, "labels", "1.txt").unlink()
KEPT = _loader(paths, _options("pj"), num_workers=2)
try:
    KEPT.next_batch()
except LabelError:
    print("label error", flush=True)
"""


def test_a_process_holding_a_loader_with_workers_still_exits(tmp_path):
    """The loader's workers are alive at interpreter exit (a module global holds the loader, after a worker
    raised): multiprocessing stops them with SIGTERM, so the process must exit rather than wait for ever."""
    import subprocess
    import sys
    from pathlib import Path
    script = EXIT_SCRIPT.format(tests=str(Path(__file__).parent), tests_root=str(Path(__file__).parent.parent),
                                root=str(tmp_path))
    try:
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("a process holding a DetectionLoader with workers did not exit within 120 s")
    assert run.returncode == 0, run.stderr
    assert "label error" in run.stdout


def test_default_workers_one_per_core_but_none_on_a_single_cpu_core(monkeypatch):
    """One loader process per usable core; a CPU run with one core loads in the training process (a worker
    would only take turns with it on that core), a GPU run with one core still overlaps loading with it."""
    from darknet_py.data import loader
    monkeypatch.setattr(loader.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert loader.default_workers("cpu") == 0
    assert loader.default_workers("cuda:0") == 1
    monkeypatch.setattr(loader.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert loader.default_workers("cpu") == 3
    assert loader.default_workers("cuda") == 3
