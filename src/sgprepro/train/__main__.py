"""``python -m sgprepro.train``: the same Hydra app as ``sgprepro-train`` (see :mod:`sgprepro.cli`).

Examples:
    python -m sgprepro.train nodes=8 algorithm=sgp
    python -m sgprepro.train -m algorithm=allreduce,dpsgd,adpsgd,sgp nodes=4,8,16,32 network=eth_10g
"""

from sgprepro.cli import train

if __name__ == "__main__":
    train()
