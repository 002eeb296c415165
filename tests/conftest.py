"""Process-wide settings of the Python test suite.

sila2 (the SiLA 2 face, ``tests/test_lab_sila.py``) needs protobuf's pure-Python implementation
and sets ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python`` when it is imported; in one pytest
process the fleet tests import protobuf (Sparkplug B classes) first, so the suite chooses the
implementation before anything imports protobuf. The benchmarks run in their own processes
with the default (upb) implementation.
"""

from __future__ import annotations

import os

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
