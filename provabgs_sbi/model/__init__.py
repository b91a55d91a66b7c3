"""The physics: parameters and their warps, priors, cosmology, star-formation and
metallicity histories, dust, photometry and the SED model, with the SSP tables in
:mod:`provabgs_sbi.model.sps`. Pure array code; the only files read are SSP tables and the
NMF bases.
"""
