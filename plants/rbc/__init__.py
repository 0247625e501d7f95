"""Rayleigh–Bénard convection, invariant multi-agent control (Vignon et al. 2023; MODELS.md 1).

- :mod:`plants.rbc.model`: parameters, the bottom-wall actuation, probes, probe Nusselt number,
  roll count (numpy only).
- :mod:`plants.rbc.solver`: the batched Fourier–Chebyshev solver in torch (CPU or GPU).
"""
