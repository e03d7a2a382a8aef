"""Every JSON file darknet_py writes is JSON that every reader accepts (RFC 8259, Python's
``json.dumps(..., allow_nan=False)``): a number that is not finite (an untrained network's box of width
``exp(huge)``, a NaN) is written as ``null``, and names and file names are escaped.

AlexeyAB's Darknet writes such numbers with ``printf("%f")`` as ``inf``, ``-inf`` or ``-nan``, and names
unescaped, which no JSON reader accepts (README, "Differences from Darknet"). For finite numbers and plain
names the bytes are AlexeyAB's."""
from __future__ import annotations

import json
import math
from typing import Any

NON_FINITE = "null"


def json_number(value: float) -> str:
    """C's ``%f`` of ``value`` (AlexeyAB's format), or ``null`` when it is infinite or NaN."""
    value = float(value)
    return f"{value:f}" if math.isfinite(value) else NON_FINITE


def json_string(text: str) -> str:
    """``text`` as a JSON string: quotes, backslashes and control characters escaped, other text as is."""
    return json.dumps(text, ensure_ascii=False)


def json_dumps(document: Any, **options) -> str:
    """``json.dumps`` of ``document`` with every non-finite float replaced by None (``null``)."""
    return json.dumps(finite(document), allow_nan=False, **options)


def finite(document: Any) -> Any:
    """``document`` (dicts, lists, tuples, numbers...) with non-finite floats replaced by None."""
    if isinstance(document, float):
        return document if math.isfinite(document) else None
    if isinstance(document, dict):
        return {key: finite(value) for key, value in document.items()}
    if isinstance(document, (list, tuple)):
        return [finite(value) for value in document]
    return document
