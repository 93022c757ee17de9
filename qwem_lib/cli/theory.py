"""``qwem theory``: the closed-form timescales and singular-value curves of training
from small initialisation (:mod:`qwem_lib.dynamics`), as a table and JSON."""

from __future__ import annotations

import argparse

from ..runtime.errors import QwemError
from ._inputs import corpus_input, mstar_inputs
from ._parser import add_corpus_options, integer, real
from ._streams import check_sink


def add_parser(subparsers) -> None:
    """``qwem theory`` and its options."""
    h = subparsers.add_parser(
        "theory", help="predicted timescales and training curves",
        description="Top-d eigenvalues of M*, the timescales "
        "tau_k = ln(lambda_k / s0^2) / lambda_k and half-learned times for init "
        "scale S (s0^2 = S^2), and the closed-form curves s_k^2(t) on a log-spaced "
        "time grid, as JSON.")
    add_corpus_options(h)
    h.add_argument("--init-scale", type=real, default=1e-8, metavar="S")
    h.add_argument("--points", type=integer(2, 10**6), default=200,
                   help="time points of the predicted curves (default 200)")
    h.add_argument("--out", metavar="JSON", help="write the predictions here")
    h.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    """Refuse, before any work, an init scale or a grid that cannot be used, and an
    output that would replace an input."""
    from ..runtime._atomic import check_outputs
    from ..train import TrainConfig

    if not args.init_scale > 0:
        raise QwemError(f"--init-scale must be > 0 (training starts from small "
                        f"random weights; the paper's is 1e-8), got "
                        f"{args.init_scale:g}")
    TrainConfig(init_scale=args.init_scale)  # S^2 neither under- nor overflows
    if args.points < 2:
        raise QwemError(f"--points must be at least 2, got {args.points}")
    check_outputs([("--out", args.out)], corpus_input(args, [("--out", args.out)]))
    check_sink("--out", args.out)


def _positive_eigvals(M, dim: int):
    """The top ``dim`` eigenvalues of M*, all of them positive (a mode with
    lambda <= 0 is never learned)."""
    import torch

    from ..spectral import top_eigh

    eig = top_eigh(M, dim, work_dtype=torch.float32)
    lam = eig.eigvals.cpu().numpy()
    n_pos = int((lam > 0).sum())
    if n_pos < len(lam):
        raise QwemError(f"only {n_pos} of the top {len(lam)} eigenvalues of M* are "
                        "positive, and a mode with lambda <= 0 is never learned (its "
                        f"timescale is infinite); choose --dim <= {n_pos}")
    return lam


def run(args: argparse.Namespace) -> int:
    """Print each mode's eigenvalue, timescale and half-learned time (and write the
    curves to ``--out``)."""
    import numpy as np

    from ..dynamics import init_scale_to_s2, mode_trajectory, timescales
    from ..runtime._atomic import write_json

    _check(args)
    _tokens, _P, _u, M, _device = mstar_inputs(args, eigen=True)
    del _P, _u
    lam = _positive_eigvals(M, args.dim)
    s2_0 = init_scale_to_s2(args.init_scale, args.dim, args.vocab_size)
    ts = timescales(lam, s2_0)
    tau = np.asarray(ts.tau, dtype=float)
    t_grid = np.geomspace(tau[0] / 100, 2 * tau[-1], args.points)
    curves = mode_trajectory(t_grid, lam, s2_0).cpu().numpy()
    print(f"{'k':>4} {'lambda_k':>10} {'tau_k':>10} {'t_half':>10}")
    for k in range(len(lam)):
        print(f"{k + 1:4d} {lam[k]:10.4g} {tau[k]:10.4g} {float(ts.t_half[k]):10.4g}")
    if args.out:
        report = {"init_scale": args.init_scale, "s2_0": s2_0,
                  "eigvals": lam.tolist(), "tau": tau.tolist(),
                  "t_half": np.asarray(ts.t_half, dtype=float).tolist(),
                  "t": t_grid.tolist(), "s2": curves.tolist()}
        write_json(args.out, report)
    return 0

