"""realnvp: RealNVP normalizing flows in PyTorch.

    >>> import torch, realnvp
    >>> flow = realnvp.build_flow(realnvp.FlowSpec(dim=2, couplings=4, coupling="split", width=32, depth=2))
    >>> flow.log_prob(torch.zeros(3, 2)).shape
    torch.Size([3])
"""

from realnvp.architecture import FlowSpec, build_flow
from realnvp.flow import Flow
from realnvp.serialization import load, save
from realnvp.training import TrainConfig, fit

__all__ = ["Flow", "FlowSpec", "TrainConfig", "build_flow", "fit", "load", "save"]
__version__ = "0.1.0"
