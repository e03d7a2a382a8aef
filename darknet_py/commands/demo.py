"""`darknet_py detector demo`: AlexeyAB's video demo, headless — a video file or camera in, the drawn video
and AB's per-frame JSON out (eval/demo.py)."""
from __future__ import annotations

import click

from ..config.data import parse_data
from ..errors import ImageError, warn
from ..faults import pause_point
from ..flavor import flavor_of
from ..outputs import refuse_overwriting_inputs
from .evaluate import open_detector
from ..device import resolve_device
from .options import bind_option, device_options, flavor_option
from .test import TEST_NMS


@click.command("demo")
@click.argument("data_file", metavar="DATA", type=click.Path())
@click.argument("cfg", type=click.Path())
@click.argument("weights", type=click.Path())
@click.argument("source", metavar="VIDEO|CAMERA_INDEX")
@click.option("-out_filename", "out_filename", default=None,
              help="Write the video with the boxes drawn (.mp4: mp4v, .avi: MJPG), same size and fps.")
@click.option("-json_file_output", "json_file", default=None,
              help="Write AB's JSON: one block per frame (frame_id from 1).")
@click.option("-thresh", "thresh", type=float, default=None, help="Detection threshold (AB .25, PJ .5).")
@click.option("-ext_output", "ext_output", is_flag=True, help="Print each frame's detections with pixel boxes.")
@click.option("-letter_box", "letter_box", is_flag=True, help="AB: letterbox instead of stretching.")
@click.option("-dont_show", "dont_show", is_flag=True, help="Accepted for compatibility (no window is ever shown).")
@click.option("-mjpeg_port", "mjpeg_port", type=int, default=None, metavar="PORT",
              help="Stream the drawn frames over HTTP as MJPEG (AB): http://127.0.0.1:PORT/.")
@click.option("-json_port", "json_port", type=int, default=None, metavar="PORT",
              help="Stream each frame's JSON block over HTTP as AB does (one JSON array, as -json_file_output).")
@bind_option
@flavor_option
@device_options
def demo(data_file, cfg, weights, source, out_filename, json_file, thresh, ext_output, letter_box, dont_show,
         mjpeg_port, json_port, bind, flavor, device, gpu_index):
    """Detect objects in every frame of VIDEO (a file) or CAMERA_INDEX (a number): each frame read gives one
    frame of -out_filename and one block of -json_file_output, detected as `detector test` would detect
    the same picture."""
    from ..eval.demo import DemoSettings, DemoStreams, is_camera, open_capture, run_demo
    from ..eval.detect import uses_letter_box
    names_file = parse_data(data_file, flavor=flavor).resolve("names", must_exist=False)
    refuse_overwriting_inputs("detector demo", {"video": None if is_camera(source) else source,
                                                "data file": data_file, "cfg file": cfg, "weights file": weights,
                                                "names file": names_file},
                              {"-out_filename": out_filename, "-json_file_output": json_file})
    _, names, network = open_detector(data_file, cfg, weights, flavor, resolve_device(device, gpu_index))
    capture = open_capture(source)
    if not (out_filename or json_file or ext_output or mjpeg_port or json_port):
        warn("neither -out_filename, -json_file_output, -ext_output, -mjpeg_port nor -json_port: the detections "
             "go nowhere")
    settings = DemoSettings(names, flavor_of(flavor).test_thresh if thresh is None else thresh, TEST_NMS,
                            uses_letter_box(network, letter_box, "test"), ext_output)
    click.echo(f"Webcam index: {source}" if is_camera(source) else f"video file: {source}")
    try:
        streams = DemoStreams.start(mjpeg_port, json_port, bind, say=click.echo)
        try:
            pause_point("demo-start")          # tests: the servers listen, no frame read yet
            result = run_demo(network, capture, settings, out_filename, json_file, echo=click.echo, streams=streams)
        finally:
            streams.close()                    # the JSON array is closed, every client thread joined
    finally:
        capture.release()
    if result.frames == 0:
        raise ImageError("no frame could be read: an empty or unreadable video"
                         + ("; no -out_filename video was written" if out_filename else ""), file=source)
    click.echo(f"{result.frames} frames of {result.width} x {result.height} at {result.fps:g} fps; "
               f"{result.frames / max(result.seconds, 1e-9):.1f} frames/s", err=True)
    if out_filename:
        click.echo(f"wrote {out_filename}", err=True)
    if json_file:
        click.echo(f"wrote {json_file}", err=True)


COMMANDS = [demo]
