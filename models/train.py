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
from .data import InpaintPool, PairPool
from . import edgeconnect as ec
from . import pix2pix as p2p
from .layers import count_params
from .weights_io import WEIGHT_FILES, load_into, read_meta, save



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


def _resume(path: Path, modules: dict, resume: bool) -> tuple[int, float, int | None]:
    """(step, wall seconds so far, planned total steps or None) from a checkpoint, or
    (0, 0, None) for a fresh run."""
    if resume and path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=False)
        for k, m in modules.items():
            m.load_state_dict(state[k])
        planned = state.get("planned_steps")
        return (int(state["step"]), float(state.get("wall_s", 0.0)),
                int(planned) if planned else None)
    return 0, 0.0, None


def _save_ckpt(path: Path, modules: dict, step: int, wall_s: float,
               planned_steps: int | None = None) -> None:
    torch.save({"step": step, "wall_s": wall_s, "planned_steps": planned_steps,
                **{k: m.state_dict() for k, m in modules.items()}}, path)


def _meta(kind: str, model, args, steps: int, wall: float, extra: dict | None = None) -> dict:
    return {"model": kind, "config": getattr(model, "config", {}), "res": args.res,
            "steps": steps, "batch": args.batch, "seed": args.seed, "device": str(resolve_device(args.device)),
            "threads": torch.get_num_threads(), "wall_s": round(wall, 1),
            "params": count_params(model), "data": "default catalog, train split",
            "torch": torch.__version__,
            **(extra or {})}


def model_defaults(args) -> None:
    """Fill the settings left unset (None) with each model's defaults: width 16, batch 8 and
    lr 1e-4 (EdgeConnect's generator), but width 24, batch 16 and lr 1e-3 for the shade model."""
    shade = args.model == "shade"
    for k, default in (("width", 24 if shade else 16), ("batch", 16 if shade else 8),
                       ("lr", 1e-3 if shade else 1e-4)):
        if getattr(args, k, None) is None:
            setattr(args, k, default)


def train(args) -> dict:
    """Entry point used by the CLI; ``args`` has model, steps, res, batch, device, out, seed,
    resume, log_dir, width, stage, boundary_lambda, boundary_sigma, pairs, sample_every."""
    if resolve_device(args.device).type == "cuda":
        torch.backends.cudnn.benchmark = True
    model_defaults(args)
    if args.model == "shade":
        from stager.config import get_settings

        if args.shade_seed == get_settings().catalog_seed:
            raise ValueError(f"--shade-seed {args.shade_seed} is the default catalog's seed: its "
                             "held-out scenes would be trained on; pick another")
        if getattr(args, "init", None):  # the pool is built at the network's own window size
            args.res = int(read_meta(_init_weights(args, "shade"))["config"].get("res", args.res))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    out = Path(args.out)
    log_dir = Path(args.log_dir or f"runs/{args.model}")
    shares = None
    if args.model == "edgeconnect":
        from .data import parse_shares

        shares = parse_shares(getattr(args, "shares", None), args.data)  # before any build
    catalog = open_catalog() if args.model in ("pix2pix", "diffusion") or (
        args.model == "edgeconnect" and args.data != "real"
        and (shares is None or shares.get("catalog", 0) > 0)) else None
    bar = tqdm(total=1, desc="preparing training data", leave=False)

    def progress(i, n):
        bar.total = n
        bar.n = i
        bar.refresh()

    if args.model == "shade":
        from .shade import ShadePool

        pool = ShadePool(args.scenes, args.res, args.shade_seed, progress=progress,
                         negatives=getattr(args, "negatives", 0.15),
                         texture=getattr(args, "texture", 0.3),
                         rooms=getattr(args, "rooms", 0.0),
                         shadowless=getattr(args, "shadowless", 0.0))
    elif args.model == "edgeconnect":
        pool = InpaintPool(catalog, args.res, args.crops, args.holes, args.data, args.seed,
                           progress=progress, workers=args.workers, shares=shares)
    else:
        pool = PairPool(catalog, args.pairs, args.res, args.seed, progress=progress)
    bar.close()
    fn = {"pix2pix": _train_pix2pix, "edgeconnect": _train_edgeconnect,
          "diffusion": _train_diffusion, "shade": _train_shade}[args.model]
    return fn(args, pool, out, log_dir)


