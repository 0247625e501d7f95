"""NMES knee extension with fatigue and patient variability (MODELS.md section 5).

- :mod:`plants.nmes.model`: patient parameters, the shank dynamics over ``ops``, the passive
  equilibrium and the ``PlantModel`` (numpy/casadi).
- :mod:`plants.nmes.options`: the plant's options (light).
- :mod:`plants.nmes.references`: step and sine knee-angle references.
- :mod:`plants.nmes.env`: the plant ``NMESKnee``.
"""


def register() -> None:
    """Register the NMES knee plant and its PID design (one line each; strings only)."""
    from ctrlbench.capabilities import Provides
    from ctrlbench.registry import PID_DESIGNS, register_plant

    register_plant(
        "NMESKnee-v0", "plants.nmes.env:NMESKnee",
        "knee-angle tracking by quadriceps stimulation (pulse width), fatigue, virtual patients",
        options="plants.nmes.options:NMESKneeOptions", max_episode_steps=800,
        provides=Provides(model=True, model_name="nmes_knee", operating_point=True,
                          references=True, n_inputs=1))
    PID_DESIGNS.register(
        "nmes_knee", "controllers.nmes_pid:design_nmes_pid",
        options="controllers.nmes_pid:NMESPIDOptions",
        description="IMC PI on the activation lag (gain margin at the shank resonance) + "
                    "fitness-scaled static stimulation feed-forward")
