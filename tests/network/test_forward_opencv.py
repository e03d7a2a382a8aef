"""OpenCV's Darknet importer (`cv2.dnn.readNetFromDarknet`) as a second, independent forward oracle:
official yolov3-tiny with its real weights on Debian's sample images.

OpenCV's yolo layer output (one per [yolo], named `yolo_<index>`) is a 2-D matrix of shape
(H·W·A, 5 + classes): rows ordered by cell (row-major, y then x) and then anchor slot (mask order);
columns `[cx, cy, w, h, objectness, class scores...]` where `cx = (x + σ(tx))/W`, `cy = (y + σ(ty))/H`,
`w = exp(tw)·anchor_w/net_w`, `h = exp(th)·anchor_h/net_h`, and a class score is `objectness·σ(class)`, set
to 0 unless > 0.2 (OpenCV's fixed region threshold). The same blob (Darknet's resize of the image) goes
into both networks, so only the forward pass is compared.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from darknet_py import load_network
from darknet_py.data.image import load_image, resize_image

OPENCV_CLASS_THRESH = 0.2


@pytest.fixture(scope="module")
def networks(debian_share, yolov3_tiny_weights):
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip("this OpenCV build has no dnn module")
    cfg = str(debian_share / "cfg" / "yolov3-tiny.cfg")
    ours = load_network(cfg, str(yolov3_tiny_weights), flavor="pj", batch=1).eval()
    theirs = cv2.dnn.readNetFromDarknet(cfg, str(yolov3_tiny_weights))
    theirs.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    theirs.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return ours, theirs


def decode_like_opencv(layer, output: np.ndarray, net_w: int, net_h: int) -> np.ndarray:
    """Our yolo layer output (A·(5+C), H, W) in OpenCV's row layout, before its class threshold."""
    a_count, classes = len(layer.options.mask), layer.options.classes
    h, w = output.shape[-2:]
    v = output.reshape(a_count, 5 + classes, h, w).transpose(2, 3, 0, 1)        # H, W, A, 5+C
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    anchors = np.array(layer.options.mask_anchors, dtype=np.float64)
    decoded = np.empty(v.shape, dtype=np.float64)
    decoded[..., 0] = (cols[..., None] + v[..., 0]) / w
    decoded[..., 1] = (rows[..., None] + v[..., 1]) / h
    decoded[..., 2] = np.exp(v[..., 2]) * anchors[:, 0] / net_w
    decoded[..., 3] = np.exp(v[..., 3]) * anchors[:, 1] / net_h
    decoded[..., 4] = v[..., 4]
    decoded[..., 5:] = v[..., 4:5] * v[..., 5:]
    return decoded.reshape(h * w * a_count, 5 + classes)


@pytest.mark.oracle
@pytest.mark.parametrize("image", ["dog.jpg", "horses.jpg"])
def test_yolo_outputs_equal_opencv(networks, debian_share, image):
    ours, theirs = networks
    net_w, net_h = ours.net_options.width, ours.net_options.height
    blob = resize_image(load_image(debian_share / "data" / image), net_w, net_h)[None]
    theirs.setInput(blob)
    names = theirs.getUnconnectedOutLayersNames()
    assert names == tuple(f"yolo_{i}" for i in ours.detection_indices)
    reference = theirs.forward(names)
    with torch.inference_mode():
        outputs = ours.forward(torch.from_numpy(blob))
    for index, opencv in zip(ours.detection_indices, reference):
        mine = decode_like_opencv(ours.layers[index], outputs[index][0].numpy(), net_w, net_h)
        assert mine.shape == opencv.shape
        np.testing.assert_allclose(mine[:, :5], opencv[:, :5], atol=1e-4, rtol=1e-4)
        scores = mine[:, 5:]
        decided = np.abs(scores - OPENCV_CLASS_THRESH) > 1e-4     # away from OpenCV's cut
        kept = np.where(scores > OPENCV_CLASS_THRESH, scores, 0.0)
        np.testing.assert_allclose(kept[decided], opencv[:, 5:][decided], atol=1e-4)
        assert (opencv[:, 5:] > 0).sum() > 0       # the image has objects above OpenCV's threshold
