"""The CUDA checks of the fast paths, in one script for a lent GPU machine.

Runs with torch and numpy alone, straight from the source tree (no pytest, no install)::

    PYTHONPATH=src python benchmarks/cuda_check.py [--out DIR] [--quick]

1. Correctness on CUDA: the flat layout's compiled step against the per-tensor eager step
   (IMO, MAMGD, the Adam twin; float32, 10 steps, within 1e-5 relative), a state dict saved
   on the flat layout loading into per-tensor parameters.
2. ``benchmarks/step_cost.py --device cuda`` (100M fp32 parameters in 100 tensors): every
   path as a multiple of the copy floor and of torch's fused Adam; the issue's bounds
   (flat <= 1.1 x floor for Adam, IMO, MAMGD, ScaledAdam; flat Adam >= 1.3x faster than
   fused Adam).

Prints a summary and writes ``cuda_check.json`` (and ``step_cost.json``) into ``--out``
(default ``$OUT`` if set, else the current folder). Exit status 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from optlab.optim import IMO, MAMGD, flatten_parameters, twins


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.Tanh(), torch.nn.Linear(256, 10)
    ).cuda()


def flat_matches_per_tensor(name: str) -> dict[str, object]:
    factories = {
        "imo": lambda p, **kw: IMO(p, lr=0.05, **kw),
        "mamgd": lambda p, **kw: MAMGD(p, lr=0.05, **kw),
        "adam": lambda p, **kw: twins.Adam(p, lr=0.01, **kw),
    }
    plain, flat = _model(), _model()
    flatten_parameters(flat)
    plain_opt = factories[name](plain.parameters(), compiled=False, foreach=False)
    flat_opt = factories[name](flat.parameters(), compiled=True)
    generator = torch.Generator(device="cuda").manual_seed(1)
    inputs = torch.randn(128, 64, device="cuda", generator=generator)
    targets = torch.randn(128, 10, device="cuda", generator=generator)
    for model, optimizer in ((plain, plain_opt), (flat, flat_opt)):
        for _ in range(10):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(inputs), targets).backward()
            optimizer.step()
    error = max(
        float(((a - b).abs() / (a.abs() + 1e-6)).max())
        for a, b in zip(plain.parameters(), flat.parameters(), strict=True)
    )
    resumed = factories[name](_model().parameters(), compiled=False)
    resumed.load_state_dict(flat_opt.state_dict())
    return {
        "check": f"flat compiled == per-tensor eager ({name})",
        "flat_path_ran": bool(flat_opt._flat_cache),
        "max_relative_error": error,
        "ok": bool(flat_opt._flat_cache) and error <= 1e-5,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--quick", action="store_true", help="10M parameters, 5 repeats")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("cuda_check: torch sees no CUDA device here", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "checks": [flat_matches_per_tensor(name) for name in ("imo", "mamgd", "adam")],
    }
    for check in results["checks"]:  # type: ignore[union-attr]
        print(check, flush=True)
    command = [
        sys.executable,
        str(Path(__file__).with_name("step_cost.py")),
        "--device",
        "cuda",
        "--json",
        str(out / "step_cost.json"),
    ]
    if args.quick:
        command += ["--numel", "10000000", "--repeats", "5"]
    subprocess.run(command, check=True)
    rows = json.loads((out / "step_cost.json").read_text())["rows"]
    by_key = {(row["label"], row["path"]): row for row in rows}
    bounds = []
    for label in ("adam twin", "imo", "mamgd", "scaled-adam"):
        row = by_key[(label, "flat")]
        bounds.append(
            {"bound": f"{label} flat <= 1.1 x floor", "x_floor": row["x_floor"],
             "ok": row["x_floor"] <= 1.1}
        )  # fmt: skip
    flat_adam, fused = by_key[("adam twin", "flat")], by_key[("torch adam", "fused")]
    speedup = fused["ms"] / flat_adam["ms"]
    bounds.append({"bound": "flat Adam >= 1.3x faster than fused", "speedup": speedup,
                   "ok": speedup >= 1.3})  # fmt: skip
    results["bounds"] = bounds
    for bound in bounds:
        print(bound, flush=True)
    (out / "cuda_check.json").write_text(json.dumps(results, indent=2))
    failed = [c for c in [*results["checks"], *bounds] if not c["ok"]]  # type: ignore[misc]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
