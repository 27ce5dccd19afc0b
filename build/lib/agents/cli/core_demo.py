"""A plastic network learns to learn within an episode: pattern completion (Miconi 2016), under a minute on CPU.

Each episode shows a random +-1 pattern of 8 bits for a few steps, then blanks, then the same pattern with half
of its bits erased; the network must output the full pattern at the last step. Nothing about the pattern can be
learned across episodes: the network has to store it during the episode, in its Hebbian traces (or, for the
non-plastic RNN, in its hidden activity) and retrieve it from the partial cue. The script trains the plastic
core by backpropagation through the episode, prints the loss as it falls with the statistics of the Hebbian
trace and the learned plasticity parameters, then switches plasticity off (alpha = 0) in the trained network to
show that the memory lives in the traces.

    python scripts/demo.py                       # plastic core (decay rule), 400 updates, a few seconds
    python scripts/demo.py --core retroactive --baseline rnn
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import Tensor, nn

from plastic_core import RecurrentCore, core_names, count_parameters, make_core

BITS = 8
SHOW, BLANK = 3, 3  # steps showing the pattern, then blank steps before the cue


def episodes(batch: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Inputs (T, B, BITS) and targets (B, BITS): pattern x SHOW, zeros x BLANK, pattern with half erased."""
    patterns = torch.randint(0, 2, (batch, BITS), generator=gen).float() * 2 - 1
    erased = torch.rand(batch, BITS, generator=gen).argsort(dim=1) < BITS // 2
    cue = patterns.masked_fill(erased, 0.0)
    xs = torch.cat([patterns.expand(SHOW, -1, -1), torch.zeros(BLANK, batch, BITS), cue.unsqueeze(0)])
    return xs, patterns


class Completer(nn.Module):
    """A recurrent core read out linearly at the last step."""

    def __init__(self, core: RecurrentCore) -> None:
        super().__init__()
        self.core = core
        self.readout = nn.Linear(core.hidden_size, BITS)

    def forward(self, xs: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        hs, state = self.core.unroll(xs, self.core.initial_state(xs.shape[1]))
        return self.readout(hs[-1]), state


def train(core_name: str, hidden: int, updates: int, batch: int, lr: float, seed: int) -> float:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Completer(make_core(core_name, BITS, hidden))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    print(f"\n== {core_name}: {hidden} units, {count_parameters(model):,} parameters, {updates} updates of "
          f"{batch} episodes (loss: mean squared error per bit; 1.0 = output 0, 0.5 = copy the cue)")
    start, recent = time.perf_counter(), []
    for update in range(1, updates + 1):
        xs, target = episodes(batch, gen)
        output, state = model(xs)
        loss = (output - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recent.append(loss.item())
        if update % max(1, updates // 8) == 0 or update in (1, updates):
            line = f"update {update:4d}  loss {sum(recent) / len(recent):.3f}"
            if "hebb" in state:
                hebb = state["hebb"].detach()
                line += f"  |Hebb| mean {hebb.abs().mean():.3f} max {hebb.abs().max():.3f}"
            if hasattr(model.core, "eta"):
                line += f"  eta {model.core.eta.item():.3f}"
            if hasattr(model.core, "alpha"):
                line += f"  mean |alpha| {model.core.alpha.detach().abs().mean():.3f}"
            print(f"{line}  ({time.perf_counter() - start:.1f}s)", flush=True)
            recent = []
    with torch.no_grad():
        xs, target = episodes(1000, gen)
        final = (model(xs)[0] - target).pow(2).mean().item()
        print(f"{core_name}: held-out loss {final:.3f}")
        if hasattr(model.core, "alpha"):  # the same network with its plastic weights switched off
            model.core.alpha.zero_()
            frozen = (model(xs)[0] - target).pow(2).mean().item()
            verdict = "the memory lives in the Hebbian traces" if frozen > 1.5 * final else "plasticity barely used"
            print(f"{core_name}: held-out loss with plasticity switched off (alpha = 0): {frozen:.3f} ({verdict})")
    return final


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", default="plastic", choices=core_names(), help="core to train (default plastic)")
    parser.add_argument("--baseline", default="none", choices=["none", *core_names()],
                        help="also train this core the same way, for comparison (default none)")
    parser.add_argument("--hidden", type=int, default=16, help="hidden units (default 16)")
    parser.add_argument("--updates", type=int, default=400, help="gradient updates (default 400)")
    parser.add_argument("--batch", type=int, default=32, help="episodes per update (default 32)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {args.core: train(args.core, args.hidden, args.updates, args.batch, args.lr, args.seed)}
    if args.baseline != "none":
        results[args.baseline] = train(args.baseline, args.hidden, args.updates, args.batch, args.lr, args.seed)
    print("\nheld-out loss: " + ", ".join(f"{name} {loss:.3f}" for name, loss in results.items()))


if __name__ == "__main__":
    sys.exit(main())
