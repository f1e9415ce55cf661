"""Training loops: ``python -m stager train {pix2pix,edgeconnect,diffusion}``.

Each run writes into ``--out`` (default ``models/weights``) the fp16 generator weights, and into
``--log-dir`` (default ``runs/<model>``) a resumable checkpoint, ``loss.csv``, ``loss.png`` and
periodic sample grids. Seeds make runs repeatable.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from stager.catalog import open_catalog
from stager.images import save_png

from . import diffusion as dm
from .data import PairPool
from . import edgeconnect as ec
from . import pix2pix as p2p
from .layers import count_params
from .weights_io import load_into, read_meta, save

WEIGHT_FILES = {
    "pix2pix": "pix2pix.safetensors",
    "edge": "edgeconnect_edge.safetensors",
    "inpaint_weighted": "edgeconnect_inpaint_weighted.safetensors",
    "inpaint_baseline": "edgeconnect_inpaint_baseline.safetensors",
    "diffusion": "diffusion.safetensors",
}


def _t(x: np.ndarray, scale: str = "01") -> torch.Tensor:
    """uint8 (B,H,W,3) -> float (B,3,H,W) in [0,1] or [-1,1]."""
    t = torch.from_numpy(x.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    return t * 2 - 1 if scale == "11" else t


def _m(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32))[:, None]


class Logger:
    def __init__(self, folder: Path, resume: bool, name: str = "loss"):
        self.folder = folder
        self.name = name
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{name}_loss.csv"
        self.rows: list[dict] = []
        if resume and self.path.is_file():
            with self.path.open() as f:
                self.rows = [{k: (int(float(v)) if k == "step" else float(v)) for k, v in r.items()}
                             for r in csv.DictReader(f)]

    def log(self, step: int, parts: dict) -> None:
        self.rows.append({"step": step, **parts})

    def flush(self) -> None:
        if not self.rows:
            return
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(self.rows)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        steps = np.array([r["step"] for r in self.rows])
        for k in keys[1:]:
            v = np.array([r.get(k, np.nan) for r in self.rows], float)
            x = steps
            if len(v) > 40:  # moving average for readability (full windows only)
                v = np.convolve(np.nan_to_num(v), np.ones(20) / 20, mode="valid")
                x = steps[19:]
            ax.plot(x, v, label=k)
        ax.set_yscale("symlog", linthresh=1e-2)  # adversarial terms can be negative
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(self.folder / f"{self.name}_loss.png", dpi=90)
        plt.close(fig)


def _grid(rows: list[np.ndarray]) -> np.ndarray:
    return np.vstack([np.hstack(list(r)) for r in rows])


def _ckpt(folder: Path, name: str) -> Path:
    return folder / f"{name}_ckpt.pt"


def _resume(path: Path, modules: dict, resume: bool) -> tuple[int, float]:
    """(step, wall seconds so far) from a checkpoint, or (0, 0) for a fresh run."""
    if resume and path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=False)
        for k, m in modules.items():
            m.load_state_dict(state[k])
        return int(state["step"]), float(state.get("wall_s", 0.0))
    return 0, 0.0


def _save_ckpt(path: Path, modules: dict, step: int, wall_s: float) -> None:
    torch.save({"step": step, "wall_s": wall_s, **{k: m.state_dict() for k, m in modules.items()}},
               path)


def _meta(kind: str, model, args, steps: int, wall: float, extra: dict | None = None) -> dict:
    return {"model": kind, "config": getattr(model, "config", {}), "res": args.res,
            "steps": steps, "batch": args.batch, "seed": args.seed, "device": args.device,
            "threads": torch.get_num_threads(), "wall_s": round(wall, 1),
            "params": count_params(model), "data": "default catalog, train split",
            **(extra or {})}


def train(args) -> dict:
    """Entry point used by the CLI; ``args`` has model, steps, res, batch, device, out, seed,
    resume, log_dir, width, stage, boundary_lambda, boundary_sigma, pairs, sample_every."""
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    out = Path(args.out)
    log_dir = Path(args.log_dir or f"runs/{args.model}")
    catalog = open_catalog()
    bar = tqdm(total=args.pairs, desc="preparing pairs", leave=False)
    pool = PairPool(
        catalog, args.pairs, args.res, args.seed, progress=lambda i, n: bar.update(50))
    bar.close()
    fn = {"pix2pix": _train_pix2pix, "edgeconnect": _train_edgeconnect,
          "diffusion": _train_diffusion}[args.model]
    return fn(args, pool, out, log_dir)


def _loop(args, name, log_dir, modules, step_fn, sample_fn):
    logger = Logger(log_dir, args.resume, name)
    ckpt = _ckpt(log_dir, name)
    start, before = _resume(ckpt, modules, args.resume)  # wall time accumulates over resumes
    t0 = time.time()
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc=name)
    for step in bar:
        parts = step_fn(step)
        logger.log(step + 1, parts)
        bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})
        if (step + 1) % args.sample_every == 0 or step + 1 == args.steps:
            save_png(log_dir / f"{name}_samples_{step + 1:06d}.png", sample_fn())
            _save_ckpt(ckpt, modules, step + 1, before + time.time() - t0)
            logger.flush()
    logger.flush()
    return before + time.time() - t0


def _train_pix2pix(args, pool, out, log_dir) -> dict:
    num_downs = int(np.log2(args.res))
    G = p2p.UNetGenerator(width=args.width, num_downs=num_downs)
    D = p2p.build_discriminator(args.width)
    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    fixed = pool.pix2pix_batch(4)

    def step_fn(step):
        inp, tgt = pool.pix2pix_batch(args.batch)
        x, y = _t(inp, "11"), _t(tgt, "11")
        fake = G(x)
        ld, pd = p2p.discriminator_loss(D, x, fake, y)
        od.zero_grad()
        ld.backward()
        od.step()
        lg, pg = p2p.generator_loss(D, x, fake, y)
        og.zero_grad()
        lg.backward()
        og.step()
        return {**pg, **pd}

    def sample_fn():
        G.eval()
        with torch.no_grad():
            f = ((G(_t(fixed[0], "11")) + 1) * 127.5).clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        G.train()
        return _grid([fixed[0], f, fixed[1]])

    wall = _loop(args, "pix2pix", log_dir, {"G": G, "D": D, "og": og, "od": od}, step_fn, sample_fn)
    path = save(G, out / WEIGHT_FILES["pix2pix"], _meta("pix2pix", G, args, args.steps, wall))
    return {"weights": str(path), "wall_s": wall}


def _train_edgeconnect(args, pool, out, log_dir) -> dict:
    results = {}
    Ge = ec.EdgeGenerator(args.width, args.blocks)
    edge_path = out / WEIGHT_FILES["edge"]
    fixed = pool.inpaint_batch(4, free_form=0.0)

    def edges_of(imgs, holes):
        gray = np.stack([ec.to_gray(i) for i in imgs])
        edges = np.stack([ec.canny(g) for g in gray]).astype(np.float32)
        return torch.from_numpy(gray)[:, None], torch.from_numpy(edges)[:, None]

    if args.stage in ("edge", "all"):
        De = ec.build_discriminator(1, args.width)
        og = torch.optim.Adam(Ge.parameters(), 1e-4, betas=(0.0, 0.9))
        od = torch.optim.Adam(De.parameters(), 1e-5, betas=(0.0, 0.9))
        bce = torch.nn.functional.binary_cross_entropy_with_logits

        def step_fn(step):
            imgs, holes = pool.inpaint_batch(args.batch)
            g, e = edges_of(imgs, holes)
            m = _m(holes)
            pred = Ge(torch.cat([g * (1 - m) + m, e * (1 - m), m], 1))
            # discriminator sees edges conditioned on the grey image (EdgeConnect)
            lr, _ = De(e)
            lf, _ = De(pred.detach())
            ld = 0.5 * (bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf)))
            od.zero_grad()
            ld.backward()
            od.step()
            lf, ff = De(pred)
            _, fr = De(e)
            adv = bce(lf, torch.ones_like(lf))
            fm = sum((a - b.detach()).abs().mean() for a, b in zip(ff, fr))
            lg = adv + 10.0 * fm
            og.zero_grad()
            lg.backward()
            og.step()
            return {"e_adv": adv.item(), "e_fm": fm.item(), "e_d": ld.item()}

        def sample_fn():
            g, e = edges_of(*fixed)
            m = _m(fixed[1])
            with torch.no_grad():
                p = Ge(torch.cat([g * (1 - m) + m, e * (1 - m), m], 1))
            to8 = lambda t: np.repeat((t[:, 0].numpy() * 255).astype(np.uint8)[..., None], 3, -1)
            return _grid([fixed[0], to8(e * (1 - m) + m * 0.3), to8(p), to8(e)])

        wall = _loop(args, "edge", log_dir, {"G": Ge, "D": De, "og": og, "od": od}, step_fn,
                     sample_fn)
        save(Ge, edge_path, _meta("edgeconnect_edge", Ge, args, args.steps, wall))
        results["edge"] = {"weights": str(edge_path), "wall_s": wall}
    if args.stage in ("inpaint", "all"):
        cfg = read_meta(edge_path).get("config", {})
        Ge = ec.EdgeGenerator(cfg.get("width", args.width), cfg.get("blocks", args.blocks))
        load_into(Ge, edge_path)
        Ge.requires_grad_(False)
        torch.manual_seed(args.seed)  # baseline and weighted start from the same init
        Gi = ec.InpaintGenerator(args.width, args.blocks)
        Di = ec.build_discriminator(3, args.width)
        og = torch.optim.Adam(Gi.parameters(), 1e-4, betas=(0.0, 0.9))
        od = torch.optim.Adam(Di.parameters(), 1e-5, betas=(0.0, 0.9))
        lam, sig = args.boundary_lambda, args.boundary_sigma
        name = "inpaint_baseline" if lam == 0 else "inpaint_weighted"
        data_rng = np.random.default_rng(args.seed + 7)  # same batches for both variants
        pool.rng = data_rng

        def fill(imgs, holes):
            g, e = edges_of(imgs, holes)
            m = _m(holes)
            with torch.no_grad():
                ep = Ge(torch.cat([g * (1 - m) + m, e * (1 - m), m], 1))
            edges = e * (1 - m) + ep * m
            x = _t(imgs)
            return x, m, Gi(torch.cat([x * (1 - m) + m, edges], 1))

        def step_fn(step):
            imgs, holes = pool.inpaint_batch(args.batch)
            x, m, out_ = fill(imgs, holes)
            w = torch.from_numpy(np.stack([ec.boundary_weight(h, lam, sig) for h in holes]))[:, None]
            lr, _ = Di(x)
            lf, _ = Di(out_.detach())
            ld = 0.5 * (torch.relu(1 - lr).mean() + torch.relu(1 + lf).mean())  # hinge
            od.zero_grad()
            ld.backward()
            od.step()
            lf, _ = Di(out_)
            adv = -lf.mean()
            l1 = ec.weighted_l1(out_, x, w, m)
            plain = ((out_ - x).abs() * m).sum() / m.sum().clamp_min(1)
            lg = l1 + 0.1 * adv
            og.zero_grad()
            lg.backward()
            og.step()
            return {"i_l1w": l1.item(), "i_adv": adv.item(), "i_d": ld.item(),
                    "hole_l1": plain.item()}

        def sample_fn():
            Gi.eval()
            with torch.no_grad():
                x, m, o = fill(*fixed)
            Gi.train()
            to8 = lambda t: (t.permute(0, 2, 3, 1).clamp(0, 1).numpy() * 255).astype(np.uint8)
            return _grid([to8(x * (1 - m) + m), to8(x * (1 - m) + o * m), fixed[0]])

        wall = _loop(args, name, log_dir, {"G": Gi, "D": Di, "og": og, "od": od}, step_fn,
                     sample_fn)
        path = save(Gi, out / WEIGHT_FILES[name],
                    _meta(f"edgeconnect_{name}", Gi, args, args.steps, wall,
                          {"boundary_lambda": lam, "boundary_sigma": sig,
                           "perceptual_style": "off: no VGG19 weights offline"}))
        results[name] = {"weights": str(path), "wall_s": wall}
    return results


def _train_diffusion(args, pool, out, log_dir) -> dict:
    unet = dm.build_unet(args.res, args.width)
    sched = dm.train_scheduler()
    opt = torch.optim.AdamW(unet.parameters(), 3e-4, weight_decay=1e-4)
    fixed = pool.inpaint_batch(4, free_form=0.0)

    def step_fn(step):
        imgs, holes = pool.inpaint_batch(args.batch)
        x, m = _t(imgs, "11"), _m(holes)
        noise = torch.randn_like(x)
        t = torch.randint(0, sched.config.num_train_timesteps, (x.shape[0],))
        noisy = sched.add_noise(x, noise, t)
        eps = unet(torch.cat([noisy, dm.condition(x, m)], 1), t).sample
        # weight the hole more: the known region is given to the sampler anyway
        w = 1.0 + 4.0 * m
        loss = (w * (eps - noise) ** 2).mean() / w.mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        return {"mse": loss.item()}

    def sample_fn():
        unet.eval()
        outs = np.stack([dm.sample(unet, i, h, steps=20, seed=0) for i, h in zip(*fixed)])
        unet.train()
        masked = np.where(fixed[1][..., None], 255, fixed[0]).astype(np.uint8)
        return _grid([masked, outs, fixed[0]])

    wall = _loop(args, "diffusion", log_dir, {"G": unet, "og": opt}, step_fn, sample_fn)
    unet.config_dict = dict(unet.config)
    path = save(unet, out / WEIGHT_FILES["diffusion"],
                _meta("diffusion", unet, args, args.steps, wall,
                      {"config": {"res": args.res, "width": args.width},
                       "objective": "eps, DDPM cosine 1000", "sampler": "DDIM (default) or DPM-Solver++"}))
    return {"diffusion": {"weights": str(path), "wall_s": wall}}
