"""Evaluation on held-out (product, scene) pairs with the generator's ground truth.

Pairs: each held-out catalog product with an eval-split scene of its category (never seen in
training). For every backend: L1, PSNR and SSIM inside the gap (the fill that stays visible),
L1 in the band of the gap within 8 px of known background, the sharpness ratio, latency; FID
and KID on unpaired halves (outputs of one half of the pairs against ground truths of the
other) over context crops, with a pluggable feature extractor named in the report; bootstrap
intervals. ``evaluate_sets`` adds real photographs, plain imported rooms and the realism
ablation.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import linalg, ndimage

from .backends import REGISTRY, context_window, get_backend
from .catalog import Catalog, ground_truth
from .config import get_settings
from .pipeline import Context, StageRequest, get_context, prepare, run_backend

BAND = 8


# ------------------------------------------------------------------ masked metrics

def masked_l1(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute difference in [0, 1] over the masked pixels and channels."""
    if not mask.any():
        return float("nan")
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32))[mask].mean() / 255.0)


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 255) over the masked pixels."""
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2)[mask].mean())
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004; Gaussian window, K1=0.01, K2=0.03) averaged over
    channels: HxW float64."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)
        f = lambda z: ndimage.gaussian_filter(z, sigma, truncate=3.5)  # noqa: E731
        mx, my = f(x), f(y)
        n = (2 * int(3.5 * sigma + 0.5) + 1) ** 2  # sample-covariance correction (window area)
        vx = (f(x * x) - mx * mx) * n / (n - 1)
        vy = (f(y * y) - my * my) * n / (n - 1)
        cxy = (f(x * y) - mx * my) * n / (n - 1)
        out.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return np.mean(out, axis=0)


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(ssim_map(a, b)[mask].mean())


def boundary_band(gap: np.ndarray, known: np.ndarray | None = None, width: int = BAND
                  ) -> np.ndarray:
    """Gap pixels within ``width`` px of *known background* (``known``, HxW bool; default:
    everything outside the gap). Distance to the new product does not count."""
    known = ~gap if known is None else known
    if not known.any():
        return np.zeros_like(gap)
    d = ndimage.distance_transform_edt(~known)
    return gap & (d <= width)


def sharpness_ratio(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean gradient magnitude of ``out`` over ``truth``'s inside ``mask`` (1 = as sharp as
    the truth; a blurry fill is well below 1). NaN for an empty mask or a flat truth."""
    def grad(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))

    if not mask.any():
        return float("nan")
    t = float(grad(truth)[mask].mean())
    return float(grad(out)[mask].mean() / t) if t > 1e-6 else float("nan")


# ------------------------------------------------------------------ FID / KID