def _loop(args, name, log_dir, modules, step_fn, sample_fn):
    """Run ``step_fn`` to ``args.steps`` with a progress bar, checkpoints and resume. With
    ``args.max_minutes`` the step count is planned after 20 timed steps to fit the budget and
    re-planned every 25 steps (every model in one loop still trains the same steps);
    ``args.steps`` is updated in place."""
    logger = Logger(log_dir, args.resume, name)
    ckpt = _ckpt(log_dir, name)
    start, before, planned = _resume(ckpt, modules, args.resume)  # wall time accumulates
    if planned and getattr(args, "max_minutes", 0):
        args.steps = min(args.steps, planned)  # the cosine schedule keeps its planned length
    t0 = time.time()
    budget = getattr(args, "max_minutes", 0) or 0
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc=name)
    step = start
    t_probe = None
    cap = args.steps
    while step < args.steps:
        parts = step_fn(step)
        logger.log(step + 1, parts)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()})
        if budget and step - start == 4:
            t_probe = time.time()  # after warm-up (cudnn autotune, allocations)
        if budget and t_probe is not None and step - start >= 24 and (step - start) % 25 == 24:
            # re-planned every 25 steps from the pace so far: a machine that gets busier
            # (or quieter) mid-run still ends near the budget, never past the asked steps
            per = (time.time() - t_probe) / (step - start - 4)
            left = budget * 60 - before - (time.time() - t0)  # resumes share one budget
            args.steps = min(cap, step + 1 + max(int(left / per * 0.97), 1))
            bar.total = args.steps
        if (step + 1) % args.sample_every == 0 or step + 1 == args.steps:
            save_png(log_dir / f"{name}_samples_{step + 1:06d}.png", sample_fn())
            _save_ckpt(ckpt, modules, step + 1, before + time.time() - t0,
                       args.steps if budget else None)
            logger.flush()
        step += 1
    bar.close()
    logger.flush()
    return before + time.time() - t0


def _train_pix2pix(args, pool, out, log_dir) -> dict:
    num_downs = int(np.log2(args.res))
    dev = resolve_device(args.device)
    G = p2p.UNetGenerator(width=args.width, num_downs=num_downs).to(dev)
    D = p2p.build_discriminator(args.width).to(dev)
    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    fixed = pool.pix2pix_batch(4)

    def step_fn(step):
        inp, tgt = pool.pix2pix_batch(args.batch)
        x, y = _t(inp, "11").to(dev), _t(tgt, "11").to(dev)
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
            f = ((G(_t(fixed[0], "11").to(dev)) + 1) * 127.5).clamp(0, 255).byte()
            f = f.permute(0, 2, 3, 1).cpu().numpy()
        G.train()
        return _grid([fixed[0], f, fixed[1]])

    wall = _loop(args, "pix2pix", log_dir, {"G": G, "D": D, "og": og, "od": od}, step_fn, sample_fn)
    path = save(G.cpu(), out / WEIGHT_FILES["pix2pix"], _meta("pix2pix", G, args, args.steps, wall))
    return {"weights": str(path), "wall_s": wall}


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when ``torch.cuda.is_available()`` else CPU; ``cuda`` without a GPU is
    an error that says so."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible here; use --device auto or cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"--device {name!r}: choose auto, cpu or cuda")
    return torch.device(name)


