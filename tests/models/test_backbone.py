"""Backbones: real ImageNet weights are loaded (Lite0 classifies DAVIS frames), offline fallback, frozen BN."""
from __future__ import annotations

import warnings

import cv2
import pytest
import torch

from siampolar_lib.models import backbone as bb


def _frame(root, seq, idx):
    path = root / "JPEGImages" / "480p" / seq / f"{idx:05d}.jpg"
    img = cv2.imread(str(path))
    assert img is not None, f"cannot read {path}"
    return img[:, :, ::-1].copy()


@pytest.fixture(scope="module")
def classifier():
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return bb.build_lite0_imagenet(pretrained=True)


def test_lite0_weights_file_is_the_packaged_one():
    path = bb.lite0_weights_path()
    sd = torch.load(path, map_location="cpu", weights_only=True)
    assert path.name == "efficientnet-lite0-57934424.pth" and len(sd) == 296
    assert {"_conv_stem.weight", "_blocks.0._depthwise_conv.weight", "_fc.weight"} <= set(sd)


@pytest.mark.parametrize("seq,idx,cls,pmin", [("blackswan", 0, 100, 0.8), ("camel", 10, 354, 0.1)])
def test_lite0_classifies_imagenet_classes(real_davis, classifier, seq, idx, cls, pmin):
    k, p = bb.classify_imagenet(classifier, _frame(real_davis, seq, idx))
    assert k == cls and p > pmin, (k, p)


def test_random_lite0_does_not_classify(real_davis):
    torch.manual_seed(0)
    k, p = bb.classify_imagenet(bb.build_lite0_imagenet(pretrained=False), _frame(real_davis, "blackswan", 0))
    assert not (k == 100 and p > 0.5)


def test_backbone_shares_the_classifier_weights(classifier):
    back = bb.Lite0Backbone((8, 16), pretrained=True)
    torch.testing.assert_close(back.conv_stem.weight, classifier.conv_stem.weight)
    torch.testing.assert_close(back.blocks[4][0].conv_pw.weight, classifier.blocks[4][0].conv_pw.weight)
    assert len(back.blocks) == 5  # truncated after the stride-16 block


def test_lite0_feature_sizes_and_frozen_bn():
    back = bb.Lite0Backbone((8, 16, 32), pretrained=False, frozen_stages=2, bn_mode="frozen").train()
    out = back(torch.rand(1, 3, 255, 255) * 255)
    assert {s: tuple(f.shape[1:]) for s, f in out.items()} == {8: (40, 32, 32), 16: (112, 16, 16), 32: (320, 8, 8)}
    bns = [m for m in back.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    assert not back.conv_stem.weight.requires_grad and not back.blocks[1][0].conv_pw.weight.requires_grad
    assert back.blocks[2][0].conv_pw.weight.requires_grad
    trainable = bb.Lite0Backbone((8, 16), pretrained=False, frozen_stages=0, bn_mode="train").train()
    assert all(m.training for m in trainable.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with pytest.raises(ValueError, match="bn_mode"):
        bb.Lite0Backbone((8,), pretrained=False, bn_mode="sometimes")


def test_offline_resnet_falls_back_with_one_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("SIAMPOLAR_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted while offline")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = bb.load_resnet("resnet18", pretrained=True)
    ours = [w for w in caught if issubclass(w.category, bb.PretrainedWeightsUnavailable)]
    assert len(ours) == 1 and len(caught) == 1
    msg = str(ours[0].message)
    assert "\n" not in msg and "resnet18" in msg and "random init" in msg
    assert net.fc.weight.shape == (1000, 512)


def test_offline_flag_reads_env(monkeypatch):
    monkeypatch.delenv("SIAMPOLAR_OFFLINE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert not bb.offline()
    monkeypatch.setenv("CI", "true")
    assert bb.offline()
    monkeypatch.setenv("CI", "0")
    monkeypatch.setenv("SIAMPOLAR_OFFLINE", "1")
    assert bb.offline()


def test_resnet_backbone_strides_without_weights():
    back = bb.ResNetBackbone("resnet18", (8, 16, 32), pretrained=False).eval()
    with torch.no_grad():
        out = back(torch.rand(1, 3, 127, 127) * 255)
    assert {s: tuple(f.shape[1:]) for s, f in out.items()} == {8: (128, 16, 16), 16: (256, 8, 8), 32: (512, 4, 4)}


class _ToyBackbone(torch.nn.Module):
    """The smallest module with the backbone interface (models/backbone.py): two strided convs."""

    def __init__(self, cfg, pretrained: bool):
        super().__init__()
        self.strides = tuple(cfg.backbone_strides)
        self.out_channels = {s: 8 for s in self.strides}
        self.early_channels = (4, 8)
        self.s4 = torch.nn.Conv2d(3, 4, 3, stride=4, padding=1)
        self.down = torch.nn.ModuleDict({str(s): torch.nn.Conv2d(4, 8, 3, stride=s // 4, padding=1)
                                         for s in self.strides})

    def normalise(self, x):
        return x / 255.0

    def early_features(self, x):
        s4 = self.s4(self.normalise(x))
        return s4, self.down["8"](s4)

    def forward(self, x):
        s4 = self.s4(self.normalise(x))
        return {s: self.down[str(s)](s4) for s in self.strides}


def test_a_registered_backbone_builds_a_whole_network(monkeypatch):
    """Adding a backbone is one registration: the config accepts its name and build_model runs it end to end."""
    from dataclasses import replace

    from siampolar_lib.models import backbone as B
    from siampolar_lib.models.config import QUICK, ModelConfig
    from siampolar_lib.models.siampolar import SiamPolar

    with pytest.raises(ValueError, match="model.backbone = 'toy'"):
        replace(QUICK, backbone="toy")
    monkeypatch.setitem(B.BACKBONES, "toy", _ToyBackbone)
    cfg = replace(QUICK, backbone="toy", backbone_strides=(8, 16), strides=(8, 16))
    assert isinstance(cfg, ModelConfig)
    model = SiamPolar(cfg, pretrained=False).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, cfg.template_size, cfg.template_size),
                    torch.zeros(1, 3, cfg.search_size, cfg.search_size))
    assert [o.shape[1] for o in out["rays"]] == [cfg.num_rays] * len(cfg.strides)
