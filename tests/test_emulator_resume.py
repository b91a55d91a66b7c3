"""Emulator training resumes: the network after its last finished epoch, the PCA from its
cached basis (provabgs_sbi.emulator.resume)."""
import h5py
import numpy as np
import pytest

from provabgs_sbi.emulator.training import EmulatorConfig, PCAStats, fit_pca, train_mlp


class Interrupt(Exception):
    pass


def _pca_stats(seed=0, n=600, n_val=100, n_in=7, n_pca=5, n_wave=40):
    """A small synthetic training problem: smooth coefficients of random inputs."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n + n_val, n_in))
    w = rng.normal(size=(n_in, n_pca))
    c = np.tanh(x @ w) + 0.1 * (x @ w) ** 2
    basis = np.linalg.qr(rng.normal(size=(n_wave, n_pca)))[0].T
    return PCAStats(spectrum_shift=np.zeros(n_wave), spectrum_scale=np.full(n_wave, 0.5),
                    basis=basis, train_coef=c[:n], val_coef=c[n:], train_x=x[:n],
                    val_x=x[n:], residual_rms=0.0)


def _config(**kw):
    settings = dict(hidden=(16,), phases=((3e-3, 64), (1e-3, 128)), patience=3,
                    max_epochs_per_phase=6, max_minutes=5.0, seed=2)
    settings.update(kw)
    return EmulatorConfig(**settings)


def _weights(net):
    return [*net.W, *net.b, *net.alpha, *net.beta]


def _interrupting_log(after_epochs, messages=None):
    """A ``log`` that keeps the messages and raises after ``after_epochs`` epoch lines
    (before that epoch's checkpoint is written)."""
    messages = [] if messages is None else messages

    def log(msg):
        messages.append(msg)
        if msg.startswith("phase ") and sum(m.startswith("phase ") for m in messages) == after_epochs:
            raise Interrupt
    return log


def test_interrupted_network_resumes_to_the_uninterrupted_weights(tmp_path):
    pca, cfg = _pca_stats(), _config()
    full, hist_full = train_mlp(cfg, pca, log=lambda *a: None, checkpoint_dir=tmp_path / "a")
    # interrupted in phase 0 (epoch 4) and, after resuming, again in phase 1
    with pytest.raises(Interrupt):
        train_mlp(cfg, pca, log=_interrupting_log(4), checkpoint_dir=tmp_path / "b")
    msgs = []
    with pytest.raises(Interrupt):
        train_mlp(cfg, pca, log=_interrupting_log(4, msgs), checkpoint_dir=tmp_path / "b")
    # the 4th epoch's line was logged, its checkpoint not written: resumed after 3 epochs
    assert msgs[0].startswith("resuming the network") and "phase 0, epoch 3" in msgs[0]
    resumed, hist = train_mlp(cfg, pca, log=lambda *a: None, checkpoint_dir=tmp_path / "b")
    assert hist["epoch_val_rms_lnl"] == hist_full["epoch_val_rms_lnl"]
    assert hist["phase"] == hist_full["phase"] and 1 in hist["phase"]
    for a, b in zip(_weights(full), _weights(resumed)):
        np.testing.assert_array_equal(a, b)
    # a finished run's checkpoint gives its network again without training
    msgs = []
    again, _ = train_mlp(cfg, pca, log=msgs.append, checkpoint_dir=tmp_path / "b")
    assert not any(m.startswith("phase ") for m in msgs)
    for a, b in zip(_weights(full), _weights(again)):
        np.testing.assert_array_equal(a, b)


def test_other_settings_do_not_resume_but_a_larger_budget_does(tmp_path):
    pca = _pca_stats()
    with pytest.raises(Interrupt):
        train_mlp(_config(), pca, log=_interrupting_log(2), checkpoint_dir=tmp_path)
    msgs = []
    train_mlp(_config(seed=5), pca, log=msgs.append, checkpoint_dir=tmp_path)
    assert not any(m.startswith("resuming") for m in msgs)        # another key, a fresh run
    msgs = []
    train_mlp(_config(max_minutes=9.0), pca, log=msgs.append, checkpoint_dir=tmp_path)
    assert any(m.startswith("resuming the network") for m in msgs)
    assert len(list(tmp_path.glob("network_*.npz"))) == 2


def test_spent_budget_continues_with_a_larger_one(tmp_path):
    pca = _pca_stats()
    _, hist = train_mlp(_config(max_minutes=1e-9), pca, log=lambda *a: None,
                        checkpoint_dir=tmp_path)
    assert hist["out_of_time"] and len(hist["epoch_val_rms_lnl"]) == 1
    _, hist2 = train_mlp(_config(max_minutes=5.0), pca, log=lambda *a: None,
                         checkpoint_dir=tmp_path)
    assert not hist2["out_of_time"]
    assert hist2["epoch_val_rms_lnl"][0] == hist["epoch_val_rms_lnl"][0]
    assert len(hist2["epoch_val_rms_lnl"]) > 1


def _spectra_file(path, seed, n=300, n_wave=30):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 7))
    ln_lum = (np.sin(x @ rng.normal(size=(7, n_wave))) + 0.01 * rng.normal(size=(n, n_wave)))
    with h5py.File(path, "w") as fh:
        fh["inputs"] = x
        fh["ln_lum"] = ln_lum.astype(np.float32)
        fh.attrs["settings"] = f'{{"seed": {seed}}}'
    return path


def test_pca_basis_is_cached_and_reused(tmp_path):
    tr = _spectra_file(tmp_path / "train.h5", 1)
    va = _spectra_file(tmp_path / "val.h5", 2, n=50)
    first = fit_pca(tr, va, 6, chunk=64, progress=False, cache_dir=tmp_path / "work")
    plain = fit_pca(tr, va, 6, chunk=64, progress=False)
    cached = list((tmp_path / "work").glob("pca_*.npz"))
    assert len(cached) == 1
    np.testing.assert_allclose(first.basis, plain.basis)
    np.testing.assert_allclose(first.train_coef, plain.train_coef)
    assert first.residual_rms == pytest.approx(plain.residual_rms)
    # the cached basis is what a rerun uses (tampered here to prove it is read)
    with np.load(cached[0]) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["basis"] = -arrays["basis"]
    np.savez(cached[0], **arrays)
    again = fit_pca(tr, va, 6, chunk=64, progress=False, cache_dir=tmp_path / "work")
    np.testing.assert_allclose(again.basis, -first.basis)
    # other files or another n_pca: another cache entry
    fit_pca(tr, va, 4, chunk=64, progress=False, cache_dir=tmp_path / "work")
    assert len(list((tmp_path / "work").glob("pca_*.npz"))) == 2
