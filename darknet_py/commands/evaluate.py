"""`darknet_py detector valid|map|recall|calc_anchors`: Darknet's evaluation commands (`test` is in test.py).

Flags are spelled as in Darknet (`-thresh .25`, `-ext_output`); each command is appended to COMMANDS."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import click

from ..config.data import DataConfig, parse_data
from ..errors import UsageError, warn
from ..flavor import Flavor
from ..outputs import refuse_overwriting_inputs
from ..atomic_write import write_atomically
from ..device import resolve_device
from .options import device_options, flavor_option, inference_options

if TYPE_CHECKING:
    from ..network import Network

COMMANDS: list = []


def checked_names(data: DataConfig, network: Network) -> tuple[str, ...]:
    """The .data file's class names, checked against the network (see :func:`check_class_names`); a .data
    `classes` that differs from the cfg's is warned about (Darknet's detector commands never read it)."""
    from ..eval.detect import check_class_names, detector_classes
    names = check_class_names(data.read_names(), str(data.resolve("names")), network)
    classes = detector_classes(network)
    if data.classes != classes:
        warn(f"classes={data.classes}, but the cfg's last detection layer has classes={classes}: the cfg's "
             f"value is used", data.file)
    return names


def open_detector(data_file: str, cfg: str, weights: Optional[str], flavor: Flavor | str, device: str = "cpu"):
    """(.data config, class names, network) as every evaluation command needs them."""
    from ..eval.detect import open_network
    data = parse_data(data_file, flavor=flavor)
    network = open_network(cfg, weights, flavor, device)
    return data, checked_names(data, network), network


MAP_HINT = ["", "Set -points flag:", " `-points 101` for MS COCO ",
            " `-points 11` for PascalVOC 2007 (uncomment `difficult` in voc.data) ",
            " `-points 0` (AUC) for ImageNet, PascalVOC 2010-2012, your custom dataset"]


@click.command("map")
@click.argument("data_file", metavar="DATA", type=click.Path())
@click.argument("cfg", type=click.Path())
@click.argument("weights", type=click.Path())
@click.option("-thresh", "thresh", type=float, default=.25, show_default=True,
              help="Confidence for the TP/FP/precision/recall/IoU lines.")
@click.option("-iou_thresh", "iou_thresh", type=float, default=.5, show_default=True,
              help="IoU a detection needs (strictly more) to match a ground-truth box.")
@click.option("-points", "points", type=int, default=0, show_default=True,
              help="0: area under the curve; 11 (VOC2007) or 101 (COCO) recall points.")
@click.option("-letter_box", "letter_box", is_flag=True,
              help="Ignored, as in AlexeyAB's Darknet: map letterboxes only with [net] letter_box=1.")
@click.option("-coco", "coco", is_flag=True,
              help="Also print pycocotools' COCO mAP@[.5:.95] and mAP@0.50 of the same detections (slow).")
@click.option("-coco_out", "coco_out", default=None,
              help="Implies -coco; also write the detections pycocotools scored as a COCO results JSON file.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Also draw the precision-recall curves, F1 curve and confusion matrix of these matches as "
                   "PNGs in DIR; needs the [plots] extra (matplotlib).")
@click.option("-dont_show", "dont_show", is_flag=True, hidden=True)
@flavor_option
@device_options
@inference_options
def map_command(data_file, cfg, weights, thresh, iou_thresh, points, letter_box, coco, coco_out, plots_dir,
                dont_show, flavor, device, gpu_index, batch, workers):
    """Darknet's mean average precision of WEIGHTS on the .data file's valid list (AlexeyAB's algorithm);
    with -coco, also pycocotools' COCO numbers on the same detections."""
    from ..eval.detect import open_network
    from ..eval.inference import default_batch
    from ..eval.map import validate_detector_map
    if points < 0 or points == 1:
        raise UsageError(f"-points must be 0 (area under the curve) or at least 2, got {points}")
    if plots_dir:
        from ..eval.map_plots import PLOT_FILES, require_matplotlib
        require_matplotlib()
    data = parse_data(data_file, flavor=flavor)
    refuse_overwriting_inputs("detector map", {"data file": data_file, "cfg file": cfg, "weights file": weights,
                                               "names file": data.resolve("names")}, {"-coco_out": coco_out},
                              {"--plots file": (plots_dir, PLOT_FILES)} if plots_dir else {})
    device = resolve_device(device, gpu_index)
    network = open_network(cfg, weights, flavor, device)
    checked_names(data, network)
    click.echo("\n calculation mAP (mean average precision)...")
    result = validate_detector_map(network, data, thresh, iou_thresh, points, letter_box,
                                   coco=coco or bool(coco_out), coco_json=coco_out,
                                   batch=batch or default_batch(device, network), workers=workers,
                                   plots_dir=plots_dir)
    for line in result.report_lines():
        click.echo(line)
    if plots_dir:
        click.echo(f"wrote pr_curve.png, f1_curve.png, confusion_matrix.png and pr_curves.json in {plots_dir}",
                   err=True)
    click.echo(f"Total Detection Time: {int(result.seconds)} Seconds", err=True)
    for line in MAP_HINT:
        click.echo(line)


COMMANDS.append(map_command)


@click.command("valid")
@click.argument("data_file", metavar="DATA", type=click.Path())
@click.argument("cfg", type=click.Path())
@click.argument("weights", type=click.Path())
@click.option("-out", "outfile", default=None, help="Result file name prefix (default per eval format).")
@flavor_option
@device_options
@inference_options
def valid(data_file, cfg, weights, outfile, flavor, device, gpu_index, batch, workers):
    """Write detections of the valid list in the .data file's `eval` format (voc, coco, imagenet)."""
    from ..eval.inference import default_batch
    from ..eval.valid import result_files, validate_detector
    device = resolve_device(device, gpu_index)
    data = parse_data(data_file, flavor=flavor)
    refuse_overwriting_inputs("detector valid", {"data file": data_file, "cfg file": cfg, "weights file": weights,
                                                 "names file": data.resolve("names")},
                              {"result file": result_files(data, data.read_names(), outfile)})
    data, names, network = open_detector(data_file, cfg, weights, flavor, device)
    output = validate_detector(network, data, names, outfile, flavor, batch or default_batch(device, network),
                               workers)
    for path in output.files:
        click.echo(f"wrote {path}", err=True)
    click.echo(f"Total Detection Time: {output.seconds:f} Seconds", err=True)


COMMANDS.append(valid)


@click.command("recall")
@click.argument("data_file", metavar="DATA", type=click.Path())
@click.argument("cfg", type=click.Path())
@click.argument("weights", type=click.Path())
@flavor_option
@device_options
@inference_options
def recall(data_file, cfg, weights, flavor, device, gpu_index, batch, workers):
    """Proposal recall at IoU > .5 on the valid list (pjreddie: on data/coco_val_5k.list), one line per image
    on stderr, as Darknet prints it."""
    from ..eval.detect import open_network
    from ..eval.inference import default_batch
    from ..eval.recall import validate_detector_recall
    data = parse_data(data_file, flavor=flavor)
    device = resolve_device(device, gpu_index)
    network = open_network(cfg, weights, flavor, device)
    for state in validate_detector_recall(network, data, batch or default_batch(device, network), workers):
        click.echo(state.line(), err=True)


COMMANDS.append(recall)


ANCHOR_FILES = ("counters_per_class.txt", "anchors.txt")     # in the working directory, as AB


@click.command("calc_anchors")
@click.argument("data_file", metavar="DATA", type=click.Path())
@click.option("-num_of_clusters", "num_of_clusters", type=int, default=5, show_default=True)
@click.option("-width", "width", type=int, default=-1, help="Network input width (required).")
@click.option("-height", "height", type=int, default=-1, help="Network input height (required).")
@click.option("-seed", "seed", type=int, default=None,
              help="srand() seed of the initial centres (default: the clock, as AlexeyAB: runs differ).")
@click.option("-show", "show", is_flag=True,
              help="Also write cloud.png: the label boxes' sizes by cluster and the anchors (AB).")
@flavor_option
def calc_anchors_command(data_file, num_of_clusters, width, height, seed, show, flavor):
    """AB's k-means anchors for the train list; writes anchors.txt and counters_per_class.txt."""
    from ..eval.anchors import calc_anchors
    click.echo(f"\n num_of_clusters = {num_of_clusters}, width = {width}, height = {height} ")
    written = ANCHOR_FILES + (("cloud.png",) if show else ())
    result = calc_anchors(parse_data(data_file, flavor=flavor), num_of_clusters, width, height, seed, flavor,
                          written)
    click.echo(f"\n iterations = {result.iterations} ")
    click.echo(f"\n{result.counters_text()}")
    click.echo(f"\n avg IoU = {result.avg_iou:2.2f} % ")
    click.echo("\nSaving anchors to the file: anchors.txt ")
    click.echo(f"anchors = {result.anchors_text()}")
    write_atomically("counters_per_class.txt", result.counters_text().encode())
    write_atomically("anchors.txt", result.anchors_text().encode())
    if show:
        import cv2
        from ..eval.anchor_cloud import draw_cloud
        ok, png = cv2.imencode(".png", draw_cloud(result, width, height))
        write_atomically("cloud.png", png.tobytes())
        click.echo("wrote cloud.png", err=True)


COMMANDS.append(calc_anchors_command)
