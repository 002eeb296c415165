//! Plant simulator (issue 4): fed-batch bioreactor, gas transfer, pH, thermal, sensors, faults.
