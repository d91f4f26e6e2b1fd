"""The paper-scale timing replay: the timing engine on Table 1's workload.

Each algorithm's declared program (``Algorithm.timing_program``) is emulated on ResNet-50's
102 MB messages over 10 GbE with three physical parameters (compute per iteration, link
efficiency, one CPU pass over the vector) fitted on the 4-node column of Table 1 only; the other
twelve cells are predictions. The published numbers are read from ``experiments/table1_paper/``.
Run ``python -m sgprepro.replay``.
"""

from sgprepro.replay.calibrate import Calibration, calibrate, modern_calibration
from sgprepro.replay.paper import PaperTable, load_paper_table
from sgprepro.replay.run import Replay, run_replay

__all__ = [
    "Calibration",
    "PaperTable",
    "Replay",
    "calibrate",
    "load_paper_table",
    "modern_calibration",
    "run_replay",
]
