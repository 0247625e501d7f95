"""Controller families of ctrlbench: one registration line per entry, in :func:`register`.

Entries are ``"module:attr"`` strings (nothing is imported until a controller is built); each
declares its options dataclass and what it needs from a plant
(:class:`~ctrlbench.capabilities.Requires`). ``controllers/README.md`` walks through one.
"""



def register() -> None:
    """Register every controller and PID design (string entry points only)."""
    from ctrlbench.capabilities import Requires
    from ctrlbench.registry import ALGORITHMS, CONTROLLERS, PID_DESIGNS
    from plants.linear.model import MSD_MODEL_NAME
    from plants.motor.model import DC_MODEL_NAME, PMSM_MODEL_NAME

    CONTROLLERS.register(
        "pid", "controllers.pid_design:make_pid", options="controllers.pid_design:pid_options",
        requires="controllers.pid_design:pid_requires",
        description="PI/PID designed from the plant model (a registered design per model)")
    CONTROLLERS.register(
        "lqr", "controllers.lqr:make_lqr", options="controllers.lqr:LQROptions",
        requires=Requires(model=True, operating_point=True, references=True),
        description="Discrete LQR with integral action, linearized at the model operating point")
    CONTROLLERS.register(
        "mpc", "controllers.mpc:make_mpc", options="controllers.mpc:MPCOptions",
        requires=Requires(model=True, references=True, box_action=True),
        description="Nonlinear MPC: multiple shooting on the plant model, IPOPT, warm start")
    CONTROLLERS.register(
        "rbc-pd", "controllers.rbc_pd:make_rbc_pd", options="controllers.rbc_pd:RBCPDOptions",
        requires=Requires(box_action=True, n_inputs=10),
        description="PD per heated segment on its local probe temperature (Rayleigh-Benard)")
    CONTROLLERS.register(
        "rbc-mode", "controllers.rbc_pd:make_rbc_mode",
        options="controllers.rbc_pd:RBCModeOptions",
        requires=Requires(box_action=True, n_inputs=10),
        description="Open-loop heating A cos(m x + phase) on the 10 segments (Rayleigh-Benard)")
    CONTROLLERS.register(
        "zero", "controllers.trivial:make_zero",
        description="Constant action: zero, or the bound nearest zero (open loop)")
    CONTROLLERS.register("lstmc", "controllers.lstmc:make_lstmc", options="controllers.lstmc:LSTMcOptions", requires=Requires(references=True, box_action=True, n_inputs=1, model_names=("dextrose_crystallization",)), description="LSTM on a window of past states and set-point errors (trained; --set path=)")  # noqa: E501
    CONTROLLERS.register("rise", "controllers.rise:make_rise", options="controllers.rise:RISEOptions", requires=Requires(references=True, box_action=True, n_inputs=1), description="RISE: robust integral of the sign of the error (model-free, one input)")  # noqa: E501
    CONTROLLERS.register("bo", "controllers.setting_search:make_bo", options="controllers.setting_search:BOOptions", requires=Requires(objective=True, box_action=True), description="Bayesian optimization (Optuna GP/TPE) of the setting objective, then steer to the best")  # noqa: E501
    CONTROLLERS.register("de", "controllers.setting_search:make_de", options="controllers.setting_search:DEOptions", requires=Requires(objective=True, box_action=True), description="Differential evolution (scipy, batched) of the setting objective, then steer to the best")  # noqa: E501
    CONTROLLERS.register(
        "sb3", "controllers.sb3_policy:make_sb3", options="controllers.sb3_policy:SB3Options",
        description="A trained Stable-Baselines3 model: sb3:PATH (a `ctrlbench train` folder)")

    for algo, cls in (("sac", "SACOptions"), ("td3", "TD3Options"), ("ppo", "PPOOptions")):
        ALGORITHMS.register(algo, "controllers.sb3_train:train_sb3",
                            options=f"controllers.sb3_train:{cls}",
                            description=f"{algo.upper()} through Stable-Baselines3")
    ALGORITHMS.register("sindy-rl", "controllers.sindy_rl_train:train_sindy_rl_run",
                        options="controllers.sindy_rl_train:SindyRLTrainOptions",
                        description="SINDy-RL: SAC trained in an ensemble-SINDy surrogate")

    PID_DESIGNS.register(
        PMSM_MODEL_NAME, "controllers.motor_pi:design_pmsm_current",
        options="controllers.motor_pi:PMSMCurrentPIOptions",
        description="dq current PI, technical optimum, decoupling + EMF feed-forward")
    PID_DESIGNS.register(
        DC_MODEL_NAME, "controllers.motor_pi:design_dc_speed",
        options="controllers.motor_pi:DCSpeedPIOptions",
        description="cascaded speed/current PI, symmetrical/technical optimum")
    PID_DESIGNS.register(
        MSD_MODEL_NAME, "controllers.siso_pid:design_mass_spring_damper",
        options="controllers.siso_pid:MassSpringDamperPIDOptions",
        description="PID with all three closed-loop poles at -bandwidth")
    PID_DESIGNS.register("dextrose_crystallization", "controllers.crystal_pi:design_crystallization_pi", options="controllers.crystal_pi:CrystalPIOptions", description="SIMC PI on the mean-size step response of grade 'medium'")  # noqa: E501
