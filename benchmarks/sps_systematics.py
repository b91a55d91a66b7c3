"""SPS systematics: colours of NMF-only galaxies from PROVABGS's pretrained FSPS emulator
(MIST + MILES, Chabrier) next to the bc03 SED model (BC03 + MILES, Kroupa), at z = 0.05.

Usage: python benchmarks/sps_systematics.py > docs/sps_systematics.md
"""
import glob

import numpy as np

from provabgs_sbi import SEDModel
from provabgs_sbi.emulator import Emulator
from provabgs_sbi.io.paths import DATA_ENV, data_dir
from provabgs_sbi.model.photometry import nanomaggies_to_mag

GALAXIES = [
    ("young (beta 0.97, 0.01, 0.01, 0.01), no dust", (0.97, 0.01, 0.01, 0.01), 0.0, 0.0, 0.0),
    ("flat SFH weights, no dust", (0.25, 0.25, 0.25, 0.25), 0.0, 0.0, 0.0),
    ("old (beta 0.01, 0.01, 0.01, 0.97), no dust", (0.01, 0.01, 0.01, 0.97), 0.0, 0.0, 0.0),
    ("model-spec 3 reference (0.1, 0.2, 0.3, 0.4), dusty", (0.1, 0.2, 0.3, 0.4), 0.5, 0.3, -0.5),
    ("old, dusty (tau_ISM 1, n_dust 0)", (0.01, 0.01, 0.01, 0.97), 0.0, 1.0, 0.0),
]


def main():
    files = sorted(glob.glob(str(data_dir() / "nmf.v0.1.seed0_99.w*.npz")))
    if not files:
        raise SystemExit(f"PROVABGS's pretrained FSPS emulator (nmf.v0.1.seed0_99.w*.npz) is not in "
                         f"{data_dir()}: set {DATA_ENV} to the folder that holds it")
    fsps = Emulator.from_speculator_npz(files)
    bc03 = SEDModel("bc03")
    z = 0.05
    print(f"# SPS systematics: NMF-only galaxies at z = {z}, gamma1 = gamma2 = 3e-3, log M* = 10\n")
    print("Colours (AB) from PROVABGS's FSPS emulator and from our bc03 SED model; "
          "`python benchmarks/sps_systematics.py` rebuilds this table.\n")
    print("| galaxy | SPS | u-g | g-r | r-i | i-z | r |")
    print("|---|---|---|---|---|---|---|")
    for name, beta, tbc, tism, nd in GALAXIES:
        theta = np.array([10.0, *beta, 0.0, 1.0, 3e-3, 3e-3, tbc, tism, nd])
        rows = {}
        for label, m in (("FSPS (PROVABGS emulator)", fsps), ("BC03 (this package)", bc03)):
            mag = nanomaggies_to_mag(m.photometry(theta, z))[0]
            rows[label] = mag
            print(f"| {name} | {label} | " + " | ".join(f"{mag[i] - mag[i + 1]:.3f}" for i in range(4))
                  + f" | {mag[2]:.2f} |")
        d = rows["BC03 (this package)"] - rows["FSPS (PROVABGS emulator)"]
        print("| | difference | " + " | ".join(f"{d[i] - d[i + 1]:+.3f}" for i in range(4))
              + f" | {d[2]:+.2f} |")


if __name__ == "__main__":
    main()
