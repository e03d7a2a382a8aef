"""`detector demo`: the detector over a video file or a camera, frame by frame (AlexeyAB's demo.c), with
OpenCV's VideoCapture and VideoWriter and no window.

Every frame read gives one frame written (same size, the source's fps) with Darknet's boxes drawn, and one
block of AB's JSON; with AB's `-mjpeg_port` / `-json_port`, the drawn frame and the block are also published
to HTTP clients as they are produced (:class:`DemoStreams`, :mod:`darknet_py.http_stream`). Two deliberate
differences from AB's demo: a frame goes through exactly what `detector test` does with the same picture
(AB's demo stretches frames with OpenCV's `cv::resize`, `test` with Darknet's `resize_image`), and its boxes
are drawn on itself (AB's fetch/detect threads draw each frame's boxes on the picture before it)."""
from __future__ import annotations

import math
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import cv2
import numpy as np
from tqdm import tqdm

from ..data.image import image_from_bgr
from ..errors import ImageError
from ..flavor import Flavor
from ..http_stream import Frame, Route, StreamServer, start_server
from .detect import detect_arrays
from .detections import DetectionArrays
from .draw import draw_detections
from .printout import JSON_CLOSE, JSON_OPEN, JSON_SEPARATOR, detection_lines, detection_to_json

JSON_HISTORY = 64   # JSON blocks kept for a client that reads a little late: it still gets every block
STREAM_FPS = 25.0   # AB writes at 25 fps when the stream does not tell its rate (a camera may not)
FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v"}
DEFAULT_FOURCC = "mp4v"


@dataclass(frozen=True)
class DemoSettings:
    names: tuple[str, ...]
    thresh: float
    nms: float
    letter_box: bool
    ext_output: bool       # print each frame's detections (with pixel boxes, as `test -ext_output`)


@dataclass(frozen=True)
class DemoResult:
    frames: int
    seconds: float
    width: int
    height: int
    fps: float


def is_camera(source: str) -> bool:
    """SOURCE names a camera: a number that names no file (AB's camera index)."""
    return source.isdigit() and not Path(source).exists()


def open_capture(source: str) -> cv2.VideoCapture:
    """A video file, or a camera (:func:`is_camera`)."""
    camera = is_camera(source)
    if not camera and not Path(source).is_file():
        raise ImageError("video file not found", file=source)
    capture = cv2.VideoCapture(int(source) if camera else source)
    if not capture.isOpened():
        reason = "cannot open this camera" if camera else "cannot open the video (not a video, or no decoder)"
        raise ImageError(reason, file=source)
    return capture


def stream_fps(capture: cv2.VideoCapture) -> float:
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if fps > 0 and math.isfinite(fps) else STREAM_FPS


def read_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    """The stream's frames, BGR uint8 (H, W, 3), until it ends."""
    while True:
        ok, frame = capture.read()
        if not ok or frame is None:
            return
        yield frame


class VideoFrames:
    """The `-out_filename` video, opened at the first frame's size and coded by its extension (.avi: MJPG,
    else mp4v). A frame of another size is an error: OpenCV's writer would drop it without a word."""

    def __init__(self, path: str, fps: float):
        self.path, self.fps = path, fps
        self.writer: Optional[cv2.VideoWriter] = None
        self.size = (0, 0)

    def add(self, picture: np.ndarray) -> None:
        size = (picture.shape[1], picture.shape[0])
        if self.writer is None:
            self.writer, self.size = self._open(size), size
        if size != self.size:
            raise ImageError(f"a {size[0]}x{size[1]} frame in a video that began at {self.size[0]}x{self.size[1]}",
                             file=self.path)
        self.writer.write(picture)

    def _open(self, size: tuple[int, int]) -> cv2.VideoWriter:
        fourcc = FOURCC.get(Path(self.path).suffix.lower(), DEFAULT_FOURCC)
        writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*fourcc), self.fps, size)
        if not writer.isOpened():
            raise ImageError(f"cannot write a video there with OpenCV's {fourcc} encoder", file=self.path,
                             hint="use a .mp4 or .avi name in a writable directory")
        return writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