def _autocast(device: torch.device):
    """bf16 mixed precision on CUDA; a no-op context on the CPU."""
    import contextlib

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class _EMA:
    """Exponential moving average of a model's parameters (what is saved and evaluated)."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        import copy

        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        # warm-up: early on the average follows the weights closely, so a short run is not
        # dominated by the initial weights (0.999^500 would still be 61% initialisation)
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.is_floating_point():
                e.lerp_(p, 1 - d)


def _init_weights(args, key: str) -> Path | None:
    """The file to fine-tune from (``--init`` folder), or None for a fresh start."""
    if not getattr(args, "init", None):
        return None
    p = Path(args.init) / WEIGHT_FILES[key]
    if not p.is_file():
        raise ValueError(f"--init {args.init}: {p.name} not found there")
    return p


def _data_note(args, pool) -> str:
    note = {"mix": "default catalog train split + imported scenes (4/5) + bundled real photos "
                   "(train split) + procedural textures",
            "catalog": "current catalog: default train split + imported scenes (4/5)",
            "real": "bundled real photos (train split)"}[args.data]
    if getattr(args, "shares", None):
        note += f" (--shares {args.shares})"
    return f"{note}; {pool.describe()}; self-supervised product-shaped gaps (stager.gaps)"


def _train_edgeconnect(args, pool, out, log_dir) -> dict:
    """Edge model, then one inpainting model per (variant, seed); the variants of one seed see
    the same batches (one data stream per seed) and start from the same initial weights."""
    dev = resolve_device(args.device)
    res = {}
    edge_path = out / WEIGHT_FILES["edge"]
    eye = np.random.default_rng(10_000)
    fixed_idx = pool.batch(eye, 4)
    fixed = pool.take(fixed_idx)

    def grey_edges(imgs, edges, holes):
        g = torch.from_numpy(np.stack([ec.to_gray(i) for i in imgs]))[:, None].to(dev)
        e = torch.from_numpy(edges)[:, None].to(dev)
        return g, e, _m(holes).to(dev)

    if args.stage in ("edge", "all"):
        init = _init_weights(args, "edge")
        cfg = read_meta(init)["config"] if init else {"width": args.edge_width or args.width,
                                                       "blocks": args.blocks}
        torch.manual_seed(args.seed)
        Ge = ec.EdgeGenerator(cfg["width"], cfg["blocks"])
        if init:
            load_into(Ge, init).train()
        Ge.to(dev)
        De = ec.build_discriminator(2, cfg["width"]).to(dev)  # (edges, grey), as EdgeConnect
        og = torch.optim.Adam(Ge.parameters(), args.lr, betas=(0.0, 0.9))
        od = torch.optim.Adam(De.parameters(), args.lr / 10, betas=(0.0, 0.9))
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        rng = np.random.default_rng(args.seed)
        steps = args.edge_steps or args.steps

        def step_fn(step):
            g, e, m = grey_edges(*pool.take(pool.batch(rng, args.batch)))
            with _autocast(dev):
                pred = Ge(torch.cat([g * (1 - m) + m, e * (1 - m), m], 1))
                lr_, fr = De(torch.cat([e, g], 1))
                lf, _ = De(torch.cat([pred.detach(), g], 1))
                ld = 0.5 * (bce(lr_.float(), torch.ones_like(lr_.float()))
                            + bce(lf.float(), torch.zeros_like(lf.float())))
            od.zero_grad()
            ld.backward()
            od.step()
            with _autocast(dev):
                lf, ff = De(torch.cat([pred, g], 1))
                adv = bce(lf.float(), torch.ones_like(lf.float()))
                fm = sum((a.float() - b.detach().float()).abs().mean() for a, b in zip(ff, fr))
                lg = adv + 10.0 * fm
            og.zero_grad()
            lg.backward()
            og.step()
            return {"e_adv": adv.item(), "e_fm": fm.item(), "e_d": ld.item()}

        def sample_fn():
            g, e, m = grey_edges(*fixed)
            with torch.no_grad():
                p = Ge(torch.cat([g * (1 - m) + m, e * (1 - m), m], 1)).float()
            to8 = lambda t: np.repeat((t[:, 0].cpu().numpy() * 255).astype(np.uint8)[..., None],
                                      3, -1)
            return _grid([fixed[0], to8(e * (1 - m) + m * 0.3), to8(p), to8(e)])

        a = _copy_args(args, steps=steps)
        wall = _loop(a, "edge", log_dir, {"G": Ge, "D": De, "og": og, "od": od}, step_fn,
                     sample_fn)
        save(Ge.cpu(), edge_path, _meta("edgeconnect_edge", Ge, a, a.steps, wall,
                                        {"data": _data_note(args, pool), "init": str(init or ""),
                                         "discriminator": "2 channels: edges, grey"}))
        res["edge"] = {"weights": str(edge_path), "wall_s": wall}
    if args.stage in ("inpaint", "all"):
        if not edge_path.is_file() and getattr(args, "init", None):
            import shutil  # fine-tuning the inpainting models only: reuse the init's edge model

            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(args.init) / WEIGHT_FILES["edge"], edge_path)
        if not edge_path.is_file():
            raise ValueError(f"{edge_path} not found: train the edge model first "
                             "(--stage edge) or fine-tune with --init FOLDER")
        res.update(_train_inpaint(args, pool, out, log_dir, dev, edge_path, fixed_idx, grey_edges))
    return res


class _RingBatch:
    """One training batch of the inpainting stage, as numpy arrays, built exactly as a staging
    job runs a model (``fill_plate``): the classical prior (``kind``: Telea or line-guided
    Telea) fills the whole hole, the part deep under the new product keeps that fill as context,
    and the model fills the visible ring (a residual model starting from that fill there).
    Returns (truth, model input image, grey, edges, ring mask, {lambda: boundary weights}); the
    boundary weights are the whole hole's: distance to the *known background*, the seam that
    shows, not the ring's inner edge under the product. Picklable, for worker processes."""

    def __init__(self, pool: InpaintPool, kind: str, sigma: float, fsr_mix: float = 0.0,
                 fsr_max_px: int = 8000):
        self.pool, self.kind, self.sigma = pool, kind, sigma
        self.fsr_mix, self.fsr_max_px = fsr_mix, fsr_max_px

    def __call__(self, idx, lams) -> tuple:
        imgs, _, holes = self.pool.take(idx)
        hidden = self.pool.take_hidden(idx)
        pri = np.stack([ec.classical_prior(i, h, self.kind) for i, h in zip(imgs, holes)])
        xin = np.where(holes[..., None], pri, imgs)
        rings = holes & ~hidden
        if self.fsr_mix > 0:  # as the backend does: FSR of the ring, around the prior's fill
            xin = np.stack([ec.blend_fsr(x, r, self.fsr_mix, self.fsr_max_px)
                            for x, r in zip(xin, rings)])
        grey = np.stack([ec.to_gray(i) for i in xin])
        e = np.stack([ec.canny(gr) for gr in grey]).astype(np.float32)
        ws = {k: self.pool.take_weights(idx, k, self.sigma)[:, None] for k in lams}
        return (np.ascontiguousarray(imgs), xin, grey[:, None], e[:, None],
                rings[:, None].astype(np.float32), ws)


