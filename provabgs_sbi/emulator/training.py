"""Training an emulator from the SED model: spectra -> PCA -> gated MLP.

Pipeline (:func:`train_emulator`):

1. NMF-only training and validation spectra from the direct model (:mod:`.trainset`;
   chunked HDF5 in a work folder, resumable).
2. Standardise ln L per wavelength; fit an IncrementalPCA in chunks (no more than one
   chunk of spectra in memory); keep ``n_pca`` components.
3. Train the MLP (Speculator's gated activation) from standardised inputs to standardised
   PCA coefficients. The loss is the mean squared error of **ln L itself**, computed
   exactly in coefficient space with the metric M = B diag(spectrum_scale^2) B^T, so the
   network is fitted to the quantity the accuracy goals are stated in.
4. A schedule of (learning rate, batch size) phases, each ending after ``patience`` epochs
   without improvement of the validation loss, restarting from the best weights; a
   wall-clock budget ends training gracefully with the best weights.

Every step resumes from the work folder (:mod:`.resume`): an interrupted or budget-limited
run rerun with the same settings (or a larger budget) continues where it stopped.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from provabgs_sbi.emulator.core import Emulator
from provabgs_sbi.emulator.finetune import load_start, start_pixel_weights
from provabgs_sbi.emulator.inputs import ANALYTIC_DUST_MODES, extend_warped_inputs
from provabgs_sbi.emulator.lines import NebularLines
from provabgs_sbi.emulator.network import SpeculatorNetwork
from provabgs_sbi.emulator.resume import (network_checkpoint_path, pca_cache_path,
                                          read_network_checkpoint, read_pca_cache,
                                          write_network_checkpoint, write_pca_cache)
from provabgs_sbi.emulator.trainset import make_training_spectra
from provabgs_sbi.emulator.validate import validate_emulator
from provabgs_sbi.io.hashing import hash_arrays
from provabgs_sbi.io.paths import cache_dir
from provabgs_sbi.model.sed_model import SEDConfig, SEDModel
from provabgs_sbi.model.sps import LINE_SPLITS
from provabgs_sbi.model.survey import get_survey


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that defines a trained emulator (saved in its manifest).

    Attributes
    ----------
    name : str
        Folder name under ``emulator/``.
    sps : str
        SPS configuration of the SSP table.
    wave_min, wave_max, resolution : float
        Emulator wavelength grid: the SED model's table trimmed to [wave_min, wave_max]
        (rest Angstrom) and averaged onto a log grid of resolving power ``resolution``.
        The default [2000, 12000] A covers SDSS ugriz for 0 < z <= 0.46.
    z_range : tuple
        Redshifts of the training galaxies (t_age input).
    n_train, n_val : int
        Training and validation spectra.
    n_validate : int
        Held-out prior draws (bursts included) for the accuracy metrics in the manifest.
    n_pca : int
    input_mode : {"warped", "warped_logbeta1"}
        Network inputs (:data:`~provabgs_sbi.emulator.core.INPUT_NAMES`);
        ``"warped_logbeta1"`` adds log10(beta1 + 1e-5).
    small_beta1_fraction : float
        Fraction of the training and validation spectra drawn with log10 beta1 ~ U(-5, 0)
        (:func:`~provabgs_sbi.emulator.trainset.draw_nmf_parameters`).
    hidden : tuple of int
        Hidden layer widths.
    phases : tuple of (learning rate, batch size)
    patience, max_epochs_per_phase : int
    max_minutes : float
        Wall-clock budget of the MLP training.
    seed : int
    survey : str
        The shipped survey whose bands the final validation reports magnitude errors for
        (:func:`~provabgs_sbi.emulator.validate.validate_emulator`; default SDSS ugriz).
    exact_lines : bool
        For a nebular ``sps`` (one with a ``<sps>_continuum`` / ``<sps>_lines`` split,
        :data:`~provabgs_sbi.model.sps.LINE_SPLITS`): the network emulates the SED without its emission lines
        (trained on ``<sps>_continuum``) and the emulator adds the lines exactly from the
        ``<sps>_lines`` table (:mod:`provabgs_sbi.emulator.lines`). The emulator is then an
        emulator of ``sps`` itself, lines included, validated against it.
    init_from : str or None
        Folder of a trained emulator to continue (:mod:`provabgs_sbi.emulator.finetune`):
        its PCA basis and standardisations are kept (no PCA is fitted) and its network
        weights start the training, through ``phases``. It must share ``sps``, the
        wavelength grid, ``n_pca``, ``hidden``, ``input_mode`` and ``exact_lines``.
    pixel_weight_power, pixel_weight_max : float
        Loss weights per pixel from the starting network's errors
        (:func:`~provabgs_sbi.emulator.finetune.pixel_error_weights`); ``power = 0``
        (default) is the unweighted mean squared ln L. A power > 0 needs ``init_from``.
    pixel_weight_wave : tuple of float or None
        Weight only the pixels of this rest wavelength range (Angstrom), e.g. (2500, 11000)
        where the emulator's per-pixel goal is set; default the whole grid.
    """

    name: str = "bc03"
    sps: str = "bc03"
    wave_min: float = 2000.0
    wave_max: float = 12000.0
    resolution: float = 1000.0
    z_range: tuple = (0.0, 0.3)
    n_train: int = 1_000_000
    n_val: int = 20_000
    n_pca: int = 96
    input_mode: str = "warped"
    small_beta1_fraction: float = 0.0
    hidden: tuple = (256, 256, 256, 256)
    phases: tuple = ((1e-3, 512), (5e-4, 1024), (2e-4, 2048), (1e-4, 4096), (5e-5, 8192),
                     (2e-5, 16384))
    patience: int = 8
    max_epochs_per_phase: int = 60
    max_minutes: float = 60.0
    n_validate: int = 10_000
    seed: int = 0
    survey: str = "sdss_ugriz"
    exact_lines: bool = False
    init_from: str | None = None
    pixel_weight_power: float = 0.0
    pixel_weight_max: float = 30.0
    pixel_weight_wave: tuple | None = None

    def __post_init__(self):
        if not 0 < self.wave_min < self.wave_max:
            raise ValueError("need 0 < wave_min < wave_max")
        if not (0 <= self.z_range[0] < self.z_range[1] <= 3.0):
            raise ValueError(f"z_range must lie in [0, 3], got {self.z_range}")
        if self.n_train < max(self.n_pca, 10) or self.n_val < 10:
            raise ValueError("n_train must exceed n_pca, and n_val must be >= 10")
        if self.input_mode not in ANALYTIC_DUST_MODES:
            raise ValueError(f"input_mode must be one of {ANALYTIC_DUST_MODES}, "
                             f"got {self.input_mode!r}")
        if not 0.0 <= self.small_beta1_fraction <= 1.0:
            raise ValueError("small_beta1_fraction must lie in [0, 1]")
        if self.n_pca < 1 or not self.hidden or min(self.hidden) < 1:
            raise ValueError("n_pca and every hidden width must be >= 1")
        if not self.phases or any(lr <= 0 or bs < 1 for lr, bs in self.phases):
            raise ValueError("phases must be non-empty (learning rate > 0, batch size >= 1)")
        if self.patience < 1 or self.max_epochs_per_phase < 1 or self.max_minutes <= 0:
            raise ValueError("patience, max_epochs_per_phase and max_minutes must be positive")
        get_survey(self.survey)      # a shipped survey name (it is recorded by name)
        if self.exact_lines and self.sps not in LINE_SPLITS:
            raise ValueError(f"exact_lines needs an SPS configuration with its lines apart, one "
                             f"of {tuple(LINE_SPLITS)}; got {self.sps!r}")
        if self.pixel_weight_power < 0 or self.pixel_weight_max < 1:
            raise ValueError("need pixel_weight_power >= 0 and pixel_weight_max >= 1")
        if self.pixel_weight_power > 0 and not self.init_from:
            raise ValueError("pixel weights are measured on a trained network: "
                             "pixel_weight_power > 0 needs init_from")
        if self.pixel_weight_wave is not None and not (
                len(self.pixel_weight_wave) == 2
                and 0 < self.pixel_weight_wave[0] < self.pixel_weight_wave[1]):
            raise ValueError(f"pixel_weight_wave must be (lo, hi) with 0 < lo < hi Angstrom, "
                             f"got {self.pixel_weight_wave}")

    @property
    def network_sps(self) -> str:
        """The SPS configuration the network is trained on (without lines when exact)."""
        return LINE_SPLITS[self.sps][0] if self.exact_lines else self.sps

    def sed_config(self):
        return SEDConfig(wave_min=self.wave_min, wave_max=self.wave_max,
                         resolution=self.resolution)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["z_range"] = list(self.z_range)
        d["hidden"] = list(self.hidden)
        d["phases"] = [list(p) for p in self.phases]
        if self.pixel_weight_wave is not None:
            d["pixel_weight_wave"] = [float(v) for v in self.pixel_weight_wave]
        # absent at their defaults, so older checkpoints still resume
        defaults = {"exact_lines": False, "init_from": None, "pixel_weight_power": 0.0,
                    "pixel_weight_max": 30.0, "pixel_weight_wave": None}
        for k, v in defaults.items():
            if d[k] == v:
                del d[k]
        return d


