"""`darknet_py detector test`: detect objects in pictures, print them as Darknet does, draw them, and
optionally write AB's `-out` JSON and `-save_labels` label files.

INPUT may be image files, directories, globs or `.txt` lists (eval/inputs.py); without INPUT, Darknet's
"Enter Image Path:" stdin loop. An image that cannot be read is reported and listed in `bad.list` (AB), and
the run goes on; only a run in which no image could be read fails."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Optional

import click

from ..config.data import parse_data
from ..errors import ImageError, warn
from ..atomic_write import write_atomically
from ..flavor import AB, Flavor, flavor_of
from ..outputs import refuse_overwriting_inputs
from .evaluate import open_detector
from ..device import resolve_device
from .options import device_options, flavor_option, inference_options

if TYPE_CHECKING:
    from ..eval.detections import DetectionArrays
    from ..eval.inference import DetectedImage

TEST_NMS = .45


@dataclass(frozen=True)
class ImageOutputs:
    """What `test` does with each image's detections besides printing them."""
    flavor: Flavor
    names: tuple[str, ...]
    thresh: float
    ext_output: bool
    outfile: Optional[str]         # AB: the JSON file; PJ: the picture's name (without .jpg)
    save_labels: bool
    save_dir: Optional[str]

    @property
    def writes_json(self) -> bool:
        return self.flavor.alexeyab and bool(self.outfile)

    def picture_name(self, path: str) -> str:
        """Where the drawn picture goes (+ .jpg): DIR/<image name> with --save-dir, else Darknet's
        `predictions` (PJ: the `-out` name), overwritten by each image."""
        if self.save_dir:
            return str(Path(self.save_dir) / Path(path).stem)
        return self.outfile if (self.flavor.pjreddie and self.outfile) else "predictions"

    def files_written(self, images: list[str]) -> dict[str, list[str]]:
        """What the run writes for ``images``, by role: JSON, pictures, label files, and `bad.list`."""
        from ..eval.inputs import BAD_LIST
        labels = self.flavor.alexeyab and self.save_labels
        pictures = [self.picture_name(path) + ".jpg" for path in images] if self.save_dir \
            else [self.picture_name("") + ".jpg"]
        return {"-out": [self.outfile] if self.writes_json else [], "picture": pictures,
                "-save_labels label file": [AB.label_path(path) for path in images] if labels else [],
                BAD_LIST: [BAD_LIST]}


@click.command("test")
@click.argument("data_file", metavar="DATA", type=click.Path())
@click.argument("cfg", type=click.Path())
@click.argument("weights", type=click.Path())
@click.argument("inputs", metavar="[INPUT]...", nargs=-1)
@click.option("-thresh", "thresh", type=float, default=None, help="Detection threshold (AB .25, PJ .5).")
@click.option("-hier", "hier", type=float, default=.5, help="Hierarchy threshold (YOLO9000 only; ignored).")
@click.option("-ext_output", "ext_output", is_flag=True, help="AB: print each box in pixels.")
@click.option("-out", "outfile", default=None,
              help="AB: write the detections of every image as one JSON file. PJ: name of the output picture "
                   "(+.jpg).")
@click.option("--save-dir", "save_dir", default=None, type=click.Path(file_okay=False),
              help="Write each annotated picture as DIR/<image name>.jpg instead of predictions.jpg.")
@click.option("-letter_box", "letter_box", is_flag=True, help="AB: letterbox instead of stretching.")
@click.option("-save_labels", "save_labels", is_flag=True, help="AB: write the boxes as the image's YOLO label file (AB label path).")
@click.option("-dont_show", "dont_show", is_flag=True, help="Accepted for compatibility (no window is shown).")
@flavor_option
@device_options
@inference_options
def test(data_file, cfg, weights, inputs, thresh, hier, ext_output, outfile, save_dir, letter_box, save_labels,
         dont_show, flavor, device, gpu_index, batch, workers):
    """Detect objects in each INPUT: image files, directories (their images, by name), globs or .txt lists
    (one image path a line). Without INPUT, read image paths from stdin. Unreadable images are warned about
    and appended to bad.list; the exit status is non-zero only when no image could be read."""
    from ..eval.detect import uses_letter_box
    from ..eval.inference import default_batch
    from ..eval.inputs import expand_inputs, stdin_image_paths
    device, flavor = resolve_device(device, gpu_index), flavor_of(flavor)
    outputs = ImageOutputs(flavor, (), flavor.test_thresh if thresh is None else thresh, ext_output,
                           outfile, save_labels, save_dir)
    paths = expand_inputs(inputs) if inputs else stdin_image_paths()
    refuse = _overwrite_check(data_file, cfg, weights, inputs, flavor, outputs)
    if isinstance(paths, list):
        refuse(paths)
    else:
        paths = (refuse([path]) or path for path in paths)
    _, names, network = open_detector(data_file, cfg, weights, flavor, device)
    outputs = dataclasses.replace(outputs, names=names)
    if save_dir:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
    detected = detect_inputs(network, paths, outputs.thresh, uses_letter_box(network, letter_box, "test"),
                             batch or default_batch(device, network), workers)
    run_test(detected, outputs)


