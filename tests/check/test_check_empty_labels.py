"""A train list where no picture has a box: `detector check` and `detector train` stop with an error naming
the list and the label path looked for (Darknet would train on background only and exit 0);
`--allow-empty-labels` keeps Darknet's behaviour; more than half the pictures without boxes is a warning."""
from __future__ import annotations

import shutil

import pytest

from helpers.cli import run_cli
from helpers.datasets import make_dataset, tiny_cfg
from helpers.train_runs import run_train_here


@pytest.fixture
def unlabelled(tmp_path):
    data = make_dataset(tmp_path / "set", count=4, valid=2)
    shutil.rmtree(tmp_path / "set" / "labels" / "train")
    return data


def test_check_refuses_a_train_list_without_any_box(unlabelled, tmp_path):
    result = run_cli("detector", "check", unlabelled)
    assert result.code == 1
    assert f"{tmp_path / 'set' / 'train.txt'}: none of the 4 pictures of the list has a label file with a box" \
           in result.out
    assert f"looked for e.g. {tmp_path / 'set' / 'labels' / 'train' / '000.txt'}" in result.out
    assert "train on background only" in result.out and "--allow-empty-labels" in result.out


def test_empty_label_files_count_as_no_box(unlabelled, tmp_path):
    folder = tmp_path / "set" / "labels" / "train"
    folder.mkdir()
    for k in range(4):
        (folder / f"{k:03d}.txt").write_text("")
    assert "none of the 4 pictures" in run_cli("detector", "check", unlabelled).out


def test_allow_empty_labels_keeps_darknets_behaviour(unlabelled):
    result = run_cli("detector", "check", unlabelled, "--allow-empty-labels")
    assert result.code == 0, result.output
    assert "warning:" in result.out and "none of the 4 pictures" in result.out


def test_train_stops_before_training_and_allow_empty_labels_trains(unlabelled, tmp_path):
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(tiny_cfg(batch=2, subdivisions=1, max_batches=1, size=32))
    refused = run_train_here(tmp_path, unlabelled, cfg)
    assert refused.returncode == 1 and "none of the 4 pictures" in refused.stderr
    assert not list((tmp_path / "set" / "backup").glob("*.weights"))
    trained = run_train_here(tmp_path, unlabelled, cfg, "--allow-empty-labels")
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "set" / "backup" / "tiny_final.weights").is_file()


def test_more_than_half_without_boxes_is_a_warning_with_the_count(tmp_path):
    data = make_dataset(tmp_path / "set", count=5, valid=2)
    for k in range(3):
        (tmp_path / "set" / "labels" / "train" / f"{k:03d}.txt").unlink()
    result = run_cli("detector", "check", data)
    assert result.code == 0, result.output
    assert "3 of the 5 pictures of the list (60%) have no box" in result.out
    (tmp_path / "set" / "labels" / "train" / "000.txt").write_text("")     # 2 of 5 missing + 1 empty: still 3
    assert "3 of the 5 pictures" in run_cli("detector", "check", data).out