def _to_dev(batch: tuple, dev: torch.device) -> tuple:
    """A ``_RingBatch`` (numpy, or tensors from a loader) as float tensors on ``dev``: one
    conversion for both, so a batch built in a worker equals one built inline, bit for bit
    (the images travel as uint8 and become [0, 1] floats on the device)."""
    # non_blocking: a loader's batches come in pinned memory on CUDA (copied while the GPU
    # works); from numpy it is an ordinary copy
    conv = lambda a: torch.as_tensor(a).to(dev, non_blocking=True)  # noqa: E731
    rgb = lambda a: conv(a).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
    imgs, xin, grey, e, rings, ws = batch
    return (rgb(imgs), rgb(xin), conv(grey), conv(e), conv(rings),
            {k: conv(w) for k, w in ws.items()})


class _Steps(torch.utils.data.Dataset):
    """Map-style view for ``DataLoader``: the sampler hands over each step's batch indices."""

    def __init__(self, make: _RingBatch, lams):
        self.make, self.lams = make, lams

    def __getitem__(self, per_seed):
        return {s: self.make(idx, self.lams) for s, idx in per_seed.items()}


def _prefetch(make: _RingBatch, plan, lams, workers: int, dev: torch.device):
    """Iterator of per-seed batches in ``plan``'s order. ``workers`` <= 1 builds each when it is
    asked for, in this process; more start that many worker processes (spawned: OpenCV's and
    OpenMP's thread pools do not survive a fork) that build batches ahead, in order, so the
    batch stream is the same either way."""
    if workers <= 1:
        return ({s: make(idx, lams) for s, idx in per_seed.items()} for per_seed in plan)
    loader = torch.utils.data.DataLoader(
        _Steps(make, lams), batch_size=None, sampler=plan, num_workers=workers,
        prefetch_factor=4, multiprocessing_context="spawn", pin_memory=dev.type == "cuda",
        worker_init_fn=_quiet_worker)
    # (pin_memory: a thread of this process takes each batch out of the workers' shared
    # memory into page-locked memory, ahead of the step; without it the training loop does
    # that itself. Session 14's run with it went at 9.5 steps/s, session 15's without it at
    # 5.4 with GPU use under half: the likely cause, not yet re-timed on a GPU)
    # (each worker computes the boundary weights of the hole bank itself, in parallel:
    # cached here, they would be pickled into every worker, 130 MB per lambda at 2,000 holes)

    def batches():
        it = iter(loader)
        try:
            yield from it
        finally:  # close() after training: the workers stop before the interpreter does
            getattr(it, "_shutdown_workers", lambda: None)()

    return batches()


