"""PlantModel: numpy and casadi agree; linearisation; parameter overrides."""

import numpy as np
import pytest

from plants.linear.model import mass_spring_damper_model


def test_numpy_and_casadi_agree():
    model = mass_spring_damper_model()
    f, h = model.casadi_functions()
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, u = rng.normal(size=2), rng.normal(size=1)
        np.testing.assert_allclose(np.asarray(f(x, u)).ravel(), model.f(x, u), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(h(x, u)).ravel(), model.h(x, u), rtol=1e-12)


def test_linearize_matches_analytic_jacobians():
    m, c, k = 2.0, 0.3, 5.0
    A, B, C, D = mass_spring_damper_model(m, c, k).linearize([0.1, -0.2], [0.5])
    np.testing.assert_allclose(A, [[0, 1], [-k / m, -c / m]], atol=1e-8)
    np.testing.assert_allclose(B, [[0], [1 / m]], atol=1e-8)
    np.testing.assert_allclose(C, [[1, 0]], atol=1e-8)
    np.testing.assert_allclose(D, [[0]], atol=1e-8)


def test_rk4_step_matches_matrix_exponential():
    from scipy.linalg import expm

    model = mass_spring_damper_model()
    A, B, _, _ = model.linearize([0, 0], [0])
    x0, u, dt = np.array([0.3, -0.1]), np.array([1.5]), 0.05
    M = expm(np.block([[A, B], [np.zeros((1, 3))]]) * dt)
    exact = M[:2, :2] @ x0 + M[:2, 2:] @ u
    np.testing.assert_allclose(model.step(x0, u, dt, substeps=4), exact, atol=1e-9)


def test_with_params_overrides_and_rejects_unknown_names():
    model = mass_spring_damper_model()
    stiff = model.with_params(k=10.0)
    assert stiff.params["k"] == 10.0 and model.params["k"] == 2.0
    with pytest.raises(KeyError, match=r"valid: \['c', 'k', 'm'\]"):
        model.with_params(spring=1.0)


def test_wrong_vector_size_is_a_clear_error():
    with pytest.raises(ValueError, match="expected"):
        mass_spring_damper_model().f([0.0], [0.0])


def test_operating_point_declared_and_equilibrium_solved():
    model = mass_spring_damper_model(k=2.0)
    x, _ = model.operating_point()
    np.testing.assert_array_equal(x, [0.0, 0.0])
    held = model.equilibrium([4.0])  # F = k x at rest: x = 2 m
    np.testing.assert_allclose(held.x_op, [2.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(held.f(held.x_op, held.u_op), [0.0, 0.0], atol=1e-9)
    free = mass_spring_damper_model(k=0.0)  # no spring: a constant force has no steady state
    with pytest.raises(ValueError, match="no steady state"):
        free.equilibrium([1.0])


def test_model_without_operating_point_says_so():
    import dataclasses

    bare = dataclasses.replace(mass_spring_damper_model(), x_op=None, u_op=None)
    with pytest.raises(ValueError, match="declares no operating point"):
        bare.operating_point()
    with pytest.raises(ValueError, match="both x_op and u_op"):
        dataclasses.replace(bare, x_op=(0.0, 0.0))
