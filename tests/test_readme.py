"""The README's Python API tour runs as written (from the repository root, as a reader would)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def test_readme_python_api_tour_runs(monkeypatch):
    text = (REPO / "README.md").read_text()
    tour = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S)
    assert tour, "README.md lost its Python API section"
    monkeypatch.chdir(REPO)
    namespace: dict = {}
    exec(compile(tour.group(1), "README.md", "exec"), namespace)
    assert namespace["logits"].shape == (2, 2)
    assert len(namespace["data"]) == 2000
    assert isinstance(namespace["finetuner"].model, torch.nn.Module)
