"""One image through the network to Darknet's final detection list (spec §9.7, §12.1–12.3):
resize or letterbox, `network_predict`, `get_network_boxes` (+ `correct_yolo_boxes`), NMS."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
import torch

from ..data.image import letterbox_image, resize_image
from ..device import limit_cpu_threads
from ..errors import CfgError, DataFileError, warn
from ..flavor import AB, Flavor
from ..network import load_network
from .boxes import correct_yolo_boxes
from .detections import Detection, DetectionArrays
from .nms import apply_nms


def detector_classes(network) -> int:
    """`classes` of the last [yolo]/[region] layer, which names and evaluation are checked against."""
    last = network.last_detection_layer()
    if last is None:
        raise CfgError("the cfg has no [yolo] or [region] layer, so it cannot detect anything",
                       file=network.cfg.file)
    return last.options.classes


def open_network(cfg: str, weights: Optional[str], flavor: Flavor | str = AB, device: str = "cpu"):
    """The inference network (batch norm folded, eval mode; :meth:`~darknet_py.network.Network.fuse_`) loaded
    with batch 1 (weights that cover every detection layer, all finite), on ``device``. Every inference
    command and the `Detector` API get their network here."""
    network = load_network(cfg, weights, flavor=flavor, batch=1, for_inference=True, fuse=True)
    if torch.device(device).type == "cpu":
        limit_cpu_threads()
    return network.to(device)


def check_class_names(names: tuple[str, ...], file: str, network) -> tuple[str, ...]:
    """``names`` (read from ``file``) for the network's classes: fewer is an error (Darknet would read past
    its name array), more a warning."""
    classes = detector_classes(network)
    if len(names) < classes:
        raise DataFileError(f"has {len(names)} names but the cfg's last detection layer has classes={classes}",
                            file=file, hint="one class name per line")
    if len(names) > classes:
        warn(f"{len(names)} names, classes={classes}; the extra names are ignored", file)
    return names


@contextmanager
def at_cfg_size(network) -> Iterator[None]:
    """Run at the cfg's `[net]` size. A network that multiscale training resized is put back to it for the
    duration (AB evaluates `-map` on a separate network built at the cfg size) and restored afterwards."""
    current = [(layer.net_w, layer.net_h) for layer in network.layers if hasattr(layer, "net_w")]
    cfg_size = (network.net_options.width, network.net_options.height)
    resized = bool(current) and current[-1] != cfg_size
    if resized:
        network.resize(*cfg_size)
    try:
        yield
    finally:
        if resized:
            network.resize(*current[-1])


def uses_letter_box(network, letter_box: Optional[bool], command: str = "test") -> bool:
    """Whether a command letterboxes its input (§12.1): PJ always letterboxes (except `recall`); AB stretches
    unless `[net] letter_box=1` or, for `test` only, the `-letter_box` flag."""
    if command == "recall":
        return False
    if network.net_options.flavor.letterbox_always:
        return True
    return bool(network.net_options.letter_box or (letter_box and command == "test"))


def prepare_image(image: np.ndarray, net_w: int, net_h: int, letter_box: bool) -> np.ndarray:
    """The network input for ``image`` (C, H, W) float32: Darknet's `letterbox_image` or `resize_image`."""
    return letterbox_image(image, net_w, net_h) if letter_box else resize_image(image, net_w, net_h)


def network_device(network) -> torch.device:
    return next((p.device for p in network.parameters()), torch.device("cpu"))


def network_predict(network, sized: np.ndarray) -> dict[int, torch.Tensor]:
    """Run the network in inference mode on one prepared (C, H, W) input, or a batch of them (N, C, H, W);
    the detection layers' outputs."""
    device = network_device(network)
    was_training = network.training          # `-map` during training must hand the network back as it was
    if was_training:                         # (switching modes walks every module: only when needed)
        network.eval()
    try:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(sized, dtype=np.float32))
            x = (x[None] if x.dim() == 3 else x).to(device)
            return network(x)
    finally:
        if was_training:
            network.train()


def get_network_boxes(network, outputs: dict[int, torch.Tensor], im_w: int, im_h: int, thresh: float,
                      relative: bool = True, letter_box: bool = False, batch_index: int = 0) -> DetectionArrays:
    """Candidates of every detection layer in network order, corrected to the image (§9.7, §12.2)."""
    parts = []
    for index in network.detection_indices:
        layer = network.layers[index]
        found = layer.detections(outputs[index][batch_index], thresh)
        boxes = found.boxes.detach().cpu().numpy().astype(np.float32)
        boxes = correct_yolo_boxes(boxes, im_w, im_h, network.net_options.width, network.net_options.height, relative,
                                   letter_box)
        parts.append(DetectionArrays(boxes, found.objectness.detach().cpu().numpy().astype(np.float32),
                                     found.probs.detach().cpu().numpy().astype(np.float32)))
    if not parts:
        return DetectionArrays.empty(0)
    result = parts[0]
    for part in parts[1:]:
        result = result.concat(part)
    return result


def nms_settings(network) -> tuple[str, float]:
    """(`nms_kind`, `beta_nms`) of the last detection layer, which AB's commands use; PJ has only the
    default NMS."""
    last = network.last_detection_layer()
    options = getattr(last, "options", None)
    if network.net_options.flavor.pjreddie or options is None:
        return "default", 0.6
    return getattr(options, "nms_kind", "default"), getattr(options, "beta_nms", 0.6)


def detect_arrays(network, image: np.ndarray, thresh: float, nms: float = .45, letter_box: bool = False,
                  relative: bool = True) -> DetectionArrays:
    """:func:`detect` returning parallel arrays (what the evaluation commands consume)."""
    _, im_h, im_w = image.shape
    sized = prepare_image(image, network.net_options.width, network.net_options.height, letter_box)
    outputs = network_predict(network, sized)
    dets = get_network_boxes(network, outputs, im_w, im_h, thresh, relative, letter_box)
    kind, beta = nms_settings(network)
    return apply_nms(dets, nms, kind, beta)


def detect(network, image: np.ndarray, thresh: float, nms: float = .45, letter_box: bool = False,
           hier: float = .5, relative: bool = True) -> list[Detection]:
    """Darknet's detections of one image (C, H, W) float32 RGB in [0, 1], in Darknet's order after NMS.

    ``thresh``: objectness and class-prob threshold of `get_network_boxes`; ``nms``: NMS IoU threshold (0 =
    none); ``letter_box``: letterbox instead of stretching (see :func:`uses_letter_box` for each command's
    rule); ``hier`` only matters for YOLO9000 tree models, which darknet_py does not run; ``relative``:
    boxes in [0, 1] image units, else pixels. Load the network with ``batch=1``."""
    del hier   # [yolo] ignores hier_thresh; [region] tree (YOLO9000) is refused at parse time
    return detect_arrays(network, image, thresh, nms, letter_box, relative).to_list()
