"""A stand-in SLURM cluster on this machine: ``sbatch``, ``srun``, ``sacct`` and ``scancel`` on
PATH, written by :func:`install`. No scheduler, no network beyond loopback.

- ``sbatch SCRIPT`` keeps a copy of every script it is given (``<state>/scripts/<id>.sh``) and
  prints ``Submitted batch job <id>``. With ``run=True`` it also runs the script in the
  background, as SLURM would on the allocated nodes, and marks the job COMPLETED or FAILED when
  the script ends.
- ``srun [--output F] [--error F] [...] CMD`` starts ``SLURM_NTASKS`` copies of CMD on this
  machine, each with its ``SLURM_PROCID``, ``SLURM_LOCALID=0`` (one task per node) and its output
  in F with ``%j`` and ``%t`` replaced, and fails if one of them fails.
- ``sacct -j ID ...`` prints ``JobID|State|NodeList`` for each job: RUNNING until it ends.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

from sgprepro.comm.launch import loopback_interface

SBATCH = r"""#!{python}
import os, re, subprocess, sys
from pathlib import Path
state = Path({state!r})
(state / "scripts").mkdir(parents=True, exist_ok=True)
counter = state / "next_id"
job = int(counter.read_text()) if counter.exists() else 1000
counter.write_text(str(job + 1))
script = Path(sys.argv[-1]).read_text()
(state / "scripts" / f"{{job}}.sh").write_text(script)
print(f"Submitted batch job {{job}}", flush=True)
if {run!r}:
    flags = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)$", script, re.M))
    nodes = int(flags.get("nodes", "1")) * int(flags.get("ntasks-per-node", "1"))
    env = {{**os.environ, "SLURM_JOB_ID": str(job), "SLURM_NTASKS": str(nodes),
           "SLURM_JOB_NUM_NODES": flags.get("nodes", "1"), "SLURM_JOB_NODELIST": "localhost"}}
    runner = (
        f"bash {{state}}/scripts/{{job}}.sh > {{state}}/{{job}}.batch.log 2>&1; "
        f"if [ $? -eq 0 ]; then echo COMPLETED; else echo FAILED; fi > {{state}}/{{job}}.state"
    )
    (state / f"{{job}}.state").write_text("RUNNING")
    subprocess.Popen(["bash", "-c", runner], env=env, start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""

SRUN = r"""#!{python}
import os, subprocess, sys
args = sys.argv[1:]
out = err = None
while args and args[0].startswith("-"):
    flag = args.pop(0)
    if flag in ("--output", "--error"):
        value = args.pop(0)
        if flag == "--output":
            out = value
        else:
            err = value
job = os.environ["SLURM_JOB_ID"]
ntasks = int(os.environ.get("SLURM_NTASKS", "1"))
procs = []
for t in range(ntasks):
    env = {{**os.environ, "SLURM_PROCID": str(t), "SLURM_LOCALID": "0", "SLURM_NODEID": str(t)}}
    name = lambda p: p.replace("%j", job).replace("%t", str(t)).replace("%A", job).replace("%a", "0")
    fo = open(name(out), "a") if out else None
    fe = open(name(err), "a") if err else None
    procs.append(subprocess.Popen(args, env=env, stdout=fo, stderr=fe))
codes = [p.wait() for p in procs]
sys.exit(max(codes, key=abs) if any(codes) else 0)
"""

SACCT = r"""#!{python}
import sys
from pathlib import Path
state = Path({state!r})
ids = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "-j"]
print("JobID|State|NodeList")
for job in ids:
    f = state / f"{{job}}.state"
    print(f"{{job}}|{{f.read_text().strip() if f.exists() else 'PENDING'}}|localhost")
"""

SCANCEL = "#!/bin/sh\nexit 0\n"


def install(bin_dir: Path, state: Path, run: bool) -> dict[str, str]:
    """Write the stand-ins into ``bin_dir``; return an environment with them first on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    for name, text in (("sbatch", SBATCH), ("srun", SRUN), ("sacct", SACCT), ("scancel", SCANCEL)):
        path = bin_dir / name
        path.write_text(text.format(python=sys.executable, state=str(state), run=run))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SUBMITIT_"))}
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        env.pop(var, None)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["GLOO_SOCKET_IFNAME"] = loopback_interface()  # the "nodes" are this machine: loopback only
    return env


def scripts(state: Path) -> dict[int, str]:
    """Job id -> the script ``sbatch`` was given, in submission order."""
    return {int(p.stem): p.read_text() for p in sorted((state / "scripts").glob("*.sh"))}


def sbatch_flags(script: str) -> dict[str, str]:
    """``#SBATCH --key=value`` lines of a script (``--key`` alone: value "")."""
    return dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script, re.M))
