"""Hardware-in-the-loop scenarios: emulated devices by default, a real rig by EDGECTL_HIL_* vars.

Every scenario runs the controller as its own process (``python -m edgectl.cli run``) on an
accelerated clock and asserts on the historian it wrote.
"""
