"""A character-level language model on a text file in the repository (examples/data/lighthouse.txt, written
for ptviz and dedicated to the public domain): a GRU predicts each next character of 32-character windows.

    ptviz-tui --task examples/charlm.py:make
    python examples/charlm.py

Its loss is the mean cross-entropy per character; `bpc` (bits per character) and `acc` (next-character
accuracy) are charted and logged beside it. Batches are dicts, as a tokenizer's would be.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

import ptviz

TEXT = Path(__file__).with_name("data") / "lighthouse.txt"
WINDOW = 32  # characters of context per sample
STRIDE = 3  # characters between the starts of consecutive windows


class Windows(Dataset):
    """Windows of a text as character ids: `input` and `target`, the same window one character later."""

    def __init__(self, ids: torch.Tensor):
        self.ids = ids

    def __len__(self) -> int:
        return max(0, (len(self.ids) - WINDOW - 1) // STRIDE)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        start = index * STRIDE
        chunk = self.ids[start:start + WINDOW + 1]
        return {"input": chunk[:-1], "target": chunk[1:]}


class CharGRU(nn.Module):
    """Embedding, one GRU layer and a linear read-out over the vocabulary."""

    def __init__(self, vocab: int, width: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        self.gru = nn.GRU(32, width, batch_first=True)
        self.head = nn.Linear(width, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.gru(self.embed(ids))
        return self.head(hidden)


def loss(model: nn.Module, batch: dict[str, torch.Tensor]):
    """Cross-entropy per character, with bits per character and next-character accuracy."""
    logits = model(batch["input"])
    target = batch["target"]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
    accuracy = (logits.argmax(-1) == target).float().mean()
    return ce, {"bpc": ce.detach() / math.log(2), "acc": accuracy}


def make(config=None) -> ptviz.Task:
    """The task: the first 90% of the text trains, the rest tests; Adam at the run's learning rate."""
    text = TEXT.read_text(encoding="utf-8")
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(c) for c in text], dtype=torch.long)
    cut = int(len(ids) * 0.9)
    lr = config.optim.lr if config is not None else 0.01
    return ptviz.Task(model=CharGRU(len(vocab)), train=Windows(ids[:cut]), test=Windows(ids[cut:]), loss=loss,
                      optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=lr), kind="language-model",
                      name="charlm")


if __name__ == "__main__":
    ptviz.fit(make(), epochs=10, lr=0.01, batch_size=32)