@dataclass
class PCAStats:
    spectrum_shift: np.ndarray
    spectrum_scale: np.ndarray
    basis: np.ndarray          # (n_pca, n_wave)
    train_coef: np.ndarray     # (n_train, n_pca) raw coefficients
    val_coef: np.ndarray
    train_x: np.ndarray
    val_x: np.ndarray
    residual_rms: float        # ln L RMS of the PCA truncation on validation spectra
    extras: dict = field(default_factory=dict)


def _standardisation(path, chunk=20000):
    with h5py.File(path, "r") as fh:
        d = fh["ln_lum"]
        n = d.shape[0]
        s1 = np.zeros(d.shape[1])
        s2 = np.zeros(d.shape[1])
        for s in range(0, n, chunk):
            block = d[s:s + chunk].astype(np.float64)
            s1 += block.sum(0)
            s2 += (block**2).sum(0)
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 1e-12))
    return mean, std


def pca_basis(train_path, val_path, n_pca: int, chunk: int = 20000, progress=True):
    """Chunked PCA of the standardised ln spectra: ``(shift, scale, basis)``.

    Equivalent to a full PCA but fitted in chunks: the (n_wave x n_wave) scatter matrix is
    accumulated over chunks (never more than ``chunk`` spectra in memory) and
    eigen-decomposed once; the leading ``n_pca`` eigenvectors are the basis (n_pca, n_wave).
    ``shift`` includes the PCA mean, so ln L = (c @ basis) * scale + shift.
    """
    shift, scale = _standardisation(train_path, chunk)
    with h5py.File(train_path, "r") as fh:
        d = fh["ln_lum"]
        n, n_wave = d.shape
        scatter = np.zeros((n_wave, n_wave))
        total = np.zeros(n_wave)
        starts = range(0, n, chunk)
        if progress:
            from provabgs_sbi.progress import progress_bar
            starts = progress_bar(starts, desc="PCA scatter matrix", unit="chunk")
        for s in starts:
            block = (d[s:s + chunk] - shift) / scale
            scatter += block.T @ block
            total += block.sum(0)
    mean = total / n
    cov = scatter / n - np.outer(mean, mean)
    evals, evecs = np.linalg.eigh(cov)
    basis = evecs[:, ::-1][:, :n_pca].T.copy()                 # (n_pca, n_wave)
    # Fold the PCA mean into the spectrum shift: lnL = (c @ B) * scale + shift'.
    shift_total = shift + mean * scale
    return shift_total, scale, basis


