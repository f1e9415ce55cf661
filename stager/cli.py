"""``python -m stager <command>``: every command prints a short summary; bad input gets a
one-line error and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import get_settings


def _progress(frac: float, msg: str) -> None:
    sys.stderr.write(f"\r{msg} ({frac:4.0%})   ")
    if frac >= 1:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_catalog(a) -> int:
    from .catalog import build_default, import_folders, open_catalog

    if a.action == "build":
        cat = build_default(n_scenes=a.scenes, n_products=a.products, seed=a.seed,
                            progress=_progress)
        print(f"catalog: {len(cat.scenes)} scenes, {len(cat.products)} products, "
              f"{len(cat.categories())} categories -> {cat.root / 'manifest.json'}")
        _embed_scenes(cat, a.no_embed)
        return 0
    cat = open_catalog()
    if a.scenes_dir is None and a.products_dir is None:
        raise ValueError("catalog import needs --scenes DIR and/or --products DIR")
    known = {s.id for s in cat.scenes}
    cat, skipped = import_folders(cat, a.scenes_dir, a.products_dir, a.annotations)
    for s in skipped:
        print(f"skipped {s}")
    bare = [s for s in cat.scenes if s.id not in known and s.mask is None]
    if bare:  # retrieval matches the old product's mask: a scene without one is never proposed
        names = ", ".join(f"{s.id} ({s.params.get('file', '?')})" for s in bare[:5])
        more = f" and {len(bare) - 5} more" if len(bare) > 5 else ""
        print(f"{len(bare)} imported scene(s) have no mask of their product, so retrieval "
              f"cannot propose them and staging refuses them: {names}{more}. Give each a "
              "mask (<name>_mask.png beside the image, or a mask column in --annotations)")
    print(f"catalog: {len(cat.scenes)} scenes, {len(cat.products)} products "
          f"({len(skipped)} files skipped) -> {cat.root / 'manifest.json'}")
    _embed_scenes(cat, a.no_embed)
    return 0


def _embed_scenes(cat, skip: bool = False) -> None:
    """With SAM configured, its embeddings of every scene are made at build (and import). The
    catalog is saved before: a SAM that fails to load is reported, not fatal."""
    from .segment import precompute_embeddings, sam_status

    if skip:
        print("SAM embeddings: skipped (--no-embed); the app makes them in the background")
        return
    if not sam_status()[0]:
        print("SAM embeddings: not precomputed (no SAM checkpoint: masks use GrabCut)")
        return
    try:
        r = precompute_embeddings(cat, progress=_progress)
    except Exception as exc:  # noqa: BLE001 - the catalog itself is saved and usable
        print(f"SAM embeddings: not precomputed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        return
    print(f"SAM embeddings: {r['computed']} computed, {r['cached']} already cached, "
          f"{r['failed']} failed")


def cmd_stage(a) -> int:
    from .pipeline import StageRequest, run_stage

    req = StageRequest(product=a.product, scene_id=a.scene, top_k=a.top_k,
                       backends=[b for b in a.backends.split(",") if b] if a.backends else None,
                       category=a.category, scale=a.scale, seed=a.seed)
    result = run_stage(req, out_dir=Path(a.out))
    chosen = result.scene_id
    print(f"staged {result.product_name} in scene {chosen}: "
          + ", ".join(f"{o.backend} {o.latency_ms:.0f} ms" for o in result.outputs if o.ok)
          + f" -> {Path(a.out) / 'report.json'}")
    for o in result.outputs:
        if not o.ok:
            print(f"  {o.backend}: not run ({o.error})")
    return 0


def cmd_batch(a) -> int:
    from .batch import BatchJob, run_batch

    job = BatchJob(products=a.products, out=Path(a.out), backend=a.backend, top_k=a.top_k,
                   best=a.best, seed=a.seed, audit_pool=a.audit_pool, limit=a.limit)
    s = run_batch(job, ray_address=a.ray, progress=not a.quiet)
    rate = f", {s['products_per_hour']:.0f} products/hour" if s["products_per_hour"] else ""
    print(f"batch ({s['mode']}): {s['staged']} staged, {s['failed']} failed, {s['skipped']} "
          f"already done of {s['products']} products in {s['wall_s']:.1f} s{rate} "
          f"-> {s['manifest']}")
    return 0


def cmd_train(a) -> int:
    from models.train import train

    res = train(a)
    print(json.dumps(res, indent=1))
    return 0


def cmd_evaluate(a) -> int:
    from .evaluate import run_evaluation

    out = Path(a.out)
    if a.pairs > 0:
        report = run_evaluation(pairs=a.pairs, out_dir=out, backends=a.backends,
                                bootstrap=a.bootstrap, seed=a.seed)
        print(report["summary"])
    if a.real or a.rooms or a.realism or a.imported:
        from .backends import COPY_PASTE
        from .evaluate_sets import (evaluate_imported, evaluate_real, evaluate_realism,
                                    evaluate_rooms, markdown_sets)
        from .pipeline import get_context

        names = [b for b in (a.backends.split(",") if a.backends else COPY_PASTE)
                 if b in COPY_PASTE and get_backend_ok(b)]
        rep = {}
        if a.real:
            rep["real"] = evaluate_real(names, a.real, a.seed, a.bootstrap)
        if a.imported:
            rep["imported"] = evaluate_imported(names, get_context().catalog, a.imported,
                                                a.seed, a.bootstrap)
        if a.rooms:
            rep["rooms"] = evaluate_rooms(names, out, a.rooms, a.seed, a.bootstrap)
        if a.realism:
            ctx = get_context()
            rep["realism"] = evaluate_realism(ctx.catalog, ctx, a.realism_backend, a.realism,
                                              a.seed, a.bootstrap)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval_sets.json").write_text(json.dumps(rep, indent=1))
        (out / "eval_sets.md").write_text(markdown_sets(rep))
        print(f"real photos / imported / rooms / realism -> {out / 'eval_sets.md'}")
    return 0


def get_backend_ok(name: str) -> bool:
    from .backends import get_backend

    return get_backend(name).available()[0]


def cmd_parallax(a) -> int:
    from .images import load_image, load_mask
    from .parallax import SUFFIXES, animate

    if Path(a.out).suffix.lower() not in SUFFIXES:
        raise ValueError(f"{Path(a.out).name}: unsupported clip format; use .mp4 or .gif")
    plate = load_image(a.plate, keep_alpha=False) if a.plate else None
    clip = animate(load_image(a.image, keep_alpha=False), load_mask(a.mask), Path(a.out), plate,
                   seconds=a.seconds, fps=a.fps, amplitude=a.amplitude, move=a.move,
                   progress=_progress)
    print(f"parallax {clip.move}: {len(clip.frames)} frames at {clip.fps} fps, "
          f"plate: {clip.plate_source} -> {clip.path}")
    return 0


def cmd_audit(a) -> int:
    from db import cli as audit_cli

    return audit_cli.run(a)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stager", description="Product Stager")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("catalog", help="build the default catalog or import folders")
    c.add_argument("action", choices=["build", "import"])
    c.add_argument("--scenes", type=int, default=None, help="build: number of scenes")
    c.add_argument("--products", type=int, default=None, help="build: number of products")
    c.add_argument("--seed", type=int, default=None)
    c.add_argument("--scenes-dir", "--scene-dir", dest="scenes_dir", type=Path, default=None,
                   help="import: folder of staged scenes")
    c.add_argument("--products-dir", dest="products_dir", type=Path, default=None,
                   help="import: folder of product photos")
    c.add_argument("--annotations", type=Path, default=None,
                   help="import: CSV or JSONL with file, mask, box, category")
    c.add_argument("--no-embed", action="store_true",
                   help="do not precompute SAM embeddings of the scenes (when SAM is set up)")
    c.set_defaults(fn=cmd_catalog)

    s = sub.add_parser("stage", help="stage one product")
    s.add_argument("--product", required=True, help="catalog product id or image path")
    s.add_argument("--scene", default=None, help="scene id (default: best retrieved)")
    s.add_argument("--top-k", type=int, default=None)
    s.add_argument("--backends", default=None, help="comma list (default: every available)")
    s.add_argument("--category", default=None)
    s.add_argument("--scale", type=float, default=1.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_stage)

    b = sub.add_parser("batch", help="stage every product of a catalog or folder")
    b.add_argument("--products", default="catalog",
                   help="'catalog', a catalog folder, or a folder of product photos")
    b.add_argument("--backend", default="telea")
    b.add_argument("--top-k", type=int, default=8, help="scenes retrieved per product")
    b.add_argument("--best", type=int, default=1, help="stage each product in its best N scenes")
    b.add_argument("--out", required=True, help="output folder (rerun to resume)")
    b.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on Ray actors: a local Ray, or the cluster at ADDRESS")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--audit-pool", action="store_true", help="send outputs to the audit pool")
    b.add_argument("--limit", type=int, default=None, help="only the first N products")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    b.set_defaults(fn=cmd_batch)

    t = sub.add_parser("train", help="train a compact model (EdgeConnect: on the catalog, "
                                     "imported scenes and real photos)")
    t.add_argument("model", choices=["pix2pix", "edgeconnect", "diffusion", "shade"])
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--res", type=int, default=128, help="training crop / window size (px)")
    t.add_argument("--batch", type=int, default=None, help="batch size (default: 8; shade 16)")
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    t.add_argument("--out", default="models/weights", help="weights folder to write")
    t.add_argument("--init", default=None, help="weights folder to fine-tune from "
                                                "(e.g. models/weights)")
    t.add_argument("--data", choices=["mix", "catalog", "real"], default="mix",
                   help="edgeconnect: mix = catalog + real photos + textures; catalog = the "
                        "current catalog with imported scenes")
    t.add_argument("--shares", default=None,
                   help="edgeconnect: the sources' shares of the crops, e.g. "
                        "catalog=0.3,real=0.55,texture=0.15 (default for mix: 0.45/0.4/0.15); "
                        "room = plain rooms, a wall over a floor (gaps.plain_room_background)")
    t.add_argument("--log-dir", default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--seeds", default=None, help="edgeconnect: several seeds trained together, "
                                                 "e.g. 0,1,2 (the first one's weights ship)")
    t.add_argument("--variants", default=None, help="edgeconnect: weighted,baseline (default: "
                                                    "from --boundary-lambda)")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--width", type=int, default=None, help="network width (default: 16; shade 24)")
    t.add_argument("--edge-width", type=int, default=0, help="edge model width (0 = --width)")
    t.add_argument("--blocks", type=int, default=4, help="edgeconnect residual blocks")
    t.add_argument("--stage", choices=["edge", "inpaint", "all"], default="all")
    t.add_argument("--edge-steps", type=int, default=0, help="edge model steps (0 = --steps)")
    st = get_settings()
    t.add_argument("--boundary-lambda", type=float, default=st.boundary_lambda,
                   help="weighted boundary loss strength (STAGER_BOUNDARY_LAMBDA)")
    t.add_argument("--boundary-sigma", type=float, default=st.boundary_sigma,
                   help="px (STAGER_BOUNDARY_SIGMA)")
    t.add_argument("--lr", type=float, default=None,
                   help="edgeconnect generator learning rate (default 1e-4); shade (1e-3)")
    t.add_argument("--adv-weight", type=float, default=0.1,
                   help="edgeconnect inpainting: adversarial loss weight (EdgeConnect: 0.1; "
                        "0 = the weighted L1 alone)")
    t.add_argument("--grad-weight", type=float, default=0.0,
                   help="edgeconnect inpainting: weight of an L1 on the fill's finite "
                        "differences (keeps edges and contrast; 0 = off)")
    t.add_argument("--prior", choices=["", "telea", "lines"], default="",
                   help="edgeconnect: refine a classical fill of the hole instead of a white "
                        "hole: telea, or lines (line-guided Telea, the pipeline's default "
                        "STAGER_FILL_PRIOR); with --init, retrains the init's residual model "
                        "on that fill")
    t.add_argument("--fsr-mix", type=float, default=0.0,
                   help="edgeconnect: blend this share of OpenCV's frequency-selective "
                        "reconstruction into the prior, as the backend does (STAGER_FSR_MIX)")
    t.add_argument("--pairs", type=int, default=1200, help="pix2pix/diffusion: training pairs")
    t.add_argument("--crops", type=int, default=3000, help="edgeconnect: image crops in memory")
    t.add_argument("--holes", type=int, default=1000, help="edgeconnect: hole masks in memory")
    t.add_argument("--sample-every", type=int, default=250)
    t.add_argument("--max-minutes", type=float, default=0,
                   help="fit the step count into this many minutes (0 = no limit)")
    t.add_argument("--workers", type=int, default=1, help="processes preparing training data")
    t.add_argument("--scenes", type=int, default=3000,
                   help="shade: generator scenes rendered for training (200 validate)")
    t.add_argument("--shade-seed", type=int, default=202,
                   help="shade: the generator seed of those scenes (never the catalog's)")
    t.add_argument("--negatives", type=float, default=0.15,
                   help="shade: real-photo negatives (no shadow) per generator scene")
    t.add_argument("--rooms", type=float, default=0.0,
                   help="shade: synthetic rooms (plain or textured floors, products at the "
                        "bottom edge, dark objects) per generator scene")
    t.add_argument("--shadowless", type=float, default=0.0,
                   help="shade: share of the synthetic rooms whose product casts no shadow "
                        "at all (the model must not imagine one)")
    t.add_argument("--texture", type=float, default=0.3,
                   help="shade: share of scenes with a random texture on scene and empty room")
    t.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("evaluate", help="backends on held-out pairs with ground truth")
    e.add_argument("--pairs", type=int, default=48, help="held-out catalog pairs (0 = skip)")
    e.add_argument("--real", type=int, default=0, metavar="N",
                   help="also N product-shaped gaps per held-out real photograph")
    e.add_argument("--rooms", type=int, default=0, metavar="N",
                   help="also N imported plain rooms (old product + cast shadow)")
    e.add_argument("--imported", type=int, default=0, metavar="N",
                   help="also N gaps in each held-out imported scene of the catalog")
    e.add_argument("--realism", type=int, default=0, metavar="N",
                   help="also the realism ablation on N catalog pairs")
    e.add_argument("--realism-backend", default="telea")
    e.add_argument("--out", required=True)
    e.add_argument("--backends", default=None)
    e.add_argument("--bootstrap", type=int, default=500)
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(fn=cmd_evaluate)

    x = sub.add_parser("parallax", help="2.5D parallax clip of a staged image (MP4 or GIF)")
    x.add_argument("--image", required=True, help="the staged output image")
    x.add_argument("--mask", required=True, help="the product's mask (stage writes "
                                                 "product_mask.png)")
    x.add_argument("--plate", default=None, help="background plate: the scene with the product "
                                                 "region filled (default: Telea fallback)")
    x.add_argument("--out", required=True, help="x.mp4 (H.264) or x.gif")
    x.add_argument("--seconds", type=float, default=None, help="default STAGER_PARALLAX_SECONDS")
    x.add_argument("--fps", type=int, default=None, help="default STAGER_PARALLAX_FPS")
    x.add_argument("--amplitude", type=float, default=None,
                   help="nearest layer's largest shift / width (default STAGER_PARALLAX_AMPLITUDE)")
    x.add_argument("--move", choices=["sway", "push", "push-in"], default=None,
                   help="camera move (default STAGER_PARALLAX_MOVE)")
    x.set_defaults(fn=cmd_parallax)

    au = sub.add_parser("audit", help="audit campaigns and reports")
    au.add_argument("action", choices=["create", "report", "simulate", "export"])
    au.add_argument("--name", default="method-audit")
    au.add_argument("--samples", type=int, default=100)
    au.add_argument("--realism", action="store_true",
                    help="create: add the realism task (all compositing steps vs none)")
    au.add_argument("--tasks", default="paper", help="'paper' or sysA:sysB,sysC:sysD")
    au.add_argument("--campaign", default=None)
    au.add_argument("--out", default=None)
    au.add_argument("--bootstrap", type=int, default=1000)
    au.add_argument("--seed", type=int, default=0)
    au.add_argument("--auditors", type=int, default=3)
    au.add_argument("--include-simulated", action="store_true",
                    help="report/export: count simulated auditors' votes too (labelled simulated)")
    au.set_defaults(fn=cmd_audit)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if getattr(a, "threads", 0):
        import torch

        torch.set_num_threads(a.threads)
        import cv2

        cv2.setNumThreads(a.threads)  # oversubscribed threads stall on a busy two-core machine
    try:
        return a.fn(a)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, never a traceback
        msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
