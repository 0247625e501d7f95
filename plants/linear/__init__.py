"""Linear benchmark plants: small, fast, with exact models (for tests and first experiments)."""



def register() -> None:
    """Register the linear plants (one line each; strings only)."""
    from ctrlbench.capabilities import Provides
    from ctrlbench.registry import register_plant

    register_plant(
        "MassSpringDamper-v0", "plants.linear.env:MassSpringDamper",
        "mass-spring-damper position control, force input, random step reference",
        options="plants.linear.model:MassSpringDamperOptions", max_episode_steps=1000,
        provides=Provides(model=True, model_name="mass_spring_damper", operating_point=True,
                          references=True, n_inputs=1))
