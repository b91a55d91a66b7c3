"""Files and places: where inputs and artifacts live, hashed downloads, catalog readers,
artifact manifests, atomic writes and the resumable HDF5 store.
"""
