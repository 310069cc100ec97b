"""The scikit-learn estimator: check_estimator, Pipeline, GridSearchCV, KernelDensity's API."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_moons
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from realnvp.sklearn import RealNVPDensity


def test_passes_check_estimator() -> None:
    results = check_estimator(RealNVPDensity(epochs=20), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert failed == []
    assert skipped <= {"check_array_api_input"}  # needs SCIPY_ARRAY_API set in the environment


def test_same_methods_as_kernel_density() -> None:
    X, _ = make_moons(600, noise=0.05, random_state=0)
    for estimator in (KernelDensity(bandwidth=0.1), RealNVPDensity(epochs=30, random_state=0)):
        estimator.fit(X)
        assert estimator.score_samples(X[:5]).shape == (5,)
        assert np.isfinite(estimator.score(X))
        assert estimator.sample(7, random_state=1).shape == (7, 2)


def test_fit_is_reproducible_and_learns() -> None:
    X, _ = make_moons(1000, noise=0.05, random_state=0)
    a = RealNVPDensity(epochs=40, random_state=3).fit(X)
    b = RealNVPDensity(epochs=40, random_state=3).fit(X)
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    gaussian = -0.5 * np.log(np.linalg.det(2 * np.pi * np.e * np.cov(X.T)))  # best Gaussian log-likelihood
    assert a.score(X) > gaussian + 0.5
    np.testing.assert_array_equal(a.sample(5, random_state=2), a.sample(5, random_state=2))


def test_in_a_pipeline_and_grid_search_by_held_out_likelihood() -> None:
    X, _ = make_moons(600, noise=0.05, random_state=1)
    pipeline = make_pipeline(StandardScaler(), RealNVPDensity(random_state=0))
    search = GridSearchCV(pipeline, {"realnvpdensity__epochs": [1, 40]}, cv=3)
    search.fit(X)
    assert search.best_params_ == {"realnvpdensity__epochs": 40}
    assert search.best_estimator_.score_samples(X[:4]).shape == (4,)


def test_one_feature_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="1 feature"):
        RealNVPDensity().fit(np.zeros((10, 1)))
