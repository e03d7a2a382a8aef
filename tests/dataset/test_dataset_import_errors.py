"""`dataset import` on bad input: one message naming the file (and the entry), exit 1, no traceback, no
OUT_DIR and no temporary folder left; problems that only lose some boxes or pictures are counted and
reported, one line per kind; OUT_DIR is never written over without --force, and never when it holds the
import's own inputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.annotation_sets import make_pictures, write_coco, write_voc, write_yolo
from helpers.cli import run_cli


def coco_source(root: Path) -> Path:
    return write_coco(root / "coco", make_pictures(count=3, valid=1))


def edit_json(path: Path, change) -> Path:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


def malformed_json(root):
    path = coco_source(root)
    path.write_text(path.read_text()[:-5])
    return "coco", path, "annotations.json:1: not valid JSON"


def image_listed_twice(root):
    path = edit_json(coco_source(root), lambda d: d["images"].append(dict(d["images"][0], id=99)))
    return "coco", path, "images[4]: image 'pic000.jpg' is listed twice (first: images[0])"


def unknown_category(root):
    path = edit_json(coco_source(root), lambda d: d["annotations"][1].update(category_id=42))
    return "coco", path, "annotations[1]: category_id 42 is not in 'categories'"


def voc_without_size(root):
    voc = write_voc(root / "voc", make_pictures(count=3, valid=1))
    xml = voc / "Annotations" / "pic001.xml"
    text = xml.read_text()
    xml.write_text(text[:text.index("<size>")] + text[text.index("</size>") + len("</size>"):])
    return "voc", voc, "pic001.xml: no <size>"


def yaml_missing_folder(root):
    path = write_yolo(root / "yolo", make_pictures(count=3, valid=1))
    path.write_text(path.read_text().replace("val: images/val", "val: images/validation"))
    return "yolo", path, "data.yaml: 'val': folder not found"


@pytest.mark.parametrize("make", [malformed_json, image_listed_twice, unknown_category, voc_without_size,
                                  yaml_missing_folder])
def test_bad_input_is_one_message_exit_1_and_no_out_dir(make, tmp_path):
    fmt, source, message = make(tmp_path / "src")
    out = tmp_path / "out"
    extra = ["--images", Path(source).parent / "images"] if fmt == "coco" else []
    result = run_cli("dataset", "import", fmt, source, out, *extra)
    assert result.code == 1, result.output
    assert message in result.err and "Traceback" not in result.output, result.err
    assert len(result.err.strip().splitlines()) <= 2          # the message and at most its hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]       # no OUT_DIR, no temporary folder


def test_problems_are_counted_with_examples(tmp_path):
    source = coco_source(tmp_path / "src")

    def spoil(document):
        document["images"].append({"id": 50, "file_name": "gone.jpg", "width": 64, "height": 64})
        first = document["annotations"][0]
        document["annotations"] += [dict(first, id=90, bbox=[10, 10, 0, 5]),         # zero area
                                    dict(first, id=91, bbox=[-4, 10, 20, 20]),       # clipped at the left edge
                                    dict(first, id=92, iscrowd=1)]
    edit_json(source, spoil)
    result = run_cli("dataset", "import", "coco", source, tmp_path / "out", "--images", source.parent / "images")
    assert result.code == 0, result.output
    assert "problem: missing image: 1 (e.g. " in result.out and "gone.jpg" in result.out
    assert "problem: zero-area box dropped: 1 (e.g. annotations[" in result.out
    assert "problem: box clipped to the image: 1" in result.out
    assert "problem: crowd annotation skipped (--keep-crowd keeps them): 1" in result.out
    report = json.loads((tmp_path / "out" / "import.json").read_text())
    assert report["problems"]["missing image"]["count"] == 1 and report["class_map"] == {"3": 0, "7": 1}
    label = (tmp_path / "out" / "labels" / "pic000.txt").read_text().splitlines()
    # the clipped box: left edge -4 -> 0, right edge 16, on a 64-wide picture
    assert any(line.split()[1] == f"{8 / 64:.8f}" and line.split()[3] == f"{16 / 64:.8f}" for line in label)


def test_voc_inclusive_pixels_make_the_whole_picture_one(tmp_path):
    """VOC xmin=1..xmax=W covers every pixel: Darknet centre 0.5 and width 1 exactly."""
    voc = write_voc(tmp_path / "voc", make_pictures(count=1, valid=0))
    xml = voc / "Annotations" / "pic000.xml"
    xml.write_text("<annotation><filename>pic000.jpg</filename><size><width>64</width><height>48</height></size>"
                   "<object><name>rect</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>64</xmax><ymax>48</ymax>"
                   "</bndbox></object></annotation>")
    (voc / "ImageSets" / "Main" / "val.txt").write_text("")
    assert run_cli("dataset", "import", "voc", voc, tmp_path / "out").code == 0
    assert (tmp_path / "out" / "labels" / "pic000.txt").read_text() == "0 0.50000000 0.50000000 1.00000000 1.00000000\n"


def test_existing_out_dir_needs_force_and_force_replaces_it(tmp_path):
    source = coco_source(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    images = ["--images", source.parent / "images"]
    refused = run_cli("dataset", "import", "coco", source, out, *images)
    assert refused.code == 1 and "OUT_DIR exists and is not empty" in refused.err
    assert (out / "old.txt").read_text() == "keep me"
    forced = run_cli("dataset", "import", "coco", source, out, *images, "--force")
    assert forced.code == 0, forced.output
    assert not (out / "old.txt").exists() and (out / "obj.data").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


@pytest.mark.parametrize("where", ["source folder", "above the source"])
def test_force_never_replaces_the_import_inputs(tmp_path, where):
    source = coco_source(tmp_path / "src")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = source.parent if where == "source folder" else tmp_path / "src"
    result = run_cli("dataset", "import", "coco", source, out, "--images", source.parent / "images", "--force")
    assert result.code == 1 and "holds this import's input" in result.err, result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_yolo_list_files_and_their_missing_pictures(tmp_path):
    """`train:` may name a list file of pictures; one that does not exist is counted, the rest imported."""
    path = write_yolo(tmp_path / "yolo", make_pictures(count=3, valid=1))
    listed = [f"images/train/pic00{k}.jpg" for k in range(3)] + ["images/train/gone.jpg"]
    (tmp_path / "yolo" / "train.txt").write_text("\n".join(listed) + "\n")
    path.write_text(path.read_text().replace("train: images/train", "train: train.txt"))
    result = run_cli("dataset", "import", "yolo", path, tmp_path / "out")
    assert result.code == 0, result.output
    assert "problem: missing image: 1 (e.g. train.txt: " in result.out and "gone.jpg" in result.out
    assert len((tmp_path / "out" / "train.txt").read_text().split()) == 3


def test_export_never_writes_over_its_inputs(tmp_path):
    from helpers.datasets import make_dataset

    data = make_dataset(tmp_path / "set", count=2, valid=1)
    train = tmp_path / "set" / "train.txt"
    before = train.read_bytes()
    result = run_cli("dataset", "export", "coco", data, train)
    assert result.code == 1 and "is the input train file" in result.err, result.output
    assert train.read_bytes() == before


def test_a_killed_imports_temporary_folder_is_swept(tmp_path):
    """A folder `.out.tmp<pid>` of a process that is gone (an import killed mid-way) goes at the next import."""
    source = coco_source(tmp_path / "src")
    stale = tmp_path / ".out.tmp999999999"
    stale.mkdir()
    (stale / "half.txt").write_text("")
    result = run_cli("dataset", "import", "coco", source, tmp_path / "out", "--images", source.parent / "images")
    assert result.code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]
