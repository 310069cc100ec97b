"""Write ``lab.csv``, the table of the README's walk-through: 2,000 samples of
temperature, pressure and humidity, related non-linearly, with a text column.

    python docs/lab_csv.py [PATH]
"""

from __future__ import annotations

import sys

import numpy as np


def main(path: str = "lab.csv") -> None:
    rng = np.random.default_rng(0)
    n = 2000
    temperature = rng.normal(22.0, 3.0, n)
    pressure = 1.0 + 0.02 * (temperature - 22.0) + 0.05 * np.sin(temperature / 2.0) + rng.normal(0.0, 0.02, n)
    humidity = 55.0 - 1.5 * (temperature - 22.0) + 40.0 * (pressure - 1.0) ** 2 + rng.gamma(2.0, 2.0, n)
    with open(path, "w") as out:
        out.write("sample,temperature,pressure,humidity\n")
        for i, row in enumerate(zip(temperature, pressure, humidity)):
            out.write(f"S{i},{row[0]:.3f},{row[1]:.4f},{row[2]:.2f}\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
