"""SiamPolar course library: data, geometry, Siamese polar network, training, tracking, evaluation."""
from __future__ import annotations

__version__ = "0.1.0"


def build_model(name: str = "lite0", pretrained: bool = True):
    """Build a SiamPolar network by config name (lite0, r18, r50, r101, quick); see models.siampolar."""
    from siampolar_lib.models.siampolar import (
        build_model as _build,  # lazy: `import siampolar_lib` stays light (no torch)
    )

    return _build(name, pretrained=pretrained)
