"""plants.linear.model pinned (kills mutmut's survivors): defaults, output and operating point."""

import numpy as np
import pytest

from plants.linear.model import mass_spring_damper_model


def test_defaults_output_and_operating_point():
    model = mass_spring_damper_model()
    assert model.params == {"m": 1.0, "c": 0.5, "k": 2.0}
    assert [s.name for s in model.outputs] == ["x"]
    x_op, u_op = model.operating_point()
    assert x_op.tolist() == [0.0, 0.0] and u_op.tolist() == [0.0]
    # m x'' = F - c v - k x at m = 2, c = .4, k = 3: x = .5, v = -1.5, F = 1.2
    m2 = mass_spring_damper_model(m=2.0, c=0.4, k=3.0)
    np.testing.assert_allclose(m2.f(np.array([0.5, -1.5]), np.array([1.2])),
                               [-1.5, (1.2 + 0.6 - 1.5) / 2.0])
    assert m2.h(np.array([0.5, -1.5]), np.array([1.2])) == pytest.approx([0.5])
