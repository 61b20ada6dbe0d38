"""P8: recipe B's checkpoint writes per epoch, and its whole process against the tutorial's, on 2,000 images.

Both sides are whole processes, timed from start to exit, on torchvision's FakeData (2,000 training and 400
test images of 3×32×32; no pretrained weights can be downloaded here, so both start from random ones):

- ptviz: `ptviz-tui --headless --recipe cifar10-resnet18 --dataset fake --fake-size 2000 --no-pretrained
  --epochs 1` in a fresh run folder. Its checkpoint bytes are counted by wrapping torch.save (what each call
  wrote), next to the size of one checkpoint file: one epoch writes epoch-0001.pt, last.pt and best.pt;
- the tutorial's section 5 loop: ResNet-18 with fc -> 10 and every other parameter frozen, RandomCrop(32, 4)
  + RandomHorizontalFlip + ToTensor + Normalize per sample in a DataLoader (batch 128, shuffled, 2 workers),
  SGD lr 0.001 momentum 0.9 on fc, a test pass with accuracy, the total time, and the model saved at the end.

    python -m benchmarks.p8_checkpoints child ptviz --images 2000 --runs-dir DIR    # one process, JSON out
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Result, interleaved, median

ROOT = Path(__file__).resolve().parents[1]
BYTES_TARGET, SPEED_TARGET = 1.5, 1.0  # bytes: under two files' worth (one file is 1.00×)
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def ptviz_side(images: int, runs_dir: str) -> dict[str, Any]:
    """The headless CLI in this process, torch.save wrapped to count the bytes each call writes."""
    import torch

    from ptviz.tui.cli import main

    saved: list[int] = []
    real_save = torch.save

    class Counting:
        """The file torch.save writes to, counting the bytes."""

        def __init__(self, f: Any):
            self.f, self.bytes = f, 0

        def write(self, data: Any) -> int:
            self.bytes += len(data)
            return self.f.write(data)

        def flush(self) -> None:
            self.f.flush()

    def counting_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        counted = Counting(f)
        real_save(obj, counted, *args, **kwargs)
        saved.append(counted.bytes)

    torch.save = counting_save
    code = main(["--headless", "--recipe", "cifar10-resnet18", "--dataset", "fake", "--fake-size", str(images),
                 "--no-pretrained", "--epochs", "1", "--runs-dir", runs_dir, "--checkpoint-minutes", "0"])
    (run,) = Path(runs_dir).iterdir()
    files = {p.name: p.stat().st_size for p in (run / "checkpoints").glob("*.pt")}
    inodes = {p.stat().st_ino for p in (run / "checkpoints").glob("*.pt")}
    return {"exit_code": code, "saves": saved, "bytes_saved": sum(saved), "files": files, "inodes": len(inodes)}


def tutorial_side(images: int, folder: str) -> dict[str, Any]:
    """Tutorial section 5 on FakeData: frozen ResNet-18, fc trained, a test pass, the model saved."""
    import torch
    import torch.nn as nn
    import torchvision
    import torchvision.transforms as T

    start = time.time()
    train_tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    test_tf = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    trainset = torchvision.datasets.FakeData(images, (3, 32, 32), 10, train_tf)
    testset = torchvision.datasets.FakeData(max(10, images // 5), (3, 32, 32), 10, test_tf, random_offset=1_000_003)
    trainloader = torch.utils.data.DataLoader(trainset, batch_size=128, shuffle=True, num_workers=2)
    testloader = torch.utils.data.DataLoader(testset, batch_size=100, shuffle=False, num_workers=2)
    model = torchvision.models.resnet18(weights=None)
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(model.fc.in_features, 10)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.001, momentum=0.9)
    for epoch in range(1):
        model.train()
        running_loss = 0.0
        for inputs, labels in trainloader:
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for inputs, labels in testloader:
                correct += (model(inputs).argmax(1) == labels).sum().item()
                total += labels.size(0)
        print(f"Epoch {epoch + 1}, Loss: {running_loss / len(trainloader):.4f}, Test accuracy: {correct / total:.2%}")
    print(f"Training time: {time.time() - start:.1f} s")
    torch.save(model.state_dict(), Path(folder) / "resnet18_finetuned.pt")
    return {"exit_code": 0}


def child(argv: list[str]) -> None:
    """One side, in this fresh process; prints JSON last."""
    parser = argparse.ArgumentParser(prog="p8_checkpoints child")
    parser.add_argument("side", choices=("ptviz", "tutorial"))
    parser.add_argument("--images", type=int, required=True)
    parser.add_argument("--runs-dir", required=True)
    args = parser.parse_args(argv)
    out = ptviz_side(args.images, args.runs_dir) if args.side == "ptviz" else tutorial_side(args.images, args.runs_dir)
    print(json.dumps(out))


def one_process(side: str, images: int, results: list[dict[str, Any]]) -> float:
    """Wall seconds of one whole process of `side` (its JSON kept in `results`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as tmp:
        argv = [sys.executable, "-m", "benchmarks.p8_checkpoints", "child", side, "--images", str(images),
                "--runs-dir", tmp]
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"p8 {side} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["exit_code"] != 0:
        raise RuntimeError(f"p8 {side} exited {out['exit_code']}:\n{done.stdout[-2000:]}")
    results.append({**out, "seconds": seconds})
    return seconds


def run(args: argparse.Namespace) -> list[Result]:
    """P8 rows: checkpoint bytes one epoch writes over one checkpoint file, and whole-process time ratio."""
    images = 2000
    results: dict[str, list[dict[str, Any]]] = {"ptviz": [], "tutorial": []}
    seconds = interleaved({side: (lambda side=side: one_process(side, images, results[side]))
                           for side in ("tutorial", "ptviz")}, args.repeats)
    ours = results["ptviz"][-1]
    one_file = max(ours["files"].values())
    tutorial_s, ptviz_s = median(seconds["tutorial"]), median(seconds["ptviz"])
    return [
        Result(case="P8", measure=f"checkpoint bytes written, recipe B, 1 epoch, {images} images / one file",
               value=ours["bytes_saved"] / one_file, unit="x", target=BYTES_TARGET, higher_is_better=False,
               baseline=f"one file {one_file / 1e6:.1f} MB", ours=f"{ours['bytes_saved'] / 1e6:.1f} MB "
               f"for {len(ours['files'])} names", raw={"ptviz": results["ptviz"]}),
        Result(case="P8", measure=f"whole process, recipe B, 1 epoch, {images} fake images: tutorial / ptviz",
               value=tutorial_s / ptviz_s, unit="x", target=SPEED_TARGET, higher_is_better=True,
               baseline=f"tutorial {tutorial_s:.1f} s", ours=f"{ptviz_s:.1f} s",
               raw={"seconds": seconds, "tutorial": results["tutorial"]}),
    ]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2:])
