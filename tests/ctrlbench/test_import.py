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
