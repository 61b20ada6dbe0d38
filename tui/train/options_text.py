"""One line naming the training options a run uses, for the log pane and the headless output."""

from __future__ import annotations

from typing import Any


def options_line(config: dict[str, Any]) -> str:
    """'accumulate 4 batches a step (effective batch 256), clip grad norm at 1, ...'; empty when none is on."""
    train, optim = config.get("train", {}), config.get("optim", {})
    parts = []
    if train.get("accumulate", 1) > 1:
        k = train["accumulate"]
        batch = config.get("data", {}).get("batch_size")
        effective = f" (effective batch {k * batch:,})" if isinstance(batch, int) else ""
        parts.append(f"accumulate {k} batches a step{effective}")
    if train.get("clip_norm"):
        parts.append(f"clip grad norm at {train['clip_norm']:g}")
    if optim.get("warmup_steps"):
        parts.append(f"warm-up {optim['warmup_steps']:,} steps")
    if train.get("ema_decay"):
        parts.append(f"weight average (EMA) decay {train['ema_decay']:g}")
    if train.get("early_stop_metric", "none") != "none":
        delta = f" by > {train['early_stop_min_delta']:g}" if train.get("early_stop_min_delta") else ""
        parts.append(f"early stop when {train['early_stop_metric']} has not improved{delta} "
                     f"for {train.get('early_stop_patience', 0)} epochs")
    return ", ".join(parts)