def _overwrite_check(data_file: str, cfg: str, weights: str, entries: tuple[str, ...], flavor: Flavor,
                     outputs: ImageOutputs):
    """A function of image paths refusing (outputs.py) a file the run would write over one of its inputs:
    the .data, cfg, weights and names files, the INPUT arguments (lists) and the images. A list of images is
    checked at once; stdin's paths one at a time, as each comes."""
    names = parse_data(data_file, flavor=flavor).resolve("names", must_exist=False)
    given = {"data file": data_file, "cfg file": cfg, "weights file": weights, "names file": names}

    def refuse(images: list[str]) -> None:
        refuse_overwriting_inputs("detector test", {"image": images, "list": list(entries), **given},
                                  outputs.files_written(images))
    return refuse


def detect_inputs(network, paths: Iterable[str], thresh: float, letter_box: bool, batch: int,
                  workers: Optional[int]) -> Iterator[tuple[int, DetectedImage, float]]:
    """(input position from 1, detections or error, seconds since the previous image) of every path. A list
    goes through the batched loader; stdin paths one at a time, each detected before the next prompt."""
    from ..eval.inference import detect_images
    chunks = [paths] if isinstance(paths, list) else ([path] for path in paths)
    frame_id, clock = 0, time.perf_counter()
    for chunk in chunks:
        for found in detect_images(network, chunk, thresh, TEST_NMS, letter_box, batch, workers=workers,
                                   keep_images=True, skip_errors=True):
            frame_id += 1
            now = time.perf_counter()
            yield frame_id, found, now - clock
            clock = time.perf_counter()


def run_test(detected: Iterable[tuple[int, DetectedImage, float]], outputs: ImageOutputs) -> None:
    """Print and save every readable image; report the others (bad.list). `frame_id` in the JSON is the
    image's input position; the JSON of the images done so far is written even if the run is interrupted."""
    from ..eval.inputs import BAD_LIST, report_bad_image
    from ..eval.printout import json_document
    blocks, bad, pictures = [], [], set()
    try:
        for frame_id, found, elapsed in detected:
            if found.error is not None:
                report_bad_image(found.error)
                bad.append(found.source)
                continue
            picture = outputs.picture_name(str(found.source))
            if outputs.save_dir and picture in pictures:
                warn(f"{picture}.jpg: another input has the same name; its picture is replaced")
            pictures.add(picture)
            blocks.append(_test_image(found, frame_id, elapsed, outputs))
    finally:
        if outputs.writes_json and (blocks or not bad):
            write_atomically(outputs.outfile, json_document(blocks).encode())
    if bad and not blocks:
        raise ImageError(f"no image could be read ({len(bad)} tried, each appended to {BAD_LIST})",
                         file=bad[0])


def _test_image(found: DetectedImage, frame_id: int, elapsed: float, outputs: ImageOutputs) -> str:
    """One image: print its detections as the flavour does, draw them, save labels; its JSON block."""
    from ..eval.draw import draw_detections, save_image
    from ..eval.printout import detection_to_json
    path, image, dets = str(found.source), found.image, found.detections
    for line in _printout(path, image, dets, elapsed, outputs):
        click.echo(line)
    save_image(draw_detections(image, dets, outputs.names, outputs.thresh), outputs.picture_name(path))
    if outputs.flavor.alexeyab and outputs.save_labels:
        _save_labels(path, dets, outputs.thresh)
    return detection_to_json(dets, outputs.names, frame_id, path)


def _printout(path: str, image, dets: DetectionArrays, elapsed: float, outputs: ImageOutputs) -> list[str]:
    from ..eval.printout import detection_lines
    _, im_h, im_w = image.shape
    timing = f"{elapsed * 1000:f} milli-seconds" if outputs.flavor.alexeyab else f"{elapsed:f} seconds"
    return [f"{path}: Predicted in {timing}.", *detection_lines(dets, outputs.names, outputs.thresh, im_w, im_h,
                                                                 outputs.flavor, outputs.ext_output)]


def _save_labels(image_path: str, dets: DetectionArrays, thresh: float) -> None:
    """AB `-save_labels`: the label file the image's training would read (AB path rule)."""
    from ..eval.printout import label_lines
    target = AB.label_path(image_path)
    text = "".join(line + "\n" for line in label_lines(dets, thresh))
    write_atomically(target, text.encode())


COMMANDS = [test]
