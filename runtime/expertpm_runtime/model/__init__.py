"""All torch code of the runtime: the decoder, weight loading, the adapter slot pool, sampling.

`spec.py` alone is torch-free (it only reads `config.json`).
"""