def _quiet_worker(_):
    import cv2

    cv2.setNumThreads(1)  # each worker one core: the workers share the machine


def _copy_args(args, **kw):
    import argparse

    return argparse.Namespace(**{**vars(args), **kw})


def _train_inpaint(args, pool, out, log_dir, dev, edge_path, fixed_idx, grey_edges) -> dict:
    cfg = read_meta(edge_path).get("config", {})
    Ge = ec.EdgeGenerator(cfg.get("width", args.width), cfg.get("blocks", args.blocks))
    load_into(Ge, edge_path)
    Ge.requires_grad_(False).to(dev)
    lam, sig = args.boundary_lambda, args.boundary_sigma
    variants = args.variants.split(",") if args.variants else \
        ["baseline" if lam == 0 else "weighted"]
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    for v in variants:
        if v not in ("weighted", "baseline"):
            raise ValueError(f"--variants: unknown variant {v!r} (weighted, baseline)")
    if "weighted" in variants and lam == 0:
        raise ValueError("the weighted variant needs --boundary-lambda > 0")
    runs = []  # (seed, variant, G, D, og, od, ema)
    prior_kinds = set()
    for s in seeds:
        for v in variants:
            key = f"inpaint_{v}"
            init = _init_weights(args, key)
            c = read_meta(init)["config"] if init else {"width": args.width,
                                                         "blocks": args.blocks,
                                                         "prior": args.prior or None}
            if args.prior and init and not c.get("prior"):
                raise ValueError(f"--prior {args.prior}: {init.name} is not a residual model "
                                 "(no prior in its config); drop --prior or --init")
            if args.prior and c.get("prior"):  # a residual model retrained on another fill
                c = {**c, "prior": args.prior}
            prior_kinds.add(c.get("prior") or "")
            torch.manual_seed(s)  # both variants of a seed start from the same weights
            G = ec.build_inpaint(c)
            if init:
                load_into(G, init).train()
            G.to(dev)
            D = ec.build_discriminator(3, c["width"]).to(dev)
            og = torch.optim.Adam(G.parameters(), args.lr, betas=(0.0, 0.9))
            od = torch.optim.Adam(D.parameters(), args.lr / 10, betas=(0.0, 0.9))
            runs.append((s, v, G, D, og, od, _EMA(G)))
    if len(prior_kinds) > 1:  # every run sees the same batches, so the same prior
        raise ValueError(f"the variants refine different fills {sorted(prior_kinds)}: "
                         "pass --prior to train them all on one")
    prior_kind = prior_kinds.pop() or "telea"
    rngs = {s: np.random.default_rng(s + 7) for s in seeds}  # one batch stream per seed
    modules = {}
    for s, v, G, D, og, od, ema in runs:
        modules.update({f"G_{v}_{s}": G, f"D_{v}_{s}": D, f"og_{v}_{s}": og, f"od_{v}_{s}": od,
                        f"E_{v}_{s}": ema.model})
    lr_at = _cosine(lambda: args.steps)  # reads the step count fixed by a time budget
    adv_w = getattr(args, "adv_weight", 0.1)  # EdgeConnect's 0.1; 0 = pure (weighted) L1
    grad_w = getattr(args, "grad_weight", 0.0) or 0.0  # gradient-domain L1 (both variants)

    def fill(G, g, e, m, x, prior=None):
        with torch.no_grad(), _autocast(dev):
            ep = Ge(torch.cat([g * (1 - m) + m, e * (1 - m), m], 1)).float()
        edges = e * (1 - m) + ep * m
        with _autocast(dev):
            if getattr(G, "prior", None):
                return G(torch.cat([x * (1 - m) + prior * m, edges, m], 1)).float()
            return G(torch.cat([x * (1 - m) + m, edges], 1)).float()

    fsr_mix = float(getattr(args, "fsr_mix", 0.0) or 0.0)
    make = _RingBatch(pool, prior_kind, sig, fsr_mix)

    def inputs(idx, lam_w):
        """``_RingBatch`` of one batch, as tensors on the training device."""
        return _to_dev(make(idx, lam_w), dev)

    lams = sorted({lam if v == "weighted" else 0.0 for _, v, *_ in runs})
    # one batch per seed and step, drawn in order from each seed's stream; with --workers > 1
    # they are built ahead in worker processes (the classical prior is CPU work that would
    # otherwise leave a GPU idle), else here, as they are needed
    plan = ({s: pool.batch(rngs[s], args.batch) for s in seeds} for _ in iter(int, 1))
    batches = _prefetch(make, plan, lams, getattr(args, "workers", 1), dev)

    def step_fn(step):
        parts = {}
        data = {s: _to_dev(b, dev) for s, b in next(batches).items()}
        for s, v, G, D, og, od, ema in runs:
            for group in og.param_groups:  # cosine decay; stateless, so resume keeps it
                group["lr"] = args.lr * lr_at(step)
            x, xin, g, e, m, ws = data[s]  # the variants of a seed share the batch
            w = ws[lam if v == "weighted" else 0.0]
            if ema.updates == 0 and step > 0:  # resumed: the warm-up is long over
                ema.updates = step
            o = fill(G, g, e, m, xin, xin if getattr(G, "prior", None) else None)
            # the discriminator and the loss see the ring, in the same Telea context
            real = xin * (1 - m) + x * m
            o = xin * (1 - m) + o * m
            adv = torch.zeros((), device=dev)
            if adv_w > 0:  # without the adversarial term the discriminator is not trained
                with _autocast(dev):
                    lr_, _ = D(real)
                    lf, _ = D(o.detach())
                    ld = 0.5 * (torch.relu(1 - lr_.float()).mean()
                                + torch.relu(1 + lf.float()).mean())
                od.zero_grad()
                ld.backward()
                od.step()
                with _autocast(dev):
                    lf, _ = D(o)
                adv = -lf.float().mean()
            l1 = ec.weighted_l1(o, real, w, m)
            lg = l1 + adv_w * adv
            if grad_w > 0:  # the same term for both variants: the comparison stays fair
                lgrad = ec.gradient_l1(o, real, m)
                lg = lg + grad_w * lgrad
                if len(runs) == 1 or s == seeds[0]:
                    parts[f"{v}_grad"] = lgrad.item()
            og.zero_grad()
            lg.backward()
            og.step()
            ema.update(G)
            if len(runs) == 1 or s == seeds[0]:
                hole_l1 = ((o - x).abs() * m).sum() / (3 * m.sum()).clamp_min(1)
                parts.update({f"{v}_l1w": l1.item(), f"{v}_adv": adv.item(),
                              f"{v}_hole_l1": hole_l1.item()})
        return parts

    def sample_fn():
        rows = []
        x, xin, g, e, m, _ = inputs(fixed_idx, [])
        to8 = lambda t: (t.permute(0, 2, 3, 1).clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)
        rows.append(to8(xin * (1 - m) + m))
        for s, v, G, D, og, od, ema in runs[:2]:
            with torch.no_grad():
                out = fill(ema.model, g, e, m, xin,
                           xin if getattr(ema.model, "prior", None) else None)
                rows.append(to8(xin * (1 - m) + out * m))
        rows.append(to8(x))
        return _grid(rows)

    name = "inpaint" if len(runs) > 1 else f"inpaint_{runs[0][1]}"
    try:
        wall = _loop(args, name, log_dir, modules, step_fn, sample_fn)
    except BaseException:  # stopped or failed: no data worker outlives the run
        batches.close()
        raise
    results = {}
    for s, v, G, D, og, od, ema in runs:
        key = f"inpaint_{v}"
        fname = WEIGHT_FILES[key] if s == seeds[0] else \
            f"seeds/{Path(WEIGHT_FILES[key]).stem}_seed{s}.safetensors"
        meta = _meta(f"edgeconnect_{key}", G, _copy_args(args, seed=s), args.steps, wall,
                     {"boundary_lambda": lam if v == "weighted" else 0.0,
                      "boundary_sigma": sig, "weighted_l1": "normalised by mean weight",
                      "data": _data_note(args, pool), "init": str(_init_weights(args, key) or ""),
                      "ema": ema.decay, "lr": args.lr, "lr_schedule": "cosine to 10%",
                      "adversarial_weight": adv_w, "gradient_weight": grad_w,
                      "fsr_mix": fsr_mix,
                      "seeds_trained_together": seeds,
                      "perceptual_style": "off: no VGG19 weights offline"})
        path = save(ema.model.cpu(), out / fname, meta)
        results[f"{key}_seed{s}"] = {"weights": str(path), "wall_s": wall}
    try:  # after saving: a data worker that dies while stopping must not cost the weights
        batches.close()
    except Exception as err:  # noqa: BLE001
        tqdm.write(f"note: stopping the data workers: {err}")
    return results


