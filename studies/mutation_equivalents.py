"""Mutants of :mod:`studies.mutation`'s modules that no test can kill, each with its reason.

Data only (imported by ``studies/mutation.py``); the report lists every entry that matched.
"""

# Mutants no test can kill, with the reason. A key ending in "_" matches every mutant whose name
# starts with it (all mutants of one function). "equivalent": no input distinguishes the mutant
# from the original; "cpu": it differs only on a CUDA device (device=None on tensors, the Triton
# kernel path), which the CPU machines running `make mutation` do not have.
_NO_CUDA = "differs only on a CUDA device (device= argument; CPU is the default device)"
_TRITON = "Triton kernel path: runs only with triton and a CUDA device (tests marked gpu)"
_DIM = ("rows are always 2-D (reshaped to (-1, V)) and t, y 1-D, so dim/axis +1 == -1")
_NAN = 'float("NAN") is float("nan")'
_INF = 'float("INF") is float("inf")'
_PLAIN = ("default=jsonable dropped: a StudySpec holds only plain JSON values (StudySpec checks "
          "them, numpy scalars become Python numbers; tuples dump as lists), and spec.json read "
          "back is JSON, so the fallback is never called")
_F64 = ("dtype=float dropped on one operand: every use meets a float64 operand (state, other "
        "gain, weight) first, so numeric input (bool/int/float16-64) gives the same float64 "
        "result")
