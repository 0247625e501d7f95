"""Laser pump-pulse temporal shaping, TempoRL (Capuano et al. 2023; MODELS.md section 4).

- :mod:`plants.laser.model`: the spectral chain (stretcher, gain narrowing, self-phase
  modulation, compressor) for a batch of settings, numpy or torch; FWHM and peak intensity.
- :mod:`plants.laser.options`: the plant's options (light).
- :mod:`plants.laser.env`: the plant ``LaserPulse`` (one pulse per step) and its reward.
- :mod:`plants.laser.vector`: ``LaserPulseVector``, N pulses per batched pass
  (``gymnasium.make_vec``).
"""


def register() -> None:
    """Register the laser plant (one line; strings only)."""
    from ctrlbench.capabilities import Provides
    from ctrlbench.registry import register_plant

    register_plant(
        "LaserPulse-v0", "plants.laser.env:LaserPulse",
        "pump-pulse compression: stretcher GDD/TOD/FOD deltas against SPM (TempoRL)",
        options="plants.laser.options:LaserPulseOptions", max_episode_steps=50,
        vector_entry_point="plants.laser.vector:LaserPulseVector",
        provides=Provides(references=False, n_inputs=3, objective=True))
