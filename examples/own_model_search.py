"""Search compression recipes for your own PyTorch module, passed as an object.

    python examples/own_model_search.py [OUT_DIR]

A small classifier of the 8x8 digits is trained here in seconds; in your code it is the model you
have. frugalml has no code for this class, so every candidate is measured as ONNX, the form its
artifact takes. Running the script again resumes the same study (the same weights, the same name).
"""

from __future__ import annotations

import sys

import torch

from frugalml import load_dataset
from frugalml.config import config_from_dict
from frugalml.search import optimize


class TinyClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(64, 128)
        self.norm = torch.nn.LayerNorm(128)
        self.hidden = torch.nn.Linear(128, 128)
        self.out = torch.nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, 64) pixel intensities 0-16
        h = torch.relu(self.norm(self.inp(x)))
        return self.out(torch.relu(self.hidden(h)))


def train(epochs: int = 30) -> TinyClassifier:
    data = load_dataset("zoo:digits", split="train")
    x, y = torch.tensor(data.features()), torch.tensor(data.labels())
    torch.manual_seed(0)
    net = TinyClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            loss = torch.nn.functional.cross_entropy(net(x[i:i + 64]), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def main(out_dir: str) -> int:
    net = train()
    config = config_from_dict({
        "task": "classification", "data": "zoo:digits", "context": "edge-cpu",
        "budgets": {"quality_drop": 0.01},
        "search": {"trials": 8, "latency_max_s": 0.5},
    }, source="examples/own_model_search.py")
    result = optimize(config, model=net, example_inputs=torch.randn(8, 64), out_dir=out_dir, overwrite=True)
    print(f"model {result.config['model']}, study {result.study}")
    for c in result.candidates:
        mark = "*" if result.chosen and c["number"] == result.chosen["number"] else " "
        print(f"{mark} #{c['number']:<2} accuracy {c['quality']:.4f}  p95 {c['cost']:.4f} ms  "
              f"{'meets' if c['feasible'] else 'misses'} budgets  {c['recipe_text']}")
    if result.runoff:  # the finalists, timed again head to head
        print("run-off: " + ", ".join(f"#{f['number']} {f['trial_cost']:.4f} -> {f['cost']:.4f} ms"
                                      for f in result.runoff["finalists"]))
    print(result.why)
    if result.verdict is not None:
        print(f"gate on {out_dir}/model: {'pass' if result.verdict.passed else 'fail'}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "out/own-model"))
