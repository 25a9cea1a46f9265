"""CIFAR ResNets with SkipNet-style recurrent gates, as the official E2-Train code uses for selective layer
update (GATECH-EIC/E2Train ``models/efficient_resnet.py``, ResNetRecurrentGateSP; see
../shared/reference/e2train-paper.md §4).

Per gated block: global average pool of the previous block's output, a 1x1 conv (no bias) to 10 channels,
one step of ONE LSTM (input 10, hidden 10) shared by all gates, linear 10->1, sigmoid, and a hard Bernoulli
decision with a straight-through gradient (sampled in eval mode as well, as the official code does). The
first block always runs. A skipped block passes its input through for that sample; the downsample shortcut
still runs (SkipNet). As in the official code the block is computed for the whole batch and the decision
mixes its output with the shortcut, so the gate gets a task-loss gradient from every sample (with
``skipped_forward=False`` only from the executed ones).

Module names equal the workload's layer names (``layer2.1.conv1``, ``layer2.0.downsample.0``); the gate of
block ``b`` is ``b.gate.conv``; the shared LSTM and projection belong to the first gated block's gate
(``layer1.1.gate.lstm`` / ``.proj``), as in the techniques stage (``e2sim.techniques.slu``).
"""
from __future__ import annotations

import torch
from torch import nn

from .models import BasicBlock, CifarResNet

EMBED_DIM = 10  # official code: embed_dim=10
HIDDEN_DIM = 10  # official code: hidden_dim=10


class Gate(nn.Module):
    """Average pool + 1x1 conv of the feature map a gate reads. The first gate also owns the LSTM and the
    projection that every gate shares (the techniques stage's ``weights_from``)."""

    def __init__(self, channels: int, owner: bool):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(channels, EMBED_DIM, 1, bias=False)
        if owner:
            self.lstm = nn.LSTM(EMBED_DIM, HIDDEN_DIM)
            self.proj = nn.Linear(HIDDEN_DIM, 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.conv(self.pool(x)), 1)

    def decide(self, feature: torch.Tensor, state):
        """One LSTM step and the hard decision (called on the owner gate)."""
        out, state = self.lstm(feature.unsqueeze(0), state)
        prob = torch.sigmoid(self.proj(out[0]))[:, 0]
        hard = (prob > torch.rand_like(prob)).to(prob.dtype)
        # Straight-through: the forward value is the 0/1 decision, the gradient is that of the probability.
        return hard.detach() - prob.detach() + prob, prob, state


class GatedCifarResNet(CifarResNet):
    """CIFAR ResNet whose blocks after the first are skippable per sample.

    ``forward`` returns ``(logits, masks, probs)``: one ``[batch]`` tensor per gated block, in block order.
    """

    def __init__(self, depth: int, classes: int = 10, skipped_forward: bool = True):
        super().__init__(depth, classes)
        # skipped_forward: a skipped sample's block output enters the straight-through gate gradient (the
        # official code; the block must run forward for it). False: a skipped block contributes nothing, so
        # its gate learns from the executed samples and the regulariser only (a device that truly skips).
        self.skipped_forward = skipped_forward
        self.gated_blocks: list[str] = []
        for name, block in self.named_blocks()[1:]:
            block.gate = Gate(block.conv1.in_channels, owner=not self.gated_blocks)
            nn.init.kaiming_normal_(block.gate.conv.weight, mode="fan_out", nonlinearity="relu")
            self.gated_blocks.append(name)

    @property
    def control(self) -> Gate:
        """The gate that owns the shared LSTM and projection."""
        return self.named_blocks()[1][1].gate

    def named_blocks(self) -> list[tuple[str, BasicBlock]]:
        return [(f"layer{s}.{i}", b) for s in (1, 2, 3) for i, b in enumerate(getattr(self, f"layer{s}"))]

    def forward(self, x: torch.Tensor):
        x = self.stem(x)
        blocks = self.named_blocks()
        x = blocks[0][1](x)
        state = None
        masks, probs = [], []
        for _, block in blocks[1:]:
            mask, prob, state = self.control.decide(block.gate.embed(x), state)
            shortcut = block.shortcut(x)
            out = block.relu2(block.residual(x) + shortcut)
            # Without the skipped block's output the decision of a skipped sample gets no task gradient.
            m = (mask if self.skipped_forward else mask * mask.detach()).view(-1, 1, 1, 1)
            x = m * out + (1 - m) * shortcut
            masks.append(mask)
            probs.append(prob)
        return self.head(x), masks, probs
