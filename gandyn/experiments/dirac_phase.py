"""dirac-phase: Dirac-GAN phase portraits (Mescheder et al. 2018) and their eigenvalues checked.

For each loss and update rule, the spectral radius of the one-step map's Jacobian at the equilibrium by
autograd (``rho_<update>_<loss>``) and, where a closed form exists, from it (``rho_closed_<update>_<loss>``).
"""
from __future__ import annotations

import torch

from analysis.linearisation import eigenvalues, max_eigen_difference, spectral_radius
from games.linearisation import field_jacobian, update_map_jacobian
from analysis.plots import new_figure, phase_portrait
from flows import gradient_flow
from games import DiracGAN, SGA

from ..experiment import Experiment

LOSSES = {  # label: game options
    "GAN": dict(loss="gan"),
    "NS-GAN": dict(loss="ns-gan"),
    "WGAN": dict(loss="wgan"),
    "WGAN-GP": dict(loss="wgan-gp", gamma=1.0),
    "R1 γ=0.3": dict(loss="gan", gamma=0.3),
    "R1 γ=1": dict(loss="gan", gamma=1.0),
}
UPDATES = {"sim": ("sim", 1), "alt n_D=1": ("alt-d", 1), "alt n_D=5": ("alt-d", 5)}


def run(config, report, quick: bool):
    h, steps = config.sga.lr, config.sga.steps
    dtype = config.run.torch_dtype
    x0 = torch.tensor([[1.0, 1.0]], dtype=dtype)
    fig, axes = new_figure(len(LOSSES), len(UPDATES) + 1, size=(2.6, 2.6))
    errors, rows = {}, []
    for i, (label, options) in enumerate(LOSSES.items()):
        game = DiracGAN(**options)
        x_star = game.equilibrium(dtype=dtype)
        flow = gradient_flow(game, x0, h * steps, n_records=steps + 1, rtol=1e-7, atol=1e-9)
        report.trajectory(flow, _key(label, "flow"))
        jac = eigenvalues(field_jacobian(game, x_star))
        cases = [("flow", jac, game.offered("flow_eigenvalues"), flow.states[:, 0])]
        for name, (update, n_d) in UPDATES.items():
            sga = SGA(game, lr=h, update=update, n_d=n_d)
            traj = sga.run(steps, K=1, x0=x0, seed=config.run.seed, dtype=dtype)
            report.trajectory(traj, _key(label, name))
            auto = eigenvalues(update_map_jacobian(sga, x_star))
            cases.append((name, auto, game.offered("gd_eigenvalues", h, update, n_d), traj.states[:, 0]))
        for j, (name, auto, exact, path) in enumerate(cases):
            ax = axes[i, j]
            phase_portrait(ax, game.expected_field, (-2, 2), (-2, 2), [path.numpy()])
            ax.set_title(f"{label}, {name}", fontsize=8)
            key = _key(label, name)
            report.key(f"rho_{key}", spectral_radius(auto))
            if exact is not None:
                errors[key] = max_eigen_difference(auto, exact)
                report.key(f"rho_closed_{key}", spectral_radius(exact))
            rows.append(f"| {label} | {name} | {spectral_radius(auto):.6f} | "
                        f"{'—' if exact is None else f'{spectral_radius(exact):.6f}'} | "
                        f"{'—' if exact is None else f'{errors[key]:.1e}'} | {float(path[-1].norm()):.3g} |")
    report.figure(fig, "dirac_phase", f"Dirac-GAN: field and trajectories, h = {h}, {steps} steps")
    report.key("eigen_max_abs_error", max(errors.values()))
    report.key("eigen_cases_compared", len(errors))
    report.text("Spectral radius of the one-step map's Jacobian at the equilibrium (for the flow: "
                "of DV), by autograd through the update code and from THEORY §3; the error is the "
                "largest eigenvalue difference.\n\n| loss | update | ρ autograd | ρ closed form | "
                "max |Δλ| | |x_end| |\n|---|---|---|---|---|---|\n" + "\n".join(rows))


def _key(label: str, update: str) -> str:
    clean = lambda s: s.lower().replace(" ", "_").replace("γ=", "g").replace("-", "").replace(".", "")  # noqa: E731
    return f"{clean(update).replace('n_d=', 'nd')}_{clean(label)}"


EXPERIMENT = Experiment(
    name="dirac-phase",
    title="Dirac-GAN phase portraits (Mescheder et al. 2018)",
    rank=1,
    run=run,
    defaults={"game.name": "dirac", "sga.lr": 0.2, "sga.steps": 500, "run.paths": 1},
)