def _cosine(total):
    """Learning-rate factor: cosine from 1 to 0.1 over ``total()`` steps."""
    import math

    def f(step: int) -> float:
        n = max(total(), 1)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, n) / n))

    return f


def _train_diffusion(args, pool, out, log_dir) -> dict:
    dev = resolve_device(args.device)
    unet = dm.build_unet(args.res, args.width).to(dev)
    sched = dm.train_scheduler()
    opt = torch.optim.AdamW(unet.parameters(), 3e-4, weight_decay=1e-4)
    fixed = pool.inpaint_batch(4, free_form=0.0)

    def step_fn(step):
        imgs, holes = pool.inpaint_batch(args.batch)
        x, m = _t(imgs, "11").to(dev), _m(holes).to(dev)
        noise = torch.randn_like(x)
        t = torch.randint(0, sched.config.num_train_timesteps, (x.shape[0],), device=dev)
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
        unet.cpu()
        outs = np.stack([dm.sample(unet, i, h, steps=20, seed=0) for i, h in zip(*fixed)])
        unet.to(dev).train()
        masked = np.where(fixed[1][..., None], 255, fixed[0]).astype(np.uint8)
        return _grid([masked, outs, fixed[0]])

    wall = _loop(args, "diffusion", log_dir, {"G": unet, "og": opt}, step_fn, sample_fn)
    unet.config_dict = dict(unet.config)
    path = save(unet.cpu(), out / WEIGHT_FILES["diffusion"],
                _meta("diffusion", unet, args, args.steps, wall,
                      {"config": {"res": args.res, "width": args.width},
                       "objective": "eps, DDPM cosine 1000", "sampler": "DDIM (default) or DPM-Solver++"}))
    return {"diffusion": {"weights": str(path), "wall_s": wall}}