def pca_coefficients(path, shift, scale, basis, chunk: int = 20000):
    """Network inputs (n, 7), PCA coefficients (n, n_pca) and the truncation's rms ln L
    of the spectra in ``path``."""
    with h5py.File(path, "r") as fh:
        d = fh["ln_lum"]
        x = fh["inputs"][:]
        out = np.empty((d.shape[0], basis.shape[0]))
        res = 0.0
        for s in range(0, d.shape[0], chunk):
            block = (d[s:s + chunk] - shift) / scale
            c = block @ basis.T
            out[s:s + chunk] = c
            res += (((c @ basis - block) * scale) ** 2).sum()
        return x, out, float(np.sqrt(res / (d.shape[0] * d.shape[1])))


def fit_pca(train_path, val_path, n_pca: int, chunk: int = 20000, progress=True,
            cache_dir=None) -> PCAStats:
    """The PCA basis (:func:`pca_basis`), then the coefficients of every row.

    Parameters
    ----------
    cache_dir : path-like, optional
        Keep the basis there (:func:`~provabgs_sbi.emulator.resume.pca_cache_path`, keyed by
        the two files' settings and ``n_pca``) and reuse it on a rerun: the scatter matrix
        is the PCA's long step.
    """
    cached, cache = None, None
    if cache_dir is not None:
        settings = []
        for path in (train_path, val_path):
            with h5py.File(path, "r") as fh:
                settings.append(str(fh.attrs.get("settings", "")))
        cache = pca_cache_path(Path(cache_dir), *settings, n_pca, chunk)
        cached = read_pca_cache(cache)
    if cached is None:
        cached = pca_basis(train_path, val_path, n_pca, chunk, progress)
        if cache is not None:
            write_pca_cache(cache, *cached)
    return pca_stats(train_path, val_path, *cached, chunk=chunk)


