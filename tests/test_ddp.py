"""``fit`` under ``torchrun --nproc_per_node=2`` (gloo on CPU): ranks end with identical parameters.

The worker script is run exactly as a user would run ``groupconv train`` under torchrun; each
rank saves its final state, the test compares them and checks the rank-0 files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    from groupconv.experiments import fit

    torch.set_num_threads(1)
    out = sys.argv[1]
    rank = int(os.environ["RANK"])
    g = torch.Generator().manual_seed(0)  # identical data on every rank
    x = torch.randn(150, 5, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    splits = [(0, 90), (90, 121), (121, 150)]
    data = tuple(TensorDataset(x[a:b], y[a:b]) for a, b in splits)
    torch.manual_seed(100 + rank)  # different initialisations: DDP must broadcast rank 0's
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 2))
    res = fit(model, data, epochs=2, lr=0.05, batch_size=8, device="cpu", progress=False, seed=1,
              out_dir=os.path.join(out, "run"))
    assert not torch.distributed.is_initialized()  # the process group fit created is gone
    torch.save(model.state_dict(), os.path.join(out, f"state_rank{rank}.pt"))
    with open(os.path.join(out, f"result_rank{rank}.json"), "w") as fh:
        json.dump(res.to_dict(), fh)
    """
)


def test_two_process_gloo_training_keeps_ranks_identical(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {
        k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")
    }
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    proc = subprocess.run(cmd + [str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    s0 = torch.load(tmp_path / "state_rank0.pt", weights_only=True)
    s1 = torch.load(tmp_path / "state_rank1.pt", weights_only=True)
    assert s0.keys() == s1.keys()
    for k in s0:  # parameters and (synchronised) BatchNorm buffers
        assert torch.equal(s0[k], s1[k]), k
    r0 = json.loads((tmp_path / "result_rank0.json").read_text())
    r1 = json.loads((tmp_path / "result_rank1.json").read_text())
    assert r0["config"]["world_size"] == 2
    for key in ("test_metric", "test_loss", "best_epoch", "best_val_metric", "steps"):
        assert r0[key] == r1[key], key
    assert r0["steps"] == 2 * 6  # 90 samples -> 45 per rank -> 6 batches of 8, per epoch
    # rank 0 wrote the files; the reduced test metric equals a single-process evaluation
    run = tmp_path / "run"
    assert (run / "metrics.json").exists() and (run / "checkpoint.pt").exists()
    assert json.loads((run / "metrics.json").read_text())["test_metric"] == r0["test_metric"]
    assert not list(run.glob(".*tmp*"))
    from torch import nn

    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 2))
    model.load_state_dict(torch.load(run / "best_model.pt", weights_only=True))
    model.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(150, 5, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    with torch.no_grad():
        acc = float((model(x[121:]).argmax(1) == y[121:]).float().mean())
    assert acc == pytest.approx(r0["test_metric"], abs=1e-6)
