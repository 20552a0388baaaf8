"""SiamPolar: shared backbone + FPN neck on template and search, depth-wise correlation per level, polar head.

    template z (B, 3, 127, 127) RGB 0..255 --backbone+neck--> per level (B, C, h, w) -> central crop k x k
    search   x (B, 3, 255, 255) RGB 0..255 --backbone+neck--> per level (B, C, H, W)
    xcorr_depthwise(search, template) per level -> (B, C, H-k+1, W-k+1) -> shared PolarHead

Output dict, lists with one entry per level in `config.strides` order:
    "cls" (B, 1, H, W) object logits; "ctr" (B, 1, H, W) centerness logits;
    "rays" (B, 36, H, W) positive ray lengths, search-crop pixels;
    "points" (H, W, 2) crop-pixel (x, y) of each location (`grid.location_grid`); "strides" list of ints.
Tracking API: `model.template(z)` caches the template features, then `model.track(x)` per frame.
With config.refine_iters > 0 the network also holds the object-scale refinement stage (`models.refine`):
`model.refine(r, rays)`, r (B, 3, refine_size, refine_size) RGB 0..255 around the first polygon's centre, rays
(B, R) crop pixels -> the refined rays (B, R) after the last iteration.
"""
from __future__ import annotations

import torch
from torch import nn

from siampolar_lib.models.backbone import build_backbone
from siampolar_lib.models.config import ModelConfig, get_config
from siampolar_lib.models.grid import location_grid
from siampolar_lib.models.head import PolarHead
from siampolar_lib.models.neck import FPNNeck
from siampolar_lib.models.refine import RayRefiner
from siampolar_lib.models.xcorr import align_search, crop_template, xcorr_depthwise


class SiamPolar(nn.Module):
    """The Siamese polar network for one ModelConfig (see the module docstring for shapes)."""

    def __init__(self, config: ModelConfig, pretrained: bool = True):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config, pretrained=pretrained)
        self.neck = FPNNeck(self.backbone.out_channels, config.channels, config.strides)
        self.head = PolarHead(config.channels, len(config.strides), config.tower_convs, config.gn_groups,
                              config.num_rays, config.prior_prob, config.ray_bias, config.ray_search_features)
        self.refiner = RayRefiner(self.backbone.early_channels, config.refine_channels, config.num_rays,
                                  config.refine_iters, config.refine_size) if config.refine_iters else None
        self._zf: list[torch.Tensor] | None = None  # cached template features, one per level

    def _check_input(self, t: torch.Tensor, size: int, what: str) -> None:
        if t.dim() != 4 or t.shape[1] != 3 or tuple(t.shape[2:]) != (size, size):
            raise ValueError(f"{what} must be (B, 3, {size}, {size}) RGB 0..255, got {tuple(t.shape)}")

    def backbone_features(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """The backbone alone (for benchmarks and teaching): RGB 0..255 (B, 3, H, W) -> {stride: map}."""
        return self.backbone(x)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone + neck: (B, 3, H, W) RGB 0..255 -> one (B, C, H/s, W/s) map per output stride."""
        return self._neck(self.backbone(x))

    def template_features(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Template (B, 3, 127, 127) -> per level the central k x k feature crop (B, C, k, k)."""
        self._check_input(z, self.config.template_size, "template")
        return [crop_template(f, k) for f, k in zip(self.features(z), self.config.template_crop)]

    def template(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Cache the template features for `track` (tracking API) and return them (per level (B, C, k, k))."""
        self._zf = self.template_features(z)
        return self._zf

    def track(self, x: torch.Tensor, zf: list[torch.Tensor] | None = None) -> dict:
        """Search (B, 3, 255, 255) against template features zf (default: the cached ones) -> output dict.

        Passing zf (from `template_features`) lets several targets share one network without re-caching.
        """
        zf = self._zf if zf is None else zf
        if zf is None:
            raise RuntimeError("call model.template(z) before model.track(x)")
        return self._head(zf, x)

    def refine_all(self, r: torch.Tensor, rays: torch.Tensor) -> list[torch.Tensor]:
        """Refinement crop (B, 3, S_r, S_r) RGB 0..255, first rays (B, R) crop px -> the rays after each iteration."""
        if self.refiner is None:
            raise RuntimeError(f"model {self.config.name!r} has no refinement stage (config.refine_iters is 0)")
        self._check_input(r, self.config.refine_size, "refinement crop")
        return self.refiner(*self.backbone.early_features(r), rays)

    def refine(self, r: torch.Tensor, rays: torch.Tensor) -> torch.Tensor:
        """Tracking API: the refined rays (B, R) crop pixels after the last iteration (see `refine_all`)."""
        return self.refine_all(r, rays)[-1]

    def forward(self, template: torch.Tensor | dict[int, torch.Tensor],
                search: torch.Tensor | dict[int, torch.Tensor]) -> dict:
        """Training API: template (B, 3, 127, 127), search (B, 3, 255, 255), RGB 0..255 -> output dict.

        Either input may instead be the frozen backbone's maps of that crop, {stride: (B, C_s, h, w)}
        (`feature_cache`): then only the neck, the correlation and the head run.
        """
        if isinstance(template, dict):
            zf = [crop_template(f, k) for f, k in zip(self._neck(template), self.config.template_crop)]
        else:
            zf = self.template_features(template)
        if isinstance(search, dict):
            return self._correlate(zf, self._neck(search))
        return self._head(zf, search)

    def _neck(self, backbone_maps: dict[int, torch.Tensor]) -> list[torch.Tensor]:
        """Backbone maps {stride: (B, C_s, h, w)} -> one (B, C, h, w) neck map per output stride."""
        out = self.neck(backbone_maps)
        return [out[s] for s in self.config.strides]

    def _head(self, zf: list[torch.Tensor], x: torch.Tensor) -> dict:
        self._check_input(x, self.config.search_size, "search")
        return self._correlate(zf, self.features(x))

    def _correlate(self, zf: list[torch.Tensor], xf: list[torch.Tensor]) -> dict:
        """Per level: depth-wise correlation of search maps xf with template maps zf, then the polar head."""
        out: dict = {"cls": [], "ctr": [], "rays": [], "points": [], "strides": list(self.config.strides)}
        for level, (z, f, s) in enumerate(zip(zf, xf, self.config.strides)):
            corr, (cls, ctr, rays) = self.level_outputs(z, f, level)
            out["cls"].append(cls)
            out["ctr"].append(ctr)
            out["rays"].append(rays)
            out["points"].append(location_grid(corr.shape[2], corr.shape[3], s, self.config.search_size, corr.device))
        return out

    def level_outputs(self, z: torch.Tensor, f: torch.Tensor, level: int
                      ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One level: template z (B, C, k, k), search f (B, C, H, W) -> correlation (B, C, H', W'), head outputs."""
        corr = xcorr_depthwise(f, z)
        search = align_search(f, z.shape[-1]) if self.config.ray_search_features else None
        return corr, self.head(corr, level, search)


def build_model(name: str | ModelConfig = "lite0", pretrained: bool = True) -> SiamPolar:
    """A SiamPolar network for config `name` (lite0, quick, r18, r50, r101), in train mode."""
    return SiamPolar(get_config(name), pretrained=pretrained)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameter counts: total, trainable, and per top-level part (backbone, neck, head)."""
    counts = {"total": sum(p.numel() for p in model.parameters()),
              "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    for name, child in model.named_children():
        counts[name] = sum(p.numel() for p in child.parameters())
    return counts
