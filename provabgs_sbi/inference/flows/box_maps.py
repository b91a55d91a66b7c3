"""Maps from the unit box (0, 1) to the real line, one small object per map.

A :class:`~provabgs_sbi.inference.flows.ConditionalFlow` never models theta itself but an
unbounded image of its box coordinate ``u = (theta - low) / (high - low)``:
``y = box_map.forward(u)``. Samples come back through ``box_map.inverse(y)`` and so can
never leave the box; densities pick up ``box_map.log_det(y) = log |dy/du|``, written as a
function of y so that it stays exact where u rounds to 0 or 1.

Which map: a density that stays finite at a face of the box (a uniform prior, a posterior
cut by the prior's edge) becomes, in y, a tail ~ u(1 - u) p: exponential for the logit,
~ exp(-y^2 / 2) for the probit. A MAF of affine blocks on a standard-normal base keeps
Gaussian tails, so it can match the probit image of such a density but not the logit's.
Both bend a narrow posterior inside the box, more the closer it lies to a face.

The shipped posteriors use ``"logit"`` and ``"probit"``. ``"plateau"`` is used by the sbibm
benchmarks only (``benchmarks/``), where it helped on likelihood-dominated posteriors: it is
linear on the central 76% of the box (|y| < 4) with Gaussian shoulders (the CDF of a flat
top with unit-Gaussian flanks), so a Gaussian posterior in the centre stays Gaussian in y
and one cut by a face keeps a Gaussian tail; its price is that a density flat over the
whole box (a prior-dominated parameter) becomes a flat top, whose best Gaussian is 0.081
nats away, against 0 for the probit and 0.0145 for the logit.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, log_expit, logit, ndtr, ndtri

__all__ = ["BOX_EPS", "BOX_MAPS", "BOX_TRANSFORMS", "BoxMap", "LOGIT", "PLATEAU_HALF_WIDTH",
           "PROBIT", "PlateauMap", "box_map"]

#: Box points closer than ``BOX_EPS * (high - low)`` to a face are moved to that distance
#: before the map (so points exactly on the boundary have a finite image).
BOX_EPS = 1e-6

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_2PI = math.sqrt(2 * math.pi)
#: Half-width, in y, of the linear centre of the "plateau" map (its shoulders have unit
#: Gaussian width): the centre covers 1 - 2.51 / (2 c + 2.51) of the box, 76% for c = 4.
PLATEAU_HALF_WIDTH = 4.0


class BoxMap:
    """A map from the unit box to the real line, elementwise, given by three functions.

    Parameters
    ----------
    name : str
        The ``FlowConfig.box_transform`` value that selects it.
    forward : callable
        u in (0, 1) -> y.
    inverse : callable
        y -> u.
    log_det : callable
        y -> log |dy/du| at u = inverse(y).
    """

    def __init__(self, name: str, forward, inverse, log_det):
        self.name = name
        self.forward, self.inverse, self.log_det = forward, inverse, log_det

    def __repr__(self) -> str:
        return f"BoxMap({self.name!r})"


def _logit_log_det(y: np.ndarray) -> np.ndarray:
    """log |dy/du| of the logit at y: -log(sigmoid(y) sigmoid(-y))."""
    return -(log_expit(y) + log_expit(-y))


def _probit_log_det(y: np.ndarray) -> np.ndarray:
    """log |dy/du| of the probit at y: y^2 / 2 + log sqrt(2 pi)."""
    return 0.5 * y**2 + _HALF_LOG_2PI


#: y = logit(u), u = sigmoid(y): exponential tails in y for a density finite at a face.
LOGIT = BoxMap("logit", logit, expit, _logit_log_det)
#: y = Phi^-1(u), u = Phi(y): Gaussian tails in y for a density finite at a face.
PROBIT = BoxMap("probit", ndtri, ndtr, _probit_log_det)


class PlateauMap(BoxMap):
    """The inverse CDF of a flat top of half-width ``c`` with unit-Gaussian shoulders.

    Used by the sbibm benchmarks only (module docstring). The density in y is
    ``1 / norm`` on ``|y| < c`` with ``norm = 2 c + sqrt(2 pi)``; both shoulders together
    hold ``shoulders = sqrt(2 pi) / norm`` of the box.

    Parameters
    ----------
    half_width : float
        ``c``, in y.
    """

    def __init__(self, half_width: float = PLATEAU_HALF_WIDTH):
        super().__init__("plateau", self._forward, self._inverse, self._log_det)
        self.half_width = half_width
        self.norm = 2 * half_width + _SQRT_2PI
        self.shoulders = _SQRT_2PI / self.norm

    def _forward(self, u: np.ndarray) -> np.ndarray:
        """u in (0, 1) -> y: linear in the centre, Gaussian quantiles in the shoulders."""
        c, mass = self.half_width, self.shoulders
        u = np.asarray(u, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            lower = ndtri(u / mass) - c
            upper = c - ndtri((1.0 - u) / mass)
        centre = (u - 0.5) * self.norm
        return np.where(u < 0.5 * mass, lower, np.where(u > 1.0 - 0.5 * mass, upper, centre))

    def _inverse(self, y: np.ndarray) -> np.ndarray:
        """y -> u, the plateau CDF."""
        c, mass = self.half_width, self.shoulders
        y = np.asarray(y, dtype=np.float64)
        centre = 0.5 + y / self.norm
        return np.where(y < -c, mass * ndtr(y + c),
                        np.where(y > c, 1.0 - mass * ndtr(c - y), centre))

    def _log_det(self, y: np.ndarray) -> np.ndarray:
        """log |dy/du| at y: log norm on the centre, plus (|y| - c)^2 / 2 in the shoulders."""
        return 0.5 * np.maximum(np.abs(y) - self.half_width, 0.0) ** 2 + math.log(self.norm)


#: The maps by ``FlowConfig.box_transform`` name.
BOX_MAPS = {m.name: m for m in (LOGIT, PROBIT, PlateauMap())}
#: Names of the maps from the unit box to the unbounded space the flow models.
BOX_TRANSFORMS = tuple(BOX_MAPS)


def box_map(kind: str):
    """The map called ``kind`` (one of :data:`BOX_TRANSFORMS`)."""
    try:
        return BOX_MAPS[kind]
    except KeyError:
        raise ValueError(f"box_transform must be one of {BOX_TRANSFORMS}, got {kind!r}") from None
