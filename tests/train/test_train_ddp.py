"""Two processes (torchrun, gloo on CPU) train on different batches and stay identical."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import torch
from PIL import Image

SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    from pathlib import Path
    import torch, torch.distributed as dist
    from tessera.train.loop import TrainConfig, fit
    from tessera.train.recipes import RecipeConfig

    warnings.simplefilter("ignore")
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = TrainConfig(data=data, out=out / "run", model="pix2pix", preset="tiny", steps=3, batch=2, crop=32,
                      region=16, workers=0, threads=1, recipe=RecipeConfig(d_base=8), log_every=1,
                      eval_every=100, sample_every=100, ckpt_every=100)
    s = fit(cfg)
    rank = dist.get_rank()
    nets = {k: v.state_dict() for k, v in s["recipe"].nets.items()}
    torch.save({"nets": nets, "losses": s["losses"], "world": dist.get_world_size()}, out / f"rank{rank}.pt")
    dist.destroy_process_group()
    """
)


def test_two_process_gloo_run_keeps_replicas_identical(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(data / f"{i}.png")
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(data), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2
    assert r0["losses"] != r1["losses"]  # the ranks saw different batches
    for net in r0["nets"]:
        for k, v in r0["nets"][net].items():
            assert torch.equal(v, r1["nets"][net][k]), (net, k)
    # only rank 0 writes the run folder
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
