"""Hardware-in-the-loop scenarios: emulated devices by default, a real rig by EDGECTL_HIL_* vars."""
