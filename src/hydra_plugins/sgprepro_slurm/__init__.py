"""sgprepro's Hydra launcher plugin: SLURM, one job per sweep cell (sgprepro.slurm_launcher)."""
