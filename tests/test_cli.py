"""The command line."""
import json

import numpy as np

from provabgs_sbi.cli.main import main


def test_sed_prints_photometry_and_plots(tmp_path, capsys):
    png = tmp_path / "sed.png"
    rc = main(["sed", "--theta", "10 0.1 0.2 0.3 0.4 0 1 3e-3 3e-3 0.5 0.3 -0.5", "--z", "0.05",
               "--json", "--plot", str(png)])
    assert rc == 0
    out = capsys.readouterr().out
    data = json.loads(out[: out.rindex("}") + 1])
    mags = np.array(list(data["ab_mag"].values()))
    flux = np.array(list(data["nanomaggies"].values()))
    np.testing.assert_allclose(mags, 22.5 - 2.5 * np.log10(flux))
    assert 17 < mags[2] < 19
    assert png.stat().st_size > 10_000


def test_sed_bad_input_is_a_clear_error(capsys):
    rc = main(["sed", "--theta", "10 0.5 0.2 0.3 0.4 0 1 3e-3 3e-3 0.5 0.3 -0.5", "--z", "0.05"])
    assert rc == 2
    assert "betas sum" in capsys.readouterr().err


def test_sps_build_reports_table(capsys):
    assert main(["sps", "build"]) == 0
    out = capsys.readouterr().out
    assert "220 ages" in out and "content hash" in out