def _train_shade(args, pool, out, log_dir) -> dict:
    """The shade model (``models.shade``): L1 on the log shading ratio against the generator's
    truth, Adam, cosine decay to 10%; horizontal flips and a random exposure (the ratio does
    not change with it). The first 200 scenes are a validation set, logged against the
    classical ratio it starts from."""
    from . import shade as sd

    dev = resolve_device(args.device)
    torch.manual_seed(args.seed)
    init = _init_weights(args, "shade")
    cfg = read_meta(init)["config"] if init else {"width": args.width, "res": args.res}
    net = sd.ShadeNet(cfg["width"], cfg.get("res", args.res))
    if init:
        load_into(net, init).train()
    net.to(dev)
    lr = args.lr
    opt = torch.optim.Adam(net.parameters(), lr)
    n_val = min(200, len(pool.x) // 5)
    val = pool.tensors(np.arange(n_val))  # generator scenes (the negatives come last)
    train_idx = np.arange(n_val, len(pool.x))
    rng = np.random.default_rng(args.seed)
    lr_at = _cosine(lambda: args.steps)

    def val_l1() -> tuple[float, float]:
        net.eval()
        with torch.no_grad():
            x, y, v = (t.to(dev) for t in val)
            prior = torch.log(x[:, 4:5].clamp(sd.RATIO_MIN, sd.RATIO_MAX))
            res = (sd.masked_log_l1(net(x), y, v).item(), sd.masked_log_l1(prior, y, v).item())
        net.train()
        return res

    def step_fn(step):
        for g in opt.param_groups:
            g["lr"] = lr * lr_at(step)
        x, y, v = pool.tensors(rng.choice(train_idx, args.batch))
        if rng.random() < 0.5:
            x, y, v = x.flip(-1), y.flip(-1), v.flip(-1)
        gain = torch.from_numpy(rng.uniform(0.7, 1.2, (len(x), 1, 1, 1)).astype(np.float32))
        x[:, :3] = (x[:, :3] * gain).clamp(0, 1)
        x, y, v = x.to(dev), y.to(dev), v.to(dev)
        with _autocast(dev):
            pred = net(x).float()
        loss = sd.masked_log_l1(pred, y, v)
        opt.zero_grad()
        loss.backward()
        opt.step()
        parts = {"log_l1": loss.item()}
        if (step + 1) % 100 == 0:
            parts["val_log_l1"], parts["val_classical"] = val_l1()
        return parts

    def sample_fn():
        x, y, v = (t[:4].to(dev) for t in val)
        net.eval()
        with torch.no_grad():
            p = torch.exp(net(x)).float()
        net.train()
        grey = lambda t: np.repeat((t[:, 0].clamp(0, 1.25).cpu().numpy() / 1.25 * 255)
                                   .astype(np.uint8)[..., None], 3, -1)
        rgb = (x[:, :3].permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8)
        return _grid([rgb, grey(x[:, 4:5]), grey(p), grey(torch.exp(y))])

    wall = _loop(args, "shade", log_dir, {"G": net, "opt": opt}, step_fn, sample_fn)
    v_net, v_cls = val_l1()
    path = save(net.cpu(), out / WEIGHT_FILES["shade"],
                _meta("shade", net, args, args.steps, wall,
                      {"data": pool.describe(), "init": str(init or ""), "lr": lr,
                       "lr_schedule": "cosine to 10%", "val_scenes": n_val,
                       "val_log_l1": round(v_net, 5), "val_log_l1_classical": round(v_cls, 5)}))
    return {"weights": str(path), "wall_s": wall, "val_log_l1": v_net,
            "val_log_l1_classical": v_cls}
