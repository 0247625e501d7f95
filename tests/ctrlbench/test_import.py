"""``import ctrlbench`` stays light."""

import subprocess
import sys

HEAVY = ("torch", "casadi", "gym_electric_motor", "transformers", "stable_baselines3", "pandas",
         "matplotlib", "scipy")


def test_import_ctrlbench_pulls_no_heavy_library():
    code = (
        "import sys, ctrlbench, ctrlbench.metrics, ctrlbench.registry\n"
        "ctrlbench.plant_ids(); ctrlbench.CONTROLLERS.names()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import ctrlbench imported: {out.stdout.strip()}"


def test_a_controller_or_plant_module_can_be_imported_before_ctrlbench():
    """Registration hooks import no controller module, so importing one first cannot re-enter
    it half-initialised through ``import ctrlbench`` -> ``load_plugins``."""
    code = (
        "import controllers.pid_design as d, plants.nmes.env\n"
        "print(sorted(d.PID_DESIGNS.names()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "nmes_knee" in out.stdout and "dextrose_crystallization" in out.stdout