def pca_stats(train_path, val_path, shift, scale, basis, chunk: int = 20000) -> PCAStats:
    """The coefficients of every training and validation row on a given basis."""
    tx, tc, _ = pca_coefficients(train_path, shift, scale, basis, chunk)
    vx, vc, residual = pca_coefficients(val_path, shift, scale, basis, chunk)
    return PCAStats(shift, scale, basis, tc, vc, tx, vx, residual)


class _MLP:
    """Gated MLP in TensorFlow, trained with Adam on the ln L metric."""

    def __init__(self, n_in, hidden, n_out, seed):
        import tensorflow as tf

        self.tf = tf
        rng = np.random.default_rng(seed)
        sizes = [n_in, *hidden, n_out]
        self.W = [tf.Variable(rng.normal(0, np.sqrt(2.0 / a), (a, b)).astype(np.float32))
                  for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [tf.Variable(np.zeros(b, np.float32)) for b in sizes[1:]]
        self.alpha = [tf.Variable(rng.normal(0, 1, h).astype(np.float32)) for h in hidden]
        self.beta = [tf.Variable(rng.normal(0, 1, h).astype(np.float32)) for h in hidden]
        self.variables = [*self.W, *self.b, *self.alpha, *self.beta]

    def __call__(self, x):
        tf = self.tf
        h = x
        for W, b, a, be in zip(self.W[:-1], self.b[:-1], self.alpha, self.beta):
            act = tf.matmul(h, W) + b
            h = (be + (1.0 - be) * tf.math.sigmoid(a * act)) * act
        return tf.matmul(h, self.W[-1]) + self.b[-1]

    def get(self):
        return [v.numpy().copy() for v in self.variables]

    def set(self, values):
        for v, val in zip(self.variables, values):
            v.assign(val)


def train_mlp(config: EmulatorConfig, pca: PCAStats, progress=True, log=print,
              checkpoint_dir=None, start: SpeculatorNetwork | None = None,
              pixel_weights=None):
    """Train the gated MLP; returns (network arrays, history dict).

    Parameters
    ----------
    start : SpeculatorNetwork, optional
        Start from this network's weights and keep its input and coefficient
        standardisations (``pca`` must then be its basis); default a fresh network.
    pixel_weights : array (n_wave,), optional
        Loss weight of every pixel, mean 1 (:mod:`provabgs_sbi.emulator.finetune`);
        default uniform. The validation rms then reported is the weighted one; the
        history's ``best_val_rms_lnl_unweighted`` gives the plain one.
    checkpoint_dir : path-like, optional
        Write a checkpoint there after every epoch
        (:func:`~provabgs_sbi.emulator.resume.network_checkpoint_path`) and resume from it:
        an interrupted run continues after its last finished epoch with the weights,
        optimiser and shuffling state it had, and a run that spent its ``max_minutes``
        continues when given a larger budget.
    """
    import tensorflow as tf
    import tf_keras

    n_wave = pca.basis.shape[1]
    if start is None:
        x_shift, x_scale = pca.train_x.mean(0), pca.train_x.std(0)
        c_shift, c_scale = pca.train_coef.mean(0), pca.train_coef.std(0)
    else:
        x_shift, x_scale = start.param_shift, start.param_scale
        c_shift, c_scale = start.pca_shift, start.pca_scale
    xt = ((pca.train_x - x_shift) / x_scale).astype(np.float32)
    yt = ((pca.train_coef - c_shift) / c_scale).astype(np.float32)
    xv = tf.constant(((pca.val_x - x_shift) / x_scale).astype(np.float32))
    yv = tf.constant(((pca.val_coef - c_shift) / c_scale).astype(np.float32))
    # Metric in standardised-coefficient units: d lnL = (dc * c_scale) @ B * s; the
    # weighted mean over pixels of (d lnL)^2 is dc @ metric @ dc.
    def lnl_metric(w):
        m = c_scale[:, None] * (pca.basis * (w * pca.spectrum_scale**2)) @ pca.basis.T \
            * c_scale[None, :]
        return tf.constant((m / n_wave).astype(np.float32))

    plain = lnl_metric(np.ones(n_wave))
    if pixel_weights is None:
        metric = plain
    else:
        pixel_weights = np.asarray(pixel_weights, dtype=np.float64)
        if pixel_weights.shape != (n_wave,) or not np.allclose(pixel_weights.mean(), 1.0):
            raise ValueError(f"pixel_weights must have shape ({n_wave},) and mean 1")
        metric = lnl_metric(pixel_weights)

    net = _MLP(xt.shape[1], config.hidden, yt.shape[1], config.seed)
    if start is not None:
        if start.n_param != xt.shape[1] or start.pca_basis.shape != pca.basis.shape:
            raise ValueError("the starting network does not match the inputs or the PCA basis")
        net.set([np.asarray(a, np.float32) for a in (*start.W, *start.b, *start.alpha,
                                                      *start.beta)])
    opt = tf_keras.optimizers.Adam(learning_rate=config.phases[0][0])
    opt.build(net.variables)

    def mse_lnl(pred, true, metric=metric):
        d = pred - true
        return tf.reduce_mean(tf.reduce_sum(tf.matmul(d, metric) * d, axis=1))

    @tf.function(jit_compile=True, reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = mse_lnl(net(x), y)
        grads = tape.gradient(loss, net.variables)
        opt.apply_gradients(zip(grads, net.variables))
        return loss

    @tf.function(jit_compile=True)
    def val_loss():
        return mse_lnl(net(xv), yv)

    rng = np.random.default_rng(config.seed)
    best_w = net.get()
    state = {"phase": 0, "epoch": 0, "stale": 0, "best": float(val_loss()), "minutes": 0.0,
             "out_of_time": False, "finished": False,
             "history": {"epoch_val_rms_lnl": [], "phase": [], "train_rms_lnl": []}}
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = network_checkpoint_path(Path(checkpoint_dir), config.to_dict(),
                                       hash_arrays(pca.train_x, pca.train_coef, pca.val_x,
                                                   pca.val_coef))
        saved = read_network_checkpoint(ckpt, len(net.variables), len(opt.variables))
        if saved is not None:
            state, weights, best_w, opt_values = saved
            net.set(weights)
            for v, value in zip(opt.variables, opt_values):
                v.assign(value)
            rng.bit_generator.state = state.pop("rng")
            # the budget is judged afresh: a larger one continues the run
            state["out_of_time"] = state["minutes"] > config.max_minutes
            log(f"resuming the network from {ckpt} (phase {state['phase']}, epoch "
                f"{state['epoch']}, {state['minutes']:.1f} min spent)")

    def save():
        if ckpt is not None:
            write_network_checkpoint(ckpt, {**state, "rng": rng.bit_generator.state},
                                     net.get(), best_w, [v.numpy() for v in opt.variables])

    history = state["history"]
    t0 = time.perf_counter() - 60 * state["minutes"]
    n = len(xt)
    while not state["finished"]:
        pi = state["phase"]
        lr, bs = config.phases[pi]
        opt.learning_rate.assign(lr)
        if state["epoch"] == 0:          # a phase starts from the best weights so far
            net.set(best_w)
            state["stale"] = 0
        while state["epoch"] < config.max_epochs_per_phase and not state["out_of_time"]:
            perm = rng.permutation(n)
            tot = 0.0
            nb = 0
            for s in range(0, n - bs + 1, bs):
                idx = perm[s:s + bs]
                tot += float(step(xt[idx], yt[idx]))
                nb += 1
            v = float(val_loss())
            history["epoch_val_rms_lnl"].append(float(np.sqrt(v)))
            history["train_rms_lnl"].append(float(np.sqrt(tot / max(nb, 1))))
            history["phase"].append(pi)
            if progress:
                log(f"phase {pi} (lr {lr:g}, batch {bs}) epoch {state['epoch']}: train rms "
                    f"lnL {np.sqrt(tot / max(nb, 1)):.5f}, val {np.sqrt(v):.5f} "
                    f"(best {np.sqrt(state['best']):.5f}) "
                    f"[{(time.perf_counter() - t0) / 60:.1f} min]")
            if v < state["best"]:
                state["best"], best_w, state["stale"] = v, net.get(), 0
            else:
                state["stale"] += 1
            state["epoch"] += 1
            state["minutes"] = (time.perf_counter() - t0) / 60
            if state["minutes"] > config.max_minutes:
                state["out_of_time"] = True
            elif state["stale"] >= config.patience:
                state["epoch"] = config.max_epochs_per_phase
            save()
        if state["out_of_time"]:
            log(f"stopping: the {config.max_minutes} min budget is spent; keeping the best weights")
            break
        state["phase"], state["epoch"] = pi + 1, 0
        state["finished"] = state["phase"] >= len(config.phases)
        save()
    best = state["best"]
    out_of_time = state["out_of_time"]
    net.set(best_w)
    n_layers = len(net.W)
    vals = best_w
    W = vals[:n_layers]
    b = vals[n_layers:2 * n_layers]
    alpha = vals[2 * n_layers:2 * n_layers + len(config.hidden)]
    beta = vals[2 * n_layers + len(config.hidden):]
    network = SpeculatorNetwork(
        W=tuple(np.asarray(w, np.float64) for w in W), b=tuple(np.asarray(x, np.float64) for x in b),
        alpha=tuple(np.asarray(a, np.float64) for a in alpha),
        beta=tuple(np.asarray(x, np.float64) for x in beta),
        param_shift=x_shift, param_scale=x_scale, pca_shift=c_shift, pca_scale=c_scale,
        pca_basis=pca.basis, spectrum_shift=pca.spectrum_shift, spectrum_scale=pca.spectrum_scale,
        wave=np.zeros(n_wave))
    history.update(best_val_rms_lnl=float(np.sqrt(best)), minutes=(time.perf_counter() - t0) / 60,
                   out_of_time=out_of_time, pca_residual_rms_lnl=pca.residual_rms)
    if pixel_weights is not None:
        history["best_val_rms_lnl_unweighted"] = float(np.sqrt(mse_lnl(net(xv), yv, plain)))
    return network, history


def train_emulator(config: EmulatorConfig, out_dir, work_dir=None, progress=True, log=print):
    """Run the whole pipeline and write ``out_dir`` (weights, emulator.json, manifest).

    Parameters
    ----------
    work_dir : path-like, optional
        Where the training spectra, the PCA basis and the network's checkpoint go (default
        ``<cache>/emulator_work/<name>``). Rerunning with the same settings resumes: the
        spectra by chunk, the PCA from its cached basis, the network after its last
        finished epoch (:mod:`provabgs_sbi.emulator.resume`); a larger ``max_minutes``
        continues a network whose budget ran out.
    """
    work = Path(work_dir) if work_dir else cache_dir() / "emulator_work" / config.name
    work.mkdir(parents=True, exist_ok=True)
    model = SEDModel(config.sps, config=config.sed_config())
    # The network's training spectra: the SED without its lines when they are added exactly.
    target = (SEDModel(config.network_sps, config=config.sed_config()) if config.exact_lines
              else model)
    log(f"[1/4] training spectra ({config.n_train:,} + {config.n_val:,}) in {work}")
    frac = config.small_beta1_fraction
    tag = f"_lb{frac:g}" if frac > 0 else ""
    tr = make_training_spectra(work / f"train_{config.n_train}_s{config.seed}{tag}.h5",
                               config.n_train, target, config.seed, config.z_range, progress,
                               small_beta1_fraction=frac)
    va = make_training_spectra(work / f"val_{config.n_val}_s{config.seed + 1}{tag}.h5",
                               config.n_val, target, config.seed + 1_000_003, config.z_range,
                               progress, small_beta1_fraction=frac)
    start, weights, start_sha = None, None, None
    if config.init_from:
        start, start_sha = load_start(config)
        log(f"[2/4] the PCA basis of {config.init_from} ({config.n_pca} components)")
        pca = pca_stats(tr, va, start.spectrum_shift, start.spectrum_scale, start.pca_basis)
    else:
        log(f"[2/4] incremental PCA, {config.n_pca} components")
        pca = fit_pca(tr, va, config.n_pca, progress=progress, cache_dir=work)
    pca = dataclasses.replace(pca, train_x=extend_warped_inputs(pca.train_x, config.input_mode),
                              val_x=extend_warped_inputs(pca.val_x, config.input_mode))
    log(f"      PCA truncation residual on validation spectra: rms ln L {pca.residual_rms:.2e}")
    if config.pixel_weight_power > 0:
        weights, summary = start_pixel_weights(config, start, va, model.wave)
        log(f"      {summary}")
    log("[3/4] MLP training")
    net, history = train_mlp(config, pca, progress=progress, log=log, checkpoint_dir=work,
                             start=start, pixel_weights=weights)
    net = dataclasses.replace(net, wave=model.wave.copy())
    meta = {"sps": config.sps, "z_range": list(config.z_range),
            "sed_config": dataclasses.asdict(config.sed_config()), "config": config.to_dict(),
            "training_history": history}
    lines = None
    if config.exact_lines:
        lines = NebularLines.from_model(SEDModel(LINE_SPLITS[config.sps][1],
                                                 config=config.sed_config()))
        meta["network_sps"] = config.network_sps
    emu = Emulator([net], input_mode=config.input_mode, burst_model=model, info=meta,
                   lines=lines)
    log("[4/4] validation on held-out prior draws")
    metrics = validate_emulator(emu, model, n=config.n_validate, seed=config.seed + 7,
                                survey=config.survey)
    inputs = {"ssp_table_hash": model.ssp_hash, "n_train": config.n_train,
              "training_spectra_seed": config.seed}
    if config.exact_lines:
        inputs.update(network_ssp_table_hash=target.ssp_hash,
                      lines_ssp_table_hash=lines.ssp_hash)
    if start_sha is not None:
        inputs["init_from_manifest_sha256"] = start_sha
    recipe = _recipe(config)
    emu.save(out_dir, metrics=metrics, inputs=inputs, recipe=recipe)
    return emu, metrics


def _recipe(config: EmulatorConfig) -> str:
    args = (f"--sps {config.sps} --n-train {config.n_train} --n-pca {config.n_pca} "
            f"--hidden {','.join(map(str, config.hidden))} --max-minutes {config.max_minutes:g} "
            f"--seed {config.seed}")
    if config.input_mode != "warped":
        args += f" --input-mode {config.input_mode}"
    if config.small_beta1_fraction > 0:
        args += f" --small-beta1-fraction {config.small_beta1_fraction:g}"
    if (config.wave_min, config.wave_max) != (2000.0, 12000.0):
        args += f" --wave-min {config.wave_min:g} --wave-max {config.wave_max:g}"
    if config.survey != "sdss_ugriz":
        args += f" --survey {config.survey}"
    if config.exact_lines:
        args += " --exact-lines"
    if config.init_from:
        args += f" --init-from {config.init_from}"
    if tuple(map(tuple, config.phases)) != EmulatorConfig.__dataclass_fields__["phases"].default:
        args += " --phases " + ",".join(f"{lr:g}:{bs}" for lr, bs in config.phases)
    if config.pixel_weight_power > 0:
        args += (f" --pixel-weight-power {config.pixel_weight_power:g}"
                 f" --pixel-weight-max {config.pixel_weight_max:g}")
        if config.pixel_weight_wave is not None:
            args += " --pixel-weight-wave {:g},{:g}".format(*config.pixel_weight_wave)
    if config.name != config.sps:
        args += f" --name {config.name}"
    return (f"# Recipe for emulator/{config.name}\n\nRebuilt with\n\n"
            f"```\nprovabgs-sbi emulator train {args}\n```\n\n"
            "Settings not on the command line are the defaults of `EmulatorConfig` "
            "(all of them are in manifest.json under `config`). The training spectra, PCA basis "
            "and network checkpoint are kept in the work folder (`--work-dir`): a rerun "
            "resumes, and a larger `--max-minutes` continues a network whose budget ran "
            "out.\n" + (f"\nThe network starts from `{config.init_from}`'s, on its PCA basis: "
                        f"its `RECIPE.md` rebuilds it first; the manifest records its "
                        f"manifest's SHA-256 (`init_from_manifest_sha256`).\n"
                        if config.init_from else ""))
