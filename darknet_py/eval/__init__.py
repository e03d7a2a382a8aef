"""Inference and evaluation as Darknet does them (spec §9.7, §12).

Public entry points:

* :func:`darknet_py.eval.detect.detect` — one image to Darknet's detection list (``Detection`` records);
  :func:`~darknet_py.eval.detect.detect_arrays` gives the same as parallel arrays.
* :func:`darknet_py.eval.map.validate_detector_map` — AlexeyAB's mAP (``MapResult``), also used by `-map`
  during training; :class:`~darknet_py.eval.map.MapAccumulator` for images fed one by one.
* :func:`darknet_py.eval.valid.validate_detector` — `detector valid` files (voc / coco / imagenet).
* :func:`darknet_py.eval.recall.validate_detector_recall`, :func:`darknet_py.eval.anchors.calc_anchors`.
* :mod:`darknet_py.eval.nms` (`do_nms_sort`, `do_nms_obj`, `diounms_sort`), :mod:`darknet_py.eval.boxes`
  (IoU, `correct_yolo_boxes`).
"""
