"""Annotation sets in other tools' formats, to and from Darknet's layout (`darknet_py dataset ...`).

Each format has one reader (:mod:`.coco`, :mod:`.voc`, :mod:`.yolo`) that turns its files into one
:class:`~.records.ImportedSet` (image paths, sizes, Darknet boxes, class names, counted problems); one writer
(:mod:`.writer`) lays any such set out as a Darknet data set; :mod:`.export` writes a Darknet data set back
as a COCO JSON. A new format is one new reader."""
