"""Regenerate ``spectra_golden.json``: scipy and scikit-learn outputs that the Rust core's
integration test (``rust/edgectl-core/tests/spectra_golden.rs``) replays.

    .venv/bin/python tests/data/make_spectra_golden.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.signal import savgol_filter
from sklearn.cross_decomposition import PLSRegression


def main() -> None:
    rng = np.random.default_rng(2024)
    x = np.cumsum(rng.normal(size=120))
    sg = []
    for window, order, deriv, delta in [(5, 2, 0, 1.0), (15, 2, 1, 1.0), (11, 3, 2, 0.5)]:
        for mode in ["interp", "nearest", "mirror", "wrap"]:
            y = savgol_filter(x, window, order, deriv=deriv, delta=delta, mode=mode)
            sg.append(
                {
                    "window": window,
                    "order": order,
                    "deriv": deriv,
                    "delta": delta,
                    "mode": mode,
                    "output": y.tolist(),
                }
            )
    axis = np.linspace(900.0, 1300.0, 60)
    conc = rng.uniform(0, 10, size=(25, 2))
    bands = np.stack([np.exp(-(((axis - c) / 30.0) ** 2)) for c in (1000.0, 1150.0)])
    xs = conc @ bands + rng.normal(scale=0.01, size=(25, 60))
    ys = np.column_stack([conc[:, 0], conc[:, 0] + 2 * conc[:, 1]])
    pls = []
    for a in (1, 3, 5):
        for targets in (1, 2):
            m = PLSRegression(n_components=a, scale=False).fit(xs, ys[:, :targets])
            pls.append(
                {
                    "n_components": a,
                    "n_targets": targets,
                    "predictions": m.predict(xs).reshape(25, targets).tolist(),
                }
            )
    doc = {
        "source": "scipy.signal.savgol_filter and sklearn PLSRegression(scale=False)",
        "savgol_input": x.tolist(),
        "savgol": sg,
        "pls_x": xs.tolist(),
        "pls_y": ys.tolist(),
        "pls": pls,
    }
    out = Path(__file__).with_name("spectra_golden.json")
    out.write_text(json.dumps(doc) + "\n")


if __name__ == "__main__":
    main()