class JsonFrames:
    """AB's `-json_file_output` file, written as frames come: an interrupted run still closes the array."""

    def __init__(self, path: str):
        self.file = open(path, "w", encoding="utf-8")
        self.file.write(JSON_OPEN)
        self.blocks = 0

    def add(self, block: str) -> None:
        self.file.write((JSON_SEPARATOR if self.blocks else "") + block)
        self.blocks += 1

    def close(self) -> None:
        self.file.write(JSON_CLOSE)
        self.file.close()


@dataclass
class DemoStreams:
    """AB's `-mjpeg_port` (the drawn frames as MJPEG) and `-json_port` (AB's JSON array of the frames' blocks,
    as -json_file_output writes it); either may be None."""
    mjpeg: Optional[StreamServer] = None
    json: Optional[StreamServer] = None

    @classmethod
    def start(cls, mjpeg_port: Optional[int], json_port: Optional[int], bind: str,
              say: Callable[[str], None] = print) -> "DemoStreams":
        streams = cls(start_server("-mjpeg_port", {"/": Route("mjpeg")}, mjpeg_port, bind, say=say))
        try:
            route = Route("text_stream", (JSON_OPEN, JSON_SEPARATOR, JSON_CLOSE))   # AB: -json_file_output's array
            streams.json = start_server("-json_port", {"/": route}, json_port, bind, JSON_HISTORY, say)
        except BaseException:
            streams.close()
            raise
        return streams

    def close(self) -> None:
        for server in (self.mjpeg, self.json):
            if server is not None:
                server.close()


def detect_frame(network, frame: np.ndarray, settings: DemoSettings) -> tuple[np.ndarray, DetectionArrays]:
    """(Darknet image, detections) of one BGR frame: the `detector test` path for the same picture."""
    image = image_from_bgr(frame, network.net_options.channels)
    return image, detect_arrays(network, image, settings.thresh, settings.nms, settings.letter_box)


def run_demo(network, capture: cv2.VideoCapture, settings: DemoSettings, out_filename: Optional[str] = None,
             json_file: Optional[str] = None, echo: Callable[[str], None] = print,
             streams: Optional[DemoStreams] = None) -> DemoResult:
    """Detect every frame of ``capture``; write the drawn frames and the JSON blocks as they come (both
    files are closed properly when the run stops early) and publish them to ``streams``."""
    streams = streams or DemoStreams()
    fps, total = stream_fps(capture), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    frames, size, start = 0, (0, 0), time.perf_counter()
    with ExitStack() as stack:
        video = VideoFrames(out_filename, fps) if out_filename else None
        if video is not None:
            stack.callback(video.close)
        blocks = JsonFrames(json_file) if json_file else None
        if blocks is not None:
            stack.callback(blocks.close)
        progress = stack.enter_context(tqdm(total=total if total > 0 else None, unit="frame", file=sys.stderr,
                                            desc="demo", disable=None, dynamic_ncols=True))
        for frame in read_frames(capture):
            frames, size = frames + 1, (frame.shape[1], frame.shape[0])
            image, dets = detect_frame(network, frame, settings)
            if settings.ext_output:
                _print_frame(echo, frames, image, dets, settings, network.net_options.flavor)
            drawn = _Drawn(image, dets, settings)
            if video is not None:
                video.add(drawn())
            if streams.mjpeg is not None:
                streams.mjpeg.publish(Frame(drawn))
            if blocks is not None or streams.json is not None:
                block = detection_to_json(dets, settings.names, frames)
                if blocks is not None:
                    blocks.add(block)
                if streams.json is not None:
                    streams.json.publish(Frame(text=block))
            progress.update(1)
    return DemoResult(frames, time.perf_counter() - start, size[0], size[1], fps)


class _Drawn:
    """A frame's picture with its boxes, drawn once when first needed (the video, or an MJPEG client)."""

    def __init__(self, image: np.ndarray, dets: DetectionArrays, settings: DemoSettings):
        self.image, self.dets, self.settings, self.picture = image, dets, settings, None

    def __call__(self) -> np.ndarray:
        if self.picture is None:
            self.picture = draw_detections(self.image, self.dets, self.settings.names, self.settings.thresh)
        return self.picture


def _print_frame(echo, frame_id: int, image: np.ndarray, dets: DetectionArrays, settings: DemoSettings,
                 flavor: Flavor) -> None:
    _, im_h, im_w = image.shape
    echo(f"Frame {frame_id}:")
    for line in detection_lines(dets, settings.names, settings.thresh, im_w, im_h, flavor, ext_output=True):
        echo(line)
