"""Helpers that Dask and Ray worker processes import (tests/ is on their path)."""

import os

import torch


class LoggedNet(torch.nn.Module):
    """A tiny conv backbone that appends its process id to ``log_path`` each
    time it is prepared (``eval()``): one line per backbone load."""

    def __init__(self, log_path, seed=0):
        super().__init__()
        self.log_path = str(log_path)  # not a parameter: not in the fingerprint
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv = torch.nn.Conv2d(3, 4, kernel_size=3)

    def train(self, mode=True):
        if not mode:
            with open(self.log_path, "a") as log:
                log.write(f"{os.getpid()}\n")
        return super().train(mode)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def loads_per_process(log_path):
    """{pid: number of loads} from a LoggedNet log."""
    counts = {}
    if os.path.exists(log_path):
        for line in open(log_path):
            counts[line.strip()] = counts.get(line.strip(), 0) + 1
    return counts
