"""Output kinds: the pinball loss, the likelihoods, quantiles derived from distributions, the probabilistic
metrics, and how each kind moves with a series' level and scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from dl_core.models.outputs import (
    NormalOutput,
    QuantileOutput,
    StudentTOutput,
    interval_pairs,
    pinball,
    quantile_metrics,
)


def test_pinball_charges_under_forecasts_by_the_level_and_over_forecasts_by_its_complement():
    quantile = torch.tensor([1.0, 1.0])
    actual = torch.tensor([3.0, -1.0])  # 2 above, 2 below
    loss = pinball(quantile, actual, torch.tensor(0.9))
    torch.testing.assert_close(loss, torch.tensor([0.9 * 2, 0.1 * 2]))


def test_the_quantile_loss_is_lowest_at_the_quantiles_of_the_data():
    """Each output's share of the loss is smallest where it equals its level's quantile of the targets."""
    torch.manual_seed(0)
    target = torch.randn(2_000, 1, 1)
    kind = QuantileOutput((0.1, 0.5, 0.9))
    grid = torch.linspace(-2.0, 2.0, 401)
    best = []
    for level in kind.levels:
        losses = [float(pinball(value, target, torch.tensor(level)).mean()) for value in grid]
        best.append(float(grid[int(np.argmin(losses))]))
    np.testing.assert_allclose(best, np.quantile(target.numpy(), kind.levels), atol=0.011)
    optimum = torch.tensor(best).expand(2_000, 1, 1, 3)
    assert float(kind.loss(optimum, target)) < float(kind.loss(optimum + 0.05, target))


@pytest.mark.parametrize(("kind", "scipy_dist"), [
    (NormalOutput((0.1, 0.5, 0.9)), lambda p: stats.norm(p[0], p[1])),
    (StudentTOutput((0.1, 0.5, 0.9)), lambda p: stats.t(p[2], p[0], p[1])),
])
def test_distribution_outputs_give_scipys_likelihood_and_quantiles(kind, scipy_dist):
    raw = torch.tensor([[0.3, -0.5, 1.0], [-2.0, 1.5, -1.0]])[:, :kind.n_params]
    params = kind.finish(raw)
    assert (params[:, 1] > 0).all()
    if kind.n_params == 3:
        assert (params[:, 2] > 2).all()  # finite variance
    target = torch.tensor([0.7, -1.0])
    expected = -np.mean([scipy_dist(p).logpdf(y) for p, y in zip(params.numpy(), target.numpy(), strict=True)])
    assert float(kind.loss(params, target)) == pytest.approx(expected, rel=1e-5)
    quantiles = kind.quantiles(params.numpy())
    np.testing.assert_allclose(quantiles, [scipy_dist(p).ppf([0.1, 0.5, 0.9]) for p in params.numpy()], rtol=1e-5)
    np.testing.assert_allclose(kind.median(params.numpy()), params[:, 0].numpy(), rtol=1e-6)


@pytest.mark.parametrize("kind", [QuantileOutput((0.1, 0.5, 0.9)), NormalOutput((0.1, 0.5, 0.9)),
                                  StudentTOutput((0.05, 0.5, 0.95))])
def test_rescaled_outputs_give_the_quantiles_of_the_rescaled_series(kind):
    """Instance normalisation: quantiles forecast on a standardised window, mapped back, are the quantiles
    of the series on its own level and scale."""
    torch.manual_seed(0)
    raw = torch.randn(4, 5, 2, kind.n_params)
    output = kind.finish(raw)
    loc, scale = torch.tensor([[[10.0, -3.0]]]), torch.tensor([[[2.0, 0.5]]])
    moved = kind.quantiles(kind.rescale(output, loc, scale).numpy())
    expected = kind.quantiles(output.numpy()) * scale.numpy()[..., None] + loc.numpy()[..., None]
    np.testing.assert_allclose(moved, expected, rtol=1e-5, atol=1e-5)


def test_crossing_quantiles_are_reported_in_order():
    kind = QuantileOutput((0.1, 0.5, 0.9))
    np.testing.assert_array_equal(kind.quantiles(np.array([[2.0, 1.0, 3.0]])), [[1.0, 2.0, 3.0]])


def test_quantile_metrics_count_coverage_and_width_of_each_central_interval():
    levels = (0.1, 0.25, 0.5, 0.75, 0.9)
    assert [(low, high, round(c, 6)) for low, high, c in interval_pairs(levels)] == [(0, 4, 0.8), (1, 3, 0.5)]
    quantiles = np.array([[-2.0, -1.0, 0.0, 1.0, 2.0]] * 4)
    actual = np.array([0.5, 1.5, 3.0, -2.0])  # inside both, inside 80 only, outside both, on the 80 % edge
    metrics = quantile_metrics(quantiles, actual, levels)
    assert metrics["coverage_80"] == pytest.approx(0.75) and metrics["coverage_50"] == pytest.approx(0.25)
    assert metrics["width_80"] == pytest.approx(4.0) and metrics["width_50"] == pytest.approx(2.0)
    expected = np.mean([[max(t * (y - q), (t - 1) * (y - q)) for t, q in zip(levels, row, strict=True)]
                        for row, y in zip(quantiles, actual, strict=True)])
    assert metrics["pinball"] == pytest.approx(expected) and metrics["crps"] == pytest.approx(2 * expected)


def test_crps_estimate_approaches_the_closed_form_of_a_normal_forecast():
    """CRPS of N(0, 1) at y = 0 is (sqrt(2) - 1) / sqrt(pi); the estimate over many levels approaches it."""
    levels = tuple(np.round(np.arange(0.01, 1.0, 0.01), 2))
    quantiles = stats.norm.ppf(levels)[None]
    estimate = quantile_metrics(quantiles, np.zeros(1), levels)["crps"]
    assert estimate == pytest.approx((np.sqrt(2) - 1) / np.sqrt(np.pi), rel=0.03)
