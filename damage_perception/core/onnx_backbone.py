"""The frozen backbone through ONNX Runtime, with the torch network as the fallback.

The torch ``Backbone`` is exported once per process to an ONNX file in a temporary folder (dynamic batch and
crop size; nothing is written beside the package) and run by ONNX Runtime on ``threads`` threads. Its output
is the torch network's (max abs difference ~1e-4 on maps reaching ~90, checked in the tests). When
onnxruntime or the export is unavailable, ``fast_backbone`` returns the torch network and says why.
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from damage_perception.core.backbone import Backbone


def onnx_session(module: torch.nn.Module, example: torch.Tensor, output_name: str,
                 output_axes: dict[int, str], threads: int = 2):
    """An ONNX Runtime CPU session of ``module``, exported once (legacy exporter, opset 17) to a temporary
    folder that is removed again: input "images" with dynamic batch, height and width, output ``output_name``
    with the dynamic ``output_axes``; ``threads`` intra-op threads."""
    import onnxruntime

    folder = Path(tempfile.mkdtemp(prefix="damage_onnx_"))
    path = folder / "module.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, str(path), input_names=["images"], output_names=[output_name],
                              opset_version=17, dynamo=False,
                              dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"},
                                            output_name: output_axes})
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle intra-op threads spin-wait after each run by default; on 2 cores they then take the cores
        # from the torch and numpy work that follows every backbone call (featurize took 21 ms instead of 9).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


class OnnxBackbone:
    """Callable like ``Backbone``: (B, 3, S, S) tensor in, (B, 152, S/8, S/8) tensor out."""

    def __init__(self, network: Backbone, threads: int = 2) -> None:
        self.network = network   # kept: what the export came from, and what ``torch_forward`` runs
        self.session = onnx_session(network, torch.zeros(2, 3, 160, 160), "features",
                                    {0: "batch", 2: "rows", 3: "cols"}, threads)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        features = self.session.run(None, {"images": np.ascontiguousarray(images.numpy(), np.float32)})[0]
        return torch.from_numpy(features)

    def torch_forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)


def fast_backbone(network: Backbone, threads: int = 2) -> tuple[OnnxBackbone | Backbone, str]:
    """(the backbone to run, what runs it): ONNX Runtime when it can, else the torch network and why not."""
    try:
        return OnnxBackbone(network, threads), "onnxruntime"
    except Exception as error:  # noqa: BLE001 - ImportError, export or session errors: all mean "use torch"
        return network, f"torch ({type(error).__name__}: {error})"