def frechet_distance(mu1, s1, mu2, s2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))."""
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        eps = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fid(f1: np.ndarray, f2: np.ndarray) -> float:
    """FID between two feature sets ``(n, d)``."""
    return frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))


def kid(f1: np.ndarray, f2: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018)."""
    d = f1.shape[1]
    k = lambda x, y: (x @ y.T / d + 1) ** 3  # noqa: E731
    m, n = len(f1), len(f2)
    kxx, kyy, kxy = k(f1, f1), k(f2, f2), k(f1, f2)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def halvings(n: int, count: int = 200, seed: int = 0) -> list[np.ndarray]:
    """``count`` random orders of ``n`` pairs; each splits them into two halves (the first
    ``n // 2`` and the next ``n // 2``). Drawn once and shared by every backend, so their FIDs
    are compared on the same splits and do not depend on which other backends ran."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(count)]


def unpaired_distances(out: np.ndarray, truth: np.ndarray, splits: list[np.ndarray]) -> dict:
    """FID and KID of outputs against ground truths of *other* pairs (row i of ``out`` and of
    ``truth`` come from the same pair; scoring an output against its own truth rewards copying,
    not realism). Each split (``halvings``) scores the outputs of one half against the truths of
    the other; the value is the median over splits and the bracket the 2.5-97.5 percentiles
    of the single-split values: the spread from the choice of halves, not a confidence
    interval of the population FID, which an estimate from n // 2 rows overstates (compare
    values only at equal n). Halves are drawn without replacement: a bootstrap's repeated rows
    shrink the covariance and inflate FID, so its interval used to sit above the value."""
    n = len(out)
    h = n // 2
    nan = {"mean": float("nan"), "ci95": [float("nan")] * 2, "over": "too few pairs"}
    if h < 4:  # too few pairs for a covariance: no FID/KID rather than a crash
        return {"fid": dict(nan), "kid": dict(nan)}
    vals = {"fid": [], "kid": []}
    for perm in splits:
        a, b = perm[:h], perm[h:2 * h]
        vals["fid"].append(fid(out[a], truth[b]))
        vals["kid"].append(kid(out[a], truth[b]))
    return {k: {"mean": float(np.median(v)),
                "ci95": [float(x) for x in np.percentile(v, [2.5, 97.5])],
                "over": f"median and 2.5-97.5 percentiles over {len(v)} halvings"}
            for k, v in vals.items()}


class ClassicalFeatures:
    """Colour and texture statistics of a crop (no weights). Distances on these are NOT
    Inception FID and not comparable with published numbers; the report says so."""

    name = "classical (colour moments + gradient histograms; not Inception)"

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        img = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
        feats = []
        for grid in (1, 2):
            for cell in np.array_split(lab, grid, 0):
                for c in np.array_split(cell, grid, 1):
                    feats += list(c.reshape(-1, 3).mean(0) / 50) + list(c.reshape(-1, 3).std(0) / 25)
        g = cv2.cvtColor((img * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
        gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
        mag, ang = np.hypot(gx, gy), np.arctan2(gy, gx) % np.pi
        hist, _ = np.histogram(ang, bins=8, range=(0, np.pi), weights=mag)
        feats += list(hist / (mag.sum() + 1e-6))
        lap = cv2.Laplacian(g, cv2.CV_32F)
        feats += [float(np.abs(lap).mean() / 50), float(mag.mean() / 100)]
        return np.array(feats, np.float64)


class ClipFeatures:
    def __init__(self, embedder):
        self.embedder = embedder
        self.name = f"{embedder.name} image features"

    def __call__(self, crop):
        return self.embedder(np.dstack([crop, np.full(crop.shape[:2], 255, np.uint8)])).astype(np.float64)


def feature_extractor():
    """open_clip features when configured, else classical features (named in the report).
    Inception weights are not shipped and cannot be downloaded offline."""
    from .embed import ClipEmbedder, clip_status

    ok, _ = clip_status()
    if ok:
        st = get_settings()
        return ClipFeatures(ClipEmbedder(model_name=st.clip_model, pretrained=st.clip_pretrained))
    return ClassicalFeatures()


# ------------------------------------------------------------------ pairs and run

@dataclass
class Pair:
    product_id: str
    scene_id: str


def heldout_pairs(catalog: Catalog, n: int) -> list[Pair]:
    """Deterministic pairs: product i with the (i // #products)-th eval scene of its category."""
    eval_by_cat: dict[str, list[str]] = {}
    for s in catalog.scenes:
        if s.split == "eval" and s.background:
            eval_by_cat.setdefault(s.category, []).append(s.id)
    pairs = []
    products = [p for p in catalog.products if p.category in eval_by_cat]
    if not products:
        raise ValueError("no held-out products with eval scenes of their category")
    for i in range(n):
        p = products[i % len(products)]
        scenes = eval_by_cat[p.category]
        pairs.append(Pair(p.id, scenes[(i // len(products) + i) % len(scenes)]))
    return pairs


def _bootstrap(values: np.ndarray, rounds: int, rng) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile of bootstrap means)."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    idx = rng.integers(0, len(v), (rounds, len(v)))
    means = v[idx].mean(1)
    return float(v.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evaluate_pairs(pairs: list[Pair], names: list[str], ctx: Context, progress=None) -> dict:
    """Per-pair metrics for every backend (``{name: {metric: list}}``) and crops for FID."""
    cat = ctx.catalog
    per = {n: {"gap_l1": [], "gap_psnr": [], "gap_ssim": [], "band_l1": [], "sharpness": [],
               "latency_ms": [], "full_l1": []} for n in names}
    crops = {n: [] for n in names + ["ground_truth"]}
    for i, pr in enumerate(pairs):
        prep = prepare(StageRequest(pr.product_id, scene_id=pr.scene_id, harmonise=0.0), ctx)
        gt, _ = ground_truth(cat, pr.product_id, pr.scene_id)
        gap = prep.gap
        band = boundary_band(gap, ~prep.fill_mask & ~prep.new_mask)
        x0, y0, x1, y1 = context_window(prep.old_mask, 1.3, 64)
        crops["ground_truth"].append(gt[y0:y1, x0:x1])
        for n in names:
            out = run_backend(prep, n, seed=i)
            if not out.ok:
                raise RuntimeError(f"{n} failed on {pr}: {out.error}")
            img = out.image
            per[n]["gap_l1"].append(masked_l1(img, gt, gap))
            per[n]["gap_psnr"].append(masked_psnr(img, gt, gap))
            per[n]["gap_ssim"].append(masked_ssim(img, gt, gap))
            per[n]["band_l1"].append(masked_l1(img, gt, band))
            per[n]["sharpness"].append(sharpness_ratio(img, gt, gap))
            per[n]["full_l1"].append(masked_l1(img, gt, np.ones(gap.shape, bool)))
            per[n]["latency_ms"].append(out.latency_ms)
            crops[n].append(img[y0:y1, x0:x1])
        if progress:
            progress((i + 1) / len(pairs), f"pair {i + 1}/{len(pairs)}")
    return {"per": per, "crops": crops}


def run_evaluation(pairs: int = 48, out_dir: Path | None = None, backends: str | None = None,
                   bootstrap: int = 500, seed: int = 0, ctx: Context | None = None,
                   progress=None) -> dict:
    """Evaluate backends; writes ``eval.json`` and ``eval.md`` into ``out_dir`` when given."""
    ctx = ctx or get_context()
    names = [b for b in (backends.split(",") if backends else REGISTRY) if b]
    for n in names:
        if n not in REGISTRY:
            raise ValueError(f"unknown backend {n!r}; choose from {', '.join(REGISTRY)}")
    skipped = {n: get_backend(n).available()[1] for n in names if not get_backend(n).available()[0]}
    names = [n for n in names if n not in skipped]
    prs = heldout_pairs(ctx.catalog, pairs)
    t0 = time.time()
    res = evaluate_pairs(prs, names, ctx, progress)
    fx = feature_extractor()
    feats = {k: np.stack([fx(c) for c in v]) for k, v in res["crops"].items()}
    # standardise by the ground truth's spread so distances read in units of its variation
    mu, sd = feats["ground_truth"].mean(0), feats["ground_truth"].std(0) + 1e-6
    feats = {k: (v - mu) / sd for k, v in feats.items()}
    rng = np.random.default_rng(seed)
    splits = halvings(len(prs), 200, seed)
    table = {}
    for n in names:
        row = {}
        for metric, vals in res["per"][n].items():
            m, lo, hi = _bootstrap(np.array(vals, np.float64), bootstrap, rng)
            row[metric] = {"mean": m, "ci95": [lo, hi]}
        row.update(unpaired_distances(feats[n], feats["ground_truth"], splits))
        row["label"] = get_backend(n).label
        row["weights"] = get_backend(n).describe()
        table[n] = row
    report = {"pairs": len(prs), "features": fx.name, "bootstrap": bootstrap,
              "backends": table, "skipped": skipped, "wall_s": round(time.time() - t0, 1),
              "pair_list": [[p.product_id, p.scene_id] for p in prs]}
    report["summary"] = summary_line(report)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "eval.json").write_text(json.dumps(report, indent=1))
        (out_dir / "eval.md").write_text(markdown(report))
    return report


def summary_line(report: dict) -> str:
    parts = [f"{n}: gap L1 {r['gap_l1']['mean']:.4f}, band L1 {r['band_l1']['mean']:.4f}"
             for n, r in report["backends"].items()]
    return f"{report['pairs']} held-out pairs; " + "; ".join(parts)


def _fmt(cell: dict, digits: int = 4) -> str:
    lo, hi = cell["ci95"]
    return f"{cell['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def markdown(report: dict) -> str:
    b = report["backends"]
    lines = [f"# Evaluation on {report['pairs']} held-out pairs", "",
             f"Feature extractor for FID/KID: **{report['features']}**, standardised by the "
             "ground truth's spread (not comparable with Inception FID). "
             "Brackets: bootstrap 95% intervals over pairs; for FID and KID, the 2.5-97.5 "
             "percentiles over 200 random halvings of the pairs, the same for every backend "
             "(outputs of one half against ground truths of the other; the value is their "
             "median; it depends on the number of pairs).", ""]
    if "edgeconnect" in b and "edgeconnect_baseline" in b:
        lines += ["## The method's table (copy-paste staging)", "",
                  "| | baseline (EdgeConnect) | our approach (EdgeConnect + weighted boundary loss) |",
                  "|---|---|---|",
                  f"| FID | {_fmt(b['edgeconnect_baseline']['fid'], 2)} | {_fmt(b['edgeconnect']['fid'], 2)} |",
                  f"| boundary-band L1 | {_fmt(b['edgeconnect_baseline']['band_l1'])} | {_fmt(b['edgeconnect']['band_l1'])} |",
                  f"| gap L1 | {_fmt(b['edgeconnect_baseline']['gap_l1'])} | {_fmt(b['edgeconnect']['gap_l1'])} |",
                  ""]
    lines += ["## Every backend", "",
              "| backend | gap L1 | gap PSNR (dB) | gap SSIM | band L1 | sharpness | FID | KID | latency ms |",
              "|---|---|---|---|---|---|---|---|---|"]
    for n, r in b.items():
        lines.append(f"| {r['label']} | {_fmt(r['gap_l1'])} | {_fmt(r['gap_psnr'], 2)} | "
                     f"{_fmt(r['gap_ssim'], 3)} | {_fmt(r['band_l1'])} | "
                     f"{_fmt(r['sharpness'], 2)} | {_fmt(r['fid'], 2)} | "
                     f"{_fmt(r['kid'], 4)} | {r['latency_ms']['mean']:.0f} |")
    if report["skipped"]:
        lines += ["", "Not evaluated: " + "; ".join(f"{k} ({v})" for k, v in report["skipped"].items())]
    lines += ["", "pix2pix regenerates the whole background (vanilla staging); the others fill "
              "only the gap (copy-paste staging)."]
    return "\n".join(lines) + "\n"
