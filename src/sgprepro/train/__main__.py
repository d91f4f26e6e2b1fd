"""``python -m sgprepro.train``: the Hydra entry point (thin; the job logic is sgprepro.app).

Examples:
    python -m sgprepro.train nodes=8 algorithm=sgp
    python -m sgprepro.train -m algorithm=allreduce,dpsgd,adpsgd,sgp nodes=4,8,16,32 network=eth_10g
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sgprepro.config import ConfigError, register_configs, validate

CONF_DIR = str(Path(__file__).resolve().parents[3] / "conf")

register_configs()
log = logging.getLogger("sgprepro")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(dcfg: DictConfig) -> float | None:
    from sgprepro.app import run_job

    try:
        cfg = validate(dcfg, check_paths=not dcfg.get("dry_run", False))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    result = run_job(cfg, out)
    if result["status"] == "ok":
        return float(result["summary"]["val/top1_node_mean"])
    if result["status"] == "failed" and hc.mode == RunMode.RUN:
        # a single run reports failure in its exit status; in a multirun the next job still runs
        print(f"error: {result['error']} (details in {out / 'error.txt'})", file=sys.stderr)
        sys.exit(1)
    return None


if __name__ == "__main__":
    main()