EQUIVALENT: dict[str, tuple[str, str]] = {
    **{f"llm_rl.losses.x_aggregate__mutmut_{i}": ("cpu", _NO_CUDA) for i in (22, 25, 41, 44)},
    "llm_rl.losses.x_group_advantages__mutmut_28":
        ("equivalent", "torch.std's default is the unbiased estimate (correction 1)"),
    "llm_rl.losses.x_k3_kl__mutmut_3":
        ("equivalent", "exp(d) - d - 1 >= 0 for every d: the lower clamp never acts"),
    "llm_rl.losses.x_k3_kl__mutmut_12":
        ("equivalent", "exp(d) - d - 1 >= 0 for every d: the lower clamp never acts"),
    "llm_rl.losses.x__surrogate__mutmut_37":
        ("equivalent", "dual clip at A = 0: min(clipped, -0 * c) = min(0, 0), the same value"),
    **{f"llm_rl.entropy.x__as_rows__mutmut_{i}": ("cpu", _NO_CUDA) for i in (23, 26)},
    "llm_rl.entropy.x__as_rows__mutmut_27":
        ("equivalent", "a 0-d temperature reshaped to (1,)*ndim broadcasts as before"),
    **{f"llm_rl.entropy.x__chunk__mutmut_{i}": ("equivalent", _DIM)
       for i in (8, 10, 16, 23, 26, 28)},
    "llm_rl.entropy.x_entropy_and_logprob__mutmut_2":
        ("equivalent", "chunk size only bounds memory: the chunks' results are concatenated"),
    "llm_rl.entropy.x_entropy_and_logprob__mutmut_3": ("cpu", _TRITON),
    "llm_rl.entropy.x_entropy_and_logprob__mutmut_11":
        ("equivalent", "checkpointing only trades memory for recompute; values and gradients "
                       "are the same without it"),
    "llm_rl.entropy.x_entropy_and_logprob__mutmut_12":
        ("equivalent", "checkpointing a chunk with no grad input changes nothing"),
    **{f"llm_rl.entropy.x_entropy_and_logprob__mutmut_{i}": ("cpu", _TRITON)
       for i in (13, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25)},
    "llm_rl.entropy.x_entropy_logprob_triton_": ("cpu", _TRITON),
    "llm_rl.entropy.x_triton_available_": ("cpu", "triton and CUDA both absent here"),
    **{f"ctrlbench.metrics.x_{f}__mutmut_{i}": ("equivalent", _NAN)
       for f, i in (("overshoot", 9), ("rise_time", 11), ("rise_time", 34),
                    ("settling_time", 10), ("settling_time", 36))},
    "ctrlbench.metrics.x_overshoot__mutmut_25":
        ("equivalent", "(y - r) * sign(size) == (y - r) / sign(size): sign is +-1 here (0 "
                       "returns earlier)"),
    "llm_rl.metrics.x_pass_at_k__mutmut_1":
        ("equivalent", "the early return is a shortcut: when n - c < k the product has the "
                       "factor (n - c - i) = 0 at i = n - c, so it also gives 1.0"),
    "llm_rl.metrics.x_fit_rh_law__mutmut_33":
        ("equivalent", "rcond=None is numpy's default since 2.0"),
    **{f"controllers.pid.xǁPIDǁ__init____mutmut_{i}": ("equivalent", _F64)
       for i in (11, 13, 16, 18, 21, 23, 28, 30, 33, 35, 87, 89)},
    **{f"controllers.pid.xǁPIDǁreset__mutmut_{i}": ("equivalent", _F64) for i in (11, 13, 18, 20)},
    **{f"controllers.pid.xǁPIDǁupdate__mutmut_{i}": ("equivalent", _F64)
       for i in (4, 6, 17, 19, 31, 33, 40, 42)},
    "controllers.pid.xǁPIDǁ__init____mutmut_48":
        ("equivalent", "safe_kp's fallback only feeds the np.where branches not selected "
                       "(kp <= 0 uses dt and 1/dt)"),
    "controllers.pid.xǁPIDǁreset__mutmut_26":
        ("equivalent", "prev_measurement defaults to None"),
    "controllers.pid.xǁPIDǁreset__mutmut_27":
        ("equivalent", "astype(None) is astype(float64)"),
    **{f"controllers.lqr.xǁLQRIntegralǁ__init____mutmut_{i}": ("equivalent", _F64)
       for i in (90, 92, 151, 153, 155, 157)},
    "controllers.lqr.xǁLQRIntegralǁcompute__mutmut_4":
        ("equivalent", "astype(None) is astype(float64)"),
    "controllers.motor_pi.xǁDCSpeedCascadePIǁ__init____mutmut_87":
        ("equivalent", "__init__ ends with reset(), which sets _filtered = None"),
    **{f"controllers.motor_pi.xǁDCSpeedCascadePIǁcompute__mutmut_{i}":
       ("equivalent", "duty is a Python float: np.array([duty]) is float64 anyway")
       for i in (21, 23)},
    **{f"controllers.motor_pi.xǁPMSMCurrentPIǁcompute__mutmut_{i}":
       ("equivalent", "PID.update returns a float64 array here (vector PID)") for i in (15, 17)},
    **{f"ctrlbench.study.x_{f}__mutmut_{i}": ("equivalent", _PLAIN)
       for f, i in (("_canonical", 3), ("_canonical", 6), ("_spec_json", 3), ("_spec_json", 5),
                    ("run_study", 69), ("run_study", 72))},
    "ctrlbench.study.x__claim__mutmut_3":
        ("equivalent", "claim_folder only tests resume for truth: None acts as False"),
    "ctrlbench.study.x__claim__mutmut_23":
        ("equivalent", "encoding=None is the locale's, UTF-8 here (PEP 538/540), and the "
                       "spec.json a study writes is ASCII (json.dumps escapes the rest)"),
    "ctrlbench.study.x__claim__mutmut_25":
        ("equivalent", "codec names are case-insensitive: 'UTF-8' is 'utf-8'"),
    **{f"ctrlbench.study.x__tidy__mutmut_{i}":
       ("equivalent", "missing_ok only matters if the file vanishes between glob and unlink; "
                      "the study holds the folder's lock, nothing else removes it")
       for i in (20, 21)},
    "ctrlbench.study.x_execute_run__mutmut_7":
        ("equivalent", "plant = '' when make_plant raises: ''.close() raises AttributeError, "
                       "which the finally block swallows like any close error"),
    "plants.nmes.model.x_passive_equilibrium__mutmut_13":
        ("equivalent", "rtol left at brentq's default 4 eps instead of 1e-14: tighter; the root "
                       "moves by at most 2 ulp (2.4e-15 rad over 300 random patients, the "
                       "original's own error 3.4e-15), inside the 1e-14 it promises"),
    "plants.nmes.model.x_passive_equilibrium__mutmut_15":
        ("equivalent", "brentq on -f instead of f: Brent's method uses only sign tests and ratios "
                       "of f values, so the iterates are the same (bit-identical, 300 random "
                       "patients)"),
    "plants.nmes.model.x_passive_equilibrium__mutmut_20":
        ("equivalent", "bracket from -2 pi instead of -pi/2: the residual keeps its sign change "
                       "and the root is the same to 1e-16 rad (other iterates), inside xtol"),
    "plants.crystallization.model.x__vanleer__mutmut_26":
        ("equivalent", "s only guards a 0/0 where a, b differ in sign: ra and rb are set to 0 "
                       "there whatever s is"),
    **{f"plants.crystallization.model.xǁPopulationBalanceǁ__init____mutmut_{i}":
       ("equivalent", "float zeros in the COO row array: the indices are small exact integers, "
                      "which scipy casts back; the same pattern and permutation")
       for i in (27, 29)},
    **{f"plants.crystallization.model.xǁPopulationBalanceǁ__init____mutmut_{i}":
       ("equivalent", "the pattern's shape, left to scipy, is inferred from its largest "
                      "indices (n, n), i.e. (n + 1, n + 1)") for i in (55, 57)},
    "plants.crystallization.model.xǁPopulationBalanceǁ__init____mutmut_66":
        ("equivalent", "an empty extra row in the pattern matrix: its CSC indices and indptr "
                       "(per column), all that is kept, are the same"),
    **{f"plants.crystallization.model.xǁPopulationBalanceǁ_kinetics__mutmut_{i}":
       ("equivalent", "dG/dc, dB/dc at S <= 1 are never read: rhs and jacobian return zero "
                      "when G = B = 0") for i in (20, 21)},
    **{f"plants.crystallization.model.xǁPopulationBalanceǁjacobian__mutmut_{i}":
       ("equivalent", "the padding value is never read (wm_p[0], w0_p[0] and wp_p[n] fall "
                      "outside every slice taken)") for i in (23, 28, 31)},
    **{f"plants.crystallization.model.xǁPopulationBalanceǁjacobian__mutmut_{i}":
       ("equivalent", "slice end past the array's end (length n + 1): numpy clips it, the same "
                      "slice") for i in (47, 53)},
    "plants.crystallization.model.xǁPopulationBalanceǁjacobian__mutmut_60":
        ("equivalent", "b >= 0 with m_t > 0: at b = 0 the product (b * b_exp / m_t) ... is 0, "
                       "the zeros of the else branch"),
    "plants.crystallization.model.xǁPopulationBalanceǁjacobian__mutmut_78":
        ("equivalent", "sup1[0] is -G/h wp[0] = 0 before it (face 0 is first order: wp[0] = 0), "
                       "so = and += agree"),
    "plants.crystallization.model.xǁPopulationBalanceǁjacobian__mutmut_112":
        ("equivalent", "dface_d3 is zeros before this first update: = and += agree"),
    **{f"plants.crystallization.model.xǁPopulationBalanceǁjacobian__mutmut_{i}":
       ("equivalent", "the shape left to scipy is inferred from the largest indices: "
                      "(n + 1, n + 1)") for i in (152, 154)},
    **{f"plants.crystallization.model.xǁPopulationBalanceǁ_odeint__mutmut_{i}":
       ("equivalent", "odeint returns a float64 array: asarray(..., dtype=None) is the same")
       for i in (42, 44)},
    "plants.crystallization.model.xǁPopulationBalanceǁ_odeint__mutmut_45":
        ("equivalent", "odeint is asked for two times [t0, t0 + duration]: ys[1] is ys[-1]"),
    **{f"plants.crystallization.model.xǁPopulationBalanceǁadvance__mutmut_{i}":
       ("equivalent", "t_eval=None and dense_output=False are solve_ivp's defaults; dense "
                      "output only adds an interpolant, the steps and y(t_end) are the same")
       for i in (78, 86, 87, 89)},
    "plants.crystallization.model.x_simulate_open_loop__mutmut_11":
        ("equivalent", "numpy (2.x) takes any negative size in reshape as the unknown one: "
                       "reshape(-2) is reshape(-1)"),
    **{f"plants.crystallization.model.x_simulate_open_loop__mutmut_{i}":
       ("equivalent", "np.arange of ints times the float dt is float64 with the same values")
       for i in (109, 111)},
    "plants.crystallization.model.xǁSizeGridǁ__post_init____mutmut_9":
        ("equivalent", "isinstance(n, bool) and not isinstance(n, int) is never true (bool is "
                       "an int), and a bool n_cells (0 or 1) fails n_cells < 10 anyway"),
    **{f"plants.laser.model.xǁPulseModelǁ{f}__mutmut_{i}":
       ("equivalent", "torch.fft's default dim is -1") for f, i in
       (("_intensity", 14), ("output_field", 29), ("output_field", 60))},
    **{f"plants.laser.model.xǁPulseModelǁ{f}__mutmut_{i}":
       ("equivalent", "scipy.fft's default axis is -1") for f, i in
       (("_intensity", 34), ("output_field", 88), ("output_field", 129))},
    **{f"plants.laser.model.xǁPulseModelǁ{f}__mutmut_{i}":
       ("equivalent", "overwrite_x only lets scipy reuse the input's memory: the input (the "
                      "twiddled temporary, e_nu, e_t) is not read afterwards and the recorded "
                      "stages are copies; keep feeds nothing else") for f, i in
       (("_intensity", 32), ("_intensity", 35), ("_intensity", 38), ("output_field", 66),
        ("output_field", 67), ("output_field", 86), ("output_field", 90), ("output_field", 95),
        ("output_field", 127), ("output_field", 131), ("output_field", 136))},
    "plants.laser.model.xǁPulseModelǁoutput_field__mutmut_105":
        ("equivalent", "SPM uses I / max I: a constant factor on I cancels"),
    "plants.laser.model.xǁPulseModelǁforward__mutmut_44":
        ("equivalent", "numpy (2.x) takes any negative size in reshape as the unknown one"),
    "plants.laser.model.xǁPulseModelǁforward__mutmut_59":
        ("equivalent", "chunk step 1: the overlapping chunks recompute the same pulses (CHUNK "
                       "only sizes the work for the cache)"),
    "plants.laser.model.xǁPulseModelǁforward__mutmut_74":
        ("equivalent", "the chunk's intensity is 2-D (chunk, n_time): axis +1 is -1"),
    **{f"plants.laser.model.xǁPulseModelǁ{f}__mutmut_{i}":
       ("equivalent", "dtype=float64 dropped: int or float32 settings meet float64 constants "
                      "(the phase powers, the bounds) and convert exactly, the same float64 "
                      "phase") for f, i in
       (("forward", 6), ("forward", 8), ("forward_normalized", 6), ("forward_normalized", 8),
        ("linear_compensation", 2), ("linear_compensation", 4))},
    "plants.laser.model.x_fwhm__mutmut_48":
        ("equivalent", "any negative fill is below every index for amax"),
    **{f"plants.laser.model.x_fwhm__mutmut_{i}": ("cpu", _NO_CUDA) for i in (19, 21)},
    **{f"plants.laser.model.xǁPulseModelǁ_const__mutmut_{i}": ("cpu", _NO_CUDA) for i in (22, 25)},
    **{f"plants.laser.model.x__safe_div__mutmut_{i}":
       ("equivalent", "the inner fill only avoids a division by 0; the outer where discards it")
       for i in (18, 33)},
    **{f"controllers.nmes_pid.x_design_nmes_pid__mutmut_{i}":
       ("equivalent", "only the activation (M_a) or angular-velocity entry of the linearization "
                      "point, or the pulse u0, changes: the dynamics are affine in omega, M_a and "
                      "P, and the gains read only a[1,0], a[1,1], a[1,2] (fitness 1 kept), a[2,2], "
                      "b[2,0], which do not depend on them (central differences: same to "
                      "rounding)") for i in (3, 11, 13, 15, 17, 19, 20)},
    "controllers.rise.xǁRISEǁ__init____mutmut_28":
        ("equivalent", "__init__ ends with reset(), which sets last_info = {}"),
    **{f"controllers.rise.xǁRISEǁreset__mutmut_{i}":
       ("equivalent", "the first update after reset skips the derivative and sets _e1_prev "
                      "before it is read") for i in (2, 3)},
    **{f"controllers.rise.xǁRISEǁupdate__mutmut_{i}":
       ("equivalent", "clamped is only tested for its sign and truth: +-2 acts as +-1")
       for i in (57, 75)},
    **{f"controllers.crystal_pi.xǁCrystalPIǁ__init____mutmut_{i}":
       ("equivalent", "the PID's limits at construction are never used: compute sets "
                      "pid.u_min and pid.u_max before every reset and update")
       for i in (9, 10, 14, 15)},
    "controllers.crystal_pi.x_identify_step_response__mutmut_4":
        ("equivalent", "t_step 7201 s: round(7201 / 600) = 12, the step index of 7200 s (t_step "
                       "is used only through it)"),
    "controllers.crystal_pi.x_identify_step_response__mutmut_10":
        ("equivalent", "round(t / 601) = round(t / 600) for every multiple t of 600 s below 300 "
                       "periods (the batch has 144)"),
    "controllers.nmes_pid.x_design_nmes_pid__mutmut_31":
        ("equivalent", "w_n enters the gains only through zeta w_n = -a[1,1] / 2 (lambda_c = "
                       "gain_margin J / B): any w_n cancels"),
    **{f"controllers.nmes_pid.xǁNMESPIDǁ{f}__mutmut_{i}":
       ("equivalent", "_started is only tested for truth: None acts as False")
       for f, i in (("__init__", 26), ("reset", 1))},
    "controllers.crystal_pi.x__start_index__mutmut_5":
        ("equivalent", "a tracking signal's name is replaced only so that it cannot match "
                       "'T_j_applied': any other placeholder does the same"),
    **{f"controllers.crystal_pi.x_identify_step_response__mutmut_{i}":
       ("equivalent", "both batches run on the same time grid: runs[0].t is runs[1].t")
       for i in (40, 41)},
    **{f"controllers.crystal_pi.x_identify_step_response__mutmut_{i}":
       ("equivalent", "resp - dy is float64 already") for i in (62, 64)},
    **{f"controllers.crystal_pi.x_identify_step_response__mutmut_{i}":
       ("equivalent", "the fit's start point or bounds: the least-squares fit converges to the "
                      "same optimum (a synthetic FOPDT recovered to 1e-11 or better from each, "
                      "two grades); no data tried tells them apart")
       for i in (72, 73, 74, 75, 76, 77, 79, 80, 81, 82)},
    "plants.laser.model.x__safe_div__mutmut_4":
        ("cpu", "numpy's where on a torch tensor works on CPU tensors only (the values are the "
                "same and torch arithmetic makes the width a tensor again)"),
    "plants.laser.model.x_fwhm__mutmut_122":
        ("equivalent", "numpy >= 2.3: take_along_axis's default axis is -1"),
    **{f"plants.laser.model.xǁPulseModelǁ__init____mutmut_{i}":
       ("equivalent", "the (-1)^k window shift negated (or divided by, as it is +-1): a global "
                      "factor -1 on the field, which |e|^2 drops") for i in (120, 121, 130)},
    "ctrlbench.metrics.x_summary__mutmut_7":
        ("equivalent", "a 0-step trajectory has one time sample: time[-1] - time[0] = 0"),
    "llm_rl.entropy_mpc.x_fit_quadratic_model__mutmut_36":
        ("equivalent", "rcond=None is numpy's default since 2.0"),
    **{f"llm_rl.entropy_mpc.x_fit_quadratic_model__mutmut_{i}":
       ("equivalent", "lstsq's solution is float64 already: asarray without the dtype is the "
                      "same array") for i in (40, 42)},
    **{f"llm_rl.entropy_mpc.xǁModelPredictiveControllerǁ__init____mutmut_{i}":
       ("equivalent", "NMPCOptions stores theta as a tuple of Python floats: asarray gives "
                      "float64 without the dtype too") for i in (10, 12)},
    "llm_rl.entropy_mpc.xǁModelPredictiveControllerǁ_update__mutmut_2":
        ("equivalent", "x and pred are set together (the first reading sets both, the "
                       "checkpoint carries both): x is None exactly when pred is None in every "
                       "state the controller reaches; only a hand-made checkpoint with one of "
                       "them missing would tell the two apart"),
    **{f"llm_rl.entropy_mpc.xǁModelPredictiveControllerǁ_update__mutmut_{i}":
       ("equivalent", "np.full_like(None, x) is a 0-d (object) array holding x: it broadcasts "
                      "against the grid like the full one, and Python-float arithmetic on it "
                      "rounds as float64 does (the step-by-step reference agrees to 1e-12)")
       for i in (31, 36, 46)},
    "llm_rl.entropy_mpc.xǁModelPredictiveControllerǁ_update__mutmut_82":
        ("equivalent", "at err = 0 the cost term weight * err^2 is 0 whichever weight"),
    **{f"llm_rl.entropy_mpc.xǁNMPCOptionsǁ__post_init____mutmut_{i}":
       ("equivalent", "Options has already coerced theta (tuple[float, ...]: ints and floats "
                      "only) to a tuple of Python floats; the line sets the same value")
       for i in (26, 27)},
    **{f"llm_rl.filters.xǁSensorConfigǁ__post_init____mutmut_{i}":
       ("equivalent", "the joined list has one element: every field is read by exactly one "
                      "filter (_READS), so the separator never appears") for i in (31, 33)},
    **{f"llm_rl.entropy_design.x_min_spectral_radius_pi__mutmut_{i}":
       ("equivalent", "the start value (inf, ., .) is never the minimum: every grid point's "
                      "spectral radius is finite (np.roots refuses non-finite coefficients)")
       for i in (43, 44)},
    **{f"llm_rl.entropy_design.x_simulate_closed_loop__mutmut_{i}": ("equivalent", _INF)
       for i in (71, 90)},
    "llm_rl.entropy_design.x_simulate_closed_loop__mutmut_80":
        ("equivalent", "a runaway's inf is H's last sample, always in the second half, and the "
                       "setpoint is > 0 (ControlConfig): the mean is inf either way"),
    **{f"llm_rl.entropy_design.x_tune_pi_optuna__mutmut_{i}":
       ("equivalent", "optuna.create_study's default direction (None) is 'minimize'")
       for i in (81, 86)},
    "llm_rl.entropy_design.x_tune_pi_optuna__mutmut_96":
        ("equivalent", "done == n_trials: study.optimize(n_trials=0) runs no trial"),
    "llm_rl.sysid.x_prediction_errors__mutmut_22":
        ("equivalent", "a run of exactly lag steps adds only empty arrays (no prediction, no "
                       "window): skipping it or not is the same"),
    "llm_rl.sysid.xǁARXModelǁfit__mutmut_7":
        ("equivalent", "a run of exactly lag steps has no regressor rows (an empty (0, p) block "
                       "and no target)"),
    "llm_rl.sysid.xǁARXModelǁfit__mutmut_19":
        ("equivalent", "rcond=None is numpy's default since 2.0"),
    **{f"llm_rl.sysid.x{f}__mutmut_{i}":
       ("equivalent", "numpy (2.x) takes any negative size in reshape as the unknown one")
       for f, i in (("ǁARXModelǁ_regressors", 23), ("ǁSINDyModelǁfit", 48),
                    ("ǁSINDyModelǁfit", 59), ("ǁSINDyModelǁfrom_dict", 36))},
    **{f"llm_rl.sysid.xǁARXModelǁstep__mutmut_{i}":
       ("equivalent", "dtype=float dropped on a history: numeric histories (bool, int, "
                      "float16-64) meet the float64 a_, b_ in the dot product and convert "
                      "exactly, the same float64 value") for i in (3, 5, 10, 12)},
    **{f"llm_rl.sysid.xǁEntropyModelǁsimulate__mutmut_{i}":
       ("equivalent", "dtype=float dropped on h_init or u: every value reaches the model "
                      "through step, which converts (ARX: asarray float; SINDy: float()) "
                      "exactly") for i in (5, 7, 13, 15)},
    "llm_rl.sysid.xǁEntropyModelǁsimulate__mutmut_32":
        ("equivalent", "at step k the list h holds k + 1 values: the slice end k + 2 is "
                       "clipped to k + 1"),
    "llm_rl.sysid.xǁSINDyModelǁfit__mutmut_7":
        ("equivalent", "every RunData has >= 1 step; a 1-step run adds no transition to the fit "
                       "(pysindy 2.1: the same coefficients, checked) nor a residual"),
    "llm_rl.sysid.xǁSINDyModelǁfit__mutmut_13":
        ("equivalent", "include_bias=True is PolynomialLibrary's default"),
    "llm_rl.sysid.xǁSINDyModelǁfit__mutmut_36":
        ("equivalent", "DiscreteSINDy regresses x_{k+1} on x_k: the spacing t does not enter "
                       "(pysindy 2.1: t = 1 and t = 2 give the same coefficients)"),
    **{f"llm_rl.sysid.xǁSINDyModelǁfit__mutmut_{i}":
       ("equivalent", "model.coefficients() is float64 and lib.powers_ int already: asarray "
                      "without the dtype is the same array") for i in (44, 46, 55, 57)},
    "plants.rbc.model.x_agent_columns__mutmut_8":
        ("equivalent", "astype(None) is astype(float64): the floored values (small integers) "
                       "compare equal to the integer agent either way"),
    **{f"plants.rbc.model.x_bottom_coefficients__mutmut_{i}":
       ("equivalent", "np.arange of ints: the int k gives the same k w, phases and 2 pi i k "
                      "(small integers convert exactly)") for i in (9, 12)},
    "plants.rbc.model.x_bottom_coefficients__mutmut_26":
        ("equivalent", "the fill value of `safe` is read only where kw <= 1e-3, where np.where "
                       "takes the series instead: any nonzero fill gives the same result"),
    "plants.rbc.model.x_bottom_profile__mutmut_35":
        ("equivalent", "x - a - pi and x - a + pi differ by 2 pi, which the mod by 2 pi "
                       "removes (to rounding: the 1e-13 pins pass)"),
    "plants.rbc.model.x_bottom_profile__mutmut_60":
        ("equivalent", "astype(None) is astype(float64)"),
    "plants.rbc.model.x_bottom_profile__mutmut_76":
        ("equivalent", "s is always 2-D (points, 10): axis +1 is -1"),
    "plants.rbc.model.x_bottom_profile__mutmut_96":
        ("equivalent", "einsum's subscripts are labels: upper case names the same axes"),
    **{f"plants.rbc.model.x_probe_nusselt__mutmut_{i}":
       ("equivalent", "dtype=float64 dropped on uy: its only use is uy * temp with temp "
                      "float64, so numeric uy (bool/int/float16-64) converts exactly, the same "
                      "float64 product") for i in (3, 5)},
    "plants.rbc.model.x_probe_nusselt__mutmut_36":
        ("equivalent", "DELTA_T = 1: kappa * DELTA_T and kappa / DELTA_T are equal"),
    **{f"plants.rbc.model.x_probe_x__mutmut_{i}":
       ("equivalent", "np.arange of ints times the float 2 pi / 96 is float64 with the same "
                      "values") for i in (10, 14)},
    "plants.rbc.model.x_probe_x__mutmut_17":
        ("equivalent", "96 / 32 = 3.0: np.arange(0, 96, 3.0) holds the same 32 values"),
    "plants.rbc.model.x_probe_x__mutmut_18": ("equivalent", "97 // 32 = 3 = 96 // 32"),
    "plants.rbc.model.x_probe_y__mutmut_10":
        ("equivalent", "64 / 8 = 8.0: np.arange(0, 64, 8.0) holds the same 8 values"),
    "plants.rbc.model.x_probe_y__mutmut_11": ("equivalent", "65 // 8 = 8 = 64 // 8"),
    "plants.rbc.model.x_roll_count__mutmut_14":
        ("equivalent", "numpy (2.x) takes any negative size in reshape as the unknown one"),
    **{f"plants.rbc.model.x_roll_count__mutmut_{i}":
       ("equivalent", "per-line counts in a float64 array instead of int64: small integers, "
                      "exact either way, and the result is cast to int64") for i in (19, 21)},
    "plants.rbc.model.x_roll_count__mutmut_34":
        ("equivalent", "on the cyclic sequence of nonzero signs each differing neighbour pair "
                       "is counted once, from its first or from its second sample alike"),
}

