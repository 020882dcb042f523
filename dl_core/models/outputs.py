"""What a forecaster's outputs are: point values, quantiles, or the parameters of a distribution.

A model declares its kind in `output_kind` (its output head builds it, dl_core/models/heads.py); the
task is built with that kind, trains with its loss and reads the outputs through it. Point outputs are (..., horizon,
targets); the others carry one more axis of `n_params` values per step and target: the quantiles
themselves (trained with the pinball loss), or a distribution's parameters (trained by negative
log-likelihood), from which quantiles at the reported `levels` are derived. Everything here works on
the standardised target scale; the task decodes to original units.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, TypeVar

import numpy as np
import torch
from torch.nn import functional as F

MEDIAN = 0.5
MIN_SCALE = 1e-4  # keeps a predicted scale away from 0, where the likelihood has no bound
MIN_DF = 2.0  # Student-t degrees of freedom above this: the variance stays finite
Array = TypeVar("Array", torch.Tensor, np.ndarray)


class OutputKind(ABC):
    """The meaning of a model's last axis of outputs: its loss, constraints and quantiles."""

    name: ClassVar[str]
    levels: tuple[float, ...] = ()

    @property
    @abstractmethod
    def n_params(self) -> int:
        """Values the model outputs per step and target."""

    @property
    def is_point(self) -> bool:
        return False

    @abstractmethod
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The training loss between outputs and (standardised) targets (..., horizon, targets)."""

    def finish(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw values (..., n_params) -> outputs of this kind (the constraints a parameter needs)."""
        return raw

    def rescale(self, output: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Outputs for a series standardised by `loc` and `scale` (broadcast to (..., targets)) mapped back to
        the series' own level: every value moves with the level and the scale (instance normalisation)."""
        return output * scale.unsqueeze(-1) + loc.unsqueeze(-1)

    @property
    def predicted(self) -> OutputKind:
        """The kind of what the model outputs in eval mode, which is predicted and selected on: this one (an
        ensemble's members are averaged into a point output)."""
        return self

    @abstractmethod
    def quantiles(self, outputs: np.ndarray) -> np.ndarray:
        """The quantiles at `levels`, ascending along a last axis (..., len(levels))."""

    def median(self, outputs: np.ndarray) -> np.ndarray:
        """The point forecast of probabilistic outputs: their median."""
        return self.quantiles(outputs)[..., self.levels.index(MEDIAN)]


class PointOutput(OutputKind):
    """The forecast itself, trained with the mean squared error (or, for classes, logits)."""

    name = "point"

    @property
    def n_params(self) -> int:
        return 1

    @property
    def is_point(self) -> bool:
        return True

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output, target)

    def finish(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.squeeze(-1)

    def rescale(self, output: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return output * scale + loc

    def quantiles(self, outputs: np.ndarray) -> np.ndarray:
        raise TypeError("point outputs have no quantiles")

    def median(self, outputs: np.ndarray) -> np.ndarray:
        return outputs


class QuantileOutput(OutputKind):
    """One output per level, each trained with the pinball loss at its level (quantile regression)."""

    name = "quantiles"

    def __init__(self, levels: tuple[float, ...]):
        self.levels = tuple(sorted(levels))

    @property
    def n_params(self) -> int:
        return len(self.levels)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        levels = torch.tensor(self.levels, dtype=output.dtype, device=output.device)
        return pinball(output, target.unsqueeze(-1), levels).mean()

    def quantiles(self, outputs: np.ndarray) -> np.ndarray:
        """Sorted along the levels: separately trained quantiles can cross, and sorting them (monotone
        rearrangement, Chernozhukov et al. 2010) never raises their pinball loss."""
        return np.sort(outputs, axis=-1)


class DistributionOutput(OutputKind):
    """A location-scale distribution's parameters (location, scale, ...), trained by negative log-likelihood."""

    def __init__(self, levels: tuple[float, ...]):
        self.levels = tuple(sorted(levels))

    @abstractmethod
    def distribution(self, output: torch.Tensor) -> torch.distributions.Distribution:
        """The distribution the parameters describe, one per step and target."""

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -self.distribution(output).log_prob(target).mean()

    def finish(self, raw: torch.Tensor) -> torch.Tensor:
        """The location as it is; the scale positive."""
        return torch.cat([raw[..., :1], F.softplus(raw[..., 1:2]) + MIN_SCALE, raw[..., 2:]], dim=-1)

    def rescale(self, output: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The location moves and stretches with the series, the scale stretches, a shape parameter stays.

        A negative `scale` (a learned affine map that flips the series) mirrors the location and stretches the
        scale by its size: the distributions here are symmetric, so the mirror is one of the same family."""
        loc, scale = loc.unsqueeze(-1), scale.unsqueeze(-1)
        return torch.cat([output[..., :1] * scale + loc, output[..., 1:2] * scale.abs(), output[..., 2:]], dim=-1)

    def quantiles(self, outputs: np.ndarray) -> np.ndarray:
        loc, scale = outputs[..., :1].astype(np.float64), outputs[..., 1:2].astype(np.float64)
        return loc + scale * self.standard_quantiles(outputs)

    @abstractmethod
    def standard_quantiles(self, outputs: np.ndarray) -> np.ndarray:
        """Quantiles at `levels` of the distribution with location 0 and scale 1 (..., len(levels))."""


class NormalOutput(DistributionOutput):
    """Normal(location, scale)."""

    name = "normal"

    @property
    def n_params(self) -> int:
        return 2

    def distribution(self, output: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Normal(output[..., 0], output[..., 1])

    def standard_quantiles(self, outputs: np.ndarray) -> np.ndarray:
        from scipy.stats import norm

        return np.broadcast_to(norm.ppf(self.levels), (*outputs.shape[:-1], len(self.levels)))


class StudentTOutput(DistributionOutput):
    """Student's t(degrees of freedom, location, scale): heavier tails than the normal, learned per forecast."""

    name = "student_t"

    @property
    def n_params(self) -> int:
        return 3

    def finish(self, raw: torch.Tensor) -> torch.Tensor:
        located = super().finish(raw)
        return torch.cat([located[..., :2], F.softplus(located[..., 2:]) + MIN_DF], dim=-1)

    def distribution(self, output: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.StudentT(output[..., 2], output[..., 0], output[..., 1])

    def standard_quantiles(self, outputs: np.ndarray) -> np.ndarray:
        from scipy.stats import t

        return t.ppf(np.asarray(self.levels), outputs[..., 2:3].astype(np.float64))


class MembersOutput(PointOutput):
    """While training, k ensemble members' point outputs side by side, (batch, k, ...point shape), each
    trained on its own loss; in eval mode the model outputs their average, a point output (TabM: the
    members share most weights and train together)."""

    name = "members"

    @property
    def predicted(self) -> OutputKind:
        return POINT


POINT = PointOutput()
MEMBERS = MembersOutput()


def declared_kind(model: object) -> OutputKind:
    """What a model's (or estimator's) outputs are: the `output_kind` it declares, else point values (or
    logits): models without a quantile, distribution or ensemble head declare none."""
    return getattr(model, "output_kind", POINT)


DISTRIBUTIONS: dict[str, type[DistributionOutput]] = {kind.name: kind for kind in (NormalOutput, StudentTOutput)}


def pinball(quantile: Array, actual: Array, level: Array) -> Array:
    """The pinball (quantile) loss, elementwise: under-forecasts cost `level`, over-forecasts `1 - level`. On
    tensors (the training loss) or arrays (the metrics) alike."""
    error = actual - quantile
    maximum = torch.maximum if isinstance(error, torch.Tensor) else np.maximum
    return maximum(level * error, (level - 1) * error)


def interval_pairs(levels: tuple[float, ...]) -> list[tuple[int, int, float]]:
    """(lower index, upper index, coverage) of every central interval the levels hold: (0.1, 0.9) -> 0.8."""
    pairs = []
    for i, low in enumerate(levels):
        for j, high in enumerate(levels):
            if low < MEDIAN and abs(low + high - 1.0) < 1e-9:
                pairs.append((i, j, high - low))
    return pairs


def quantile_metric_names(levels: tuple[float, ...], suffix: str = "") -> list[str]:
    """The names `quantile_metrics` gives for these levels."""
    names = [f"pinball{suffix}", f"crps{suffix}"]
    for *_, coverage in interval_pairs(levels):
        if not suffix:
            names.append(f"coverage_{interval_name(coverage)}")
        names.append(f"width_{interval_name(coverage)}{suffix}")
    return names


def interval_name(coverage: float) -> str:
    """A central interval's name in metrics: 0.8 -> `80`."""
    return f"{100 * coverage:.4g}"


def quantile_metrics(quantiles: np.ndarray, actual: np.ndarray, levels: tuple[float, ...],
                     suffix: str = "") -> dict[str, float]:
    """Mean pinball loss over the levels; CRPS estimated over them; coverage and mean width of each central
    interval. `quantiles` is (..., len(levels)), `actual` the matching (...).

    The CRPS is the integral of twice the pinball loss over all levels (Gneiting & Raftery 2007); its
    estimate here is that mean over the levels given, so it is as coarse as they are.
    """
    actual = actual.astype(np.float64)[..., None]
    loss = pinball(quantiles, actual, np.asarray(levels)).mean(axis=tuple(range(quantiles.ndim - 1)))
    out = {f"pinball{suffix}": float(loss.mean()), f"crps{suffix}": float(2 * loss.mean())}
    for low, high, coverage in interval_pairs(levels):
        name = interval_name(coverage)
        lower, upper = quantiles[..., low], quantiles[..., high]
        if not suffix:
            out[f"coverage_{name}"] = float(np.mean((actual[..., 0] >= lower) & (actual[..., 0] <= upper)))
        out[f"width_{name}{suffix}"] = float(np.mean(upper - lower))
    return out
