"""AB `[local_avgpool]` / `[local_avg]` (spec §3.3): maxpool geometry, mean over in-image positions only."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import BuildContext, DarknetLayer
from .maxpool import PoolOptions, pad_window, parse, pooled_shape  # noqa: F401  (parse: same keys)


class LocalAvgpoolLayer(DarknetLayer):
    kind = "local_avgpool"

    def __init__(self, opts: PoolOptions, ctx: BuildContext):
        super().__init__(ctx, pooled_shape(opts, ctx))
        self.options = opts

    def forward(self, x, outputs):
        o = self.options
        window, stride = (o.size, o.size), (o.stride_y, o.stride_x)
        total = F.avg_pool2d(pad_window(x, o, 0.0), window, stride, divisor_override=1)
        ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
        count = F.avg_pool2d(pad_window(ones, o, 0.0), window, stride, divisor_override=1)
        return total / count.clamp_min(1.0)
