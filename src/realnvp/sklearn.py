"""A scikit-learn density estimator, a drop-in replacement for ``KernelDensity``.

    >>> import numpy as np
    >>> from realnvp.sklearn import RealNVPDensity
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> model = RealNVPDensity(epochs=5, random_state=0).fit(X)
    >>> model.score_samples(X[:3]).shape, model.sample(4, random_state=0).shape
    ((3,), (4, 2))
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from realnvp.architecture import FlowSpec, build_flow
from realnvp.evaluation import log_prob_numpy
from realnvp.training import TrainConfig, fit

MIN_ROWS_FOR_VALIDATION = 50


class RealNVPDensity(DensityMixin, BaseEstimator):
    """RealNVP density estimator with scikit-learn's API.

    The flow standardises the data inside itself, so ``score_samples`` is the
    log-density in the data's own coordinates (nats). With at least 50 rows,
    ``validation_fraction`` of them are held out for early stopping.

    Args:
        couplings, width, depth: split affine couplings with MLP conditioners
            of ``depth`` hidden layers of ``width`` units.
        scale_bound: bound on the log-scale, ``s = bound * tanh(raw)`` (learned).
        epochs, batch_size, learning_rate, patience, grad_clip: training.
        validation_fraction: held-out share for early stopping.
        dtype: ``"float64"`` (exact, the default) or ``"float32"`` (faster).
        random_state: seed for initialisation, splits and minibatch order.
    """

    def __init__(
        self,
        couplings: int = 8,
        width: int = 64,
        depth: int = 2,
        scale_bound: float = 3.0,
        epochs: int = 100,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        patience: int = 20,
        grad_clip: float = 5.0,
        validation_fraction: float = 0.1,
        dtype: str = "float64",
        random_state: int | None = None,
    ) -> None:
        self.couplings = couplings
        self.width = width
        self.depth = depth
        self.scale_bound = scale_bound
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.grad_clip = grad_clip
        self.validation_fraction = validation_fraction
        self.dtype = dtype
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: None = None) -> RealNVPDensity:
        """Fit the flow to ``X (n_samples, n_features)``, ``n_features >= 2``."""
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        n, dim = X.shape
        if dim < 2:
            raise ValueError("RealNVPDensity needs at least 2 features, got 1 feature(s): a coupling layer "
                             "transforms some features conditioned on the others")
        dtype = {"float64": torch.float64, "float32": torch.float32}[self.dtype]
        seed = check_random_state(self.random_state).randint(2**31 - 1)
        order = np.random.default_rng(seed).permutation(n)
        n_val = int(round(n * self.validation_fraction)) if n >= MIN_ROWS_FOR_VALIDATION else 0
        data = torch.as_tensor(X[order], dtype=dtype)
        train, val = data[n_val:], (data[:n_val] if n_val else None)
        spec = FlowSpec(dim=dim, couplings=self.couplings, coupling="split", width=self.width, depth=self.depth,
                        separate_networks=False, scale_bound=self.scale_bound, learn_bound=True, zero_init=True,
                        permutation="reverse" if dim == 2 else "random", seed=seed)
        torch.manual_seed(seed)
        self.flow_ = build_flow(spec, train).to(dtype)
        config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.learning_rate,
                             schedule="cosine", grad_clip=self.grad_clip,
                             patience=self.patience if val is not None else None, seed=seed)
        self.training_ = fit(self.flow_, train, val, config, progress=False)
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Log-density of each row of ``X``, in nats, shaped ``(n_samples,)``."""
        check_is_fitted(self, "flow_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return log_prob_numpy(self.flow_, X)

    def score(self, X: np.ndarray, y: None = None) -> float:
        """Mean log-likelihood of ``X`` in nats per row (higher is better)."""
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples: int = 1, random_state: int | np.random.RandomState | None = None) -> np.ndarray:
        """Draw ``(n_samples, n_features)`` new rows."""
        check_is_fitted(self, "flow_")
        seed = check_random_state(random_state).randint(2**31 - 1)
        with torch.no_grad():
            samples = self.flow_.sample(n_samples, generator=torch.Generator().manual_seed(seed))
        return samples.double().cpu().numpy()
