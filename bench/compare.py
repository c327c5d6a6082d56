"""Times Clarity and the Python peers side by side and prints a ratio table.

Usage: compare.py IMG_DIR TIMER [--quick]

IMG_DIR holds the images (and strings.json) that `clarity-kernel-timer images` wrote; both sides
read them from disk. TIMER is the `clarity-kernel-timer` binary: it runs as a child process in
`serve` mode and times Clarity's kernels in Rust, on request, so all libraries of a row are
measured round-robin.

Method (as in shared/bench/peer_kernels_results.md): per library, 3 warm-up calls, then N chosen
so one measurement lasts >= 0.3 s (0.01 s with --quick); then R = 5 (3) rounds, each taking one
measurement of N calls from every library in turn; median (and min-max) of the per-call time.
Every call is image -> image in the input dtype (float results rounded back inside the call);
stochastic ops re-seed their generator every call. GC disabled while timing. Single-threaded:
OMP/OPENBLAS/MKL_NUM_THREADS=1 (set by compare.sh) and cv2.setNumThreads(1).

Ratio = Clarity / fastest valid peer: < 1 means Clarity is faster. A peer result is excluded
from "fastest" when it is not the same work (†: Pillow's box-approximated Gaussian and
antialiased bilinear downscale; imagecorruptions' fixed severities) or wrong (✗: dtype/shape
changed, or values far from Clarity's output on a deterministic op).
"""

import gc
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")

import cv2  # noqa: E402

cv2.setNumThreads(1)

try:
    import albumentations as A  # noqa: E402
except Exception:  # pragma: no cover - reported as n/s
    A = None
try:
    from PIL import Image, ImageEnhance, ImageFilter  # noqa: E402

    import PIL  # noqa: E402
except Exception:  # pragma: no cover
    Image = None
try:
    import skimage  # noqa: E402
    import skimage.exposure  # noqa: E402
    import skimage.filters  # noqa: E402
    import skimage.transform  # noqa: E402
    import skimage.util  # noqa: E402
except Exception:  # pragma: no cover
    skimage = None
try:
    from rapidfuzz.distance import Levenshtein as RFLev  # noqa: E402

    import rapidfuzz  # noqa: E402
except Exception:  # pragma: no cover
    RFLev = None

# (key, label, deterministic?) in table order. Keys are clarity-kernel-timer's op keys.
OPS = [
    ("blur", "gaussian blur σ=2", True),
    ("noise", "gaussian noise σ=0.1·range", False),
    ("brightness", "brightness ×1.2", True),
    ("contrast", "contrast ×0.8", True),
    ("gamma", "gamma 0.7", True),
    ("resize", "resize ½ then ×2 (bilinear)", True),
    ("jpeg", "JPEG q=50 enc+dec", True),
    ("rotate", "rotate 10° (bilinear)", True),
    ("motion", "motion blur len 9", True),
    ("snp", "salt & pepper 0.05", False),
]
INPUTS = ["gray512_u8", "rgb512_u8", "gray1024_u16", "rgb224_u8"]
QUICK_INPUTS = ["gray512_u8", "gray1024_u16"]
TEXTS = ["lev300", "lev3000"]


def dmax(img):
    return 65535 if img.dtype == np.uint16 else 255


def is_rgb(img):
    return img.ndim == 3


class NotSupported(Exception):
    """The library has no such kernel for this input."""


# ---- OpenCV ---------------------------------------------------------------------------------
def cv_ops():
    def blur(img):
        return cv2.GaussianBlur(img, (13, 13), 2)

    def noise(img):
        cv2.setRNGSeed(0)
        n = np.empty(img.shape, np.float32)
        cv2.randn(n, 0.0, 0.1 * dmax(img))
        return cv2.add(img, n, dtype=cv2.CV_16U if img.dtype == np.uint16 else cv2.CV_8U)

    def bright(img):
        if img.dtype == np.uint8:
            return cv2.convertScaleAbs(img, alpha=1.2)
        return cv2.addWeighted(img, 1.2, img, 0, 0)

    def mean_luma(img):
        m = cv2.mean(img)
        return 0.299 * m[0] + 0.587 * m[1] + 0.114 * m[2] if is_rgb(img) else m[0]

    def contrast(img):
        beta = 0.2 * mean_luma(img)
        if img.dtype == np.uint8:
            return cv2.convertScaleAbs(img, alpha=0.8, beta=beta)
        return cv2.addWeighted(img, 0.8, img, 0, beta)

    lut8 = np.array([round(255 * (i / 255) ** 0.7) for i in range(256)], np.uint8)

    def gamma(img):
        if img.dtype == np.uint8:
            return cv2.LUT(img, lut8)
        f = cv2.multiply(img.astype(np.float32), 1 / 65535)
        f = cv2.pow(f, 0.7)
        return cv2.multiply(f, 65535).astype(np.uint16)

    def resize(img):
        h, w = img.shape[:2]
        s = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(s, (w, h), interpolation=cv2.INTER_LINEAR)

    def jpeg(img):
        if img.dtype != np.uint8:
            raise NotSupported("JPEG encoder is 8-bit only")
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 50])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)

    def rotate(img):
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 10, 1.0)
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    k9 = np.zeros((9, 9), np.float32)
    k9[4, :] = 1 / 9

    def motion(img):
        return cv2.filter2D(img, -1, k9)

    def snp(img):
        cv2.setRNGSeed(0)
        u = np.empty(img.shape[:2], np.float32)
        cv2.randu(u, 0.0, 1.0)
        out = img.copy()
        out[u < 0.025] = 0
        out[u > 0.975] = dmax(img)
        return out

    return dict(zip([k for k, _, _ in OPS], [blur, noise, bright, contrast, gamma, resize, jpeg, rotate, motion, snp]))


# ---- Albumentations -------------------------------------------------------------------------
def alb_ops():
    if A is None:
        return {}

    def direct(t, seeded=False):
        # Called directly (no Compose), p=1; stochastic ones re-seeded every call.
        def f(img):
            if seeded:
                t.set_random_seed(0)
            return t(image=img)["image"]

        return f

    inter = cv2.INTER_LINEAR
    return {
        "blur": direct(A.GaussianBlur(blur_limit=(13, 13), sigma_limit=(2.0, 2.0), p=1)),
        "noise": direct(A.GaussNoise(std_range=(0.1, 0.1), mean_range=(0, 0), per_channel=True, p=1), True),
        "brightness": direct(A.ColorJitter(brightness=(1.2, 1.2), contrast=(1, 1), saturation=(1, 1), hue=(0, 0), p=1)),
        "contrast": direct(A.ColorJitter(brightness=(1, 1), contrast=(0.8, 0.8), saturation=(1, 1), hue=(0, 0), p=1)),
        "gamma": direct(A.RandomGamma(gamma_limit=(70, 70), p=1)),
        "resize": direct(
            A.Downscale(scale_range=(0.5, 0.5), interpolation_pair={"downscale": inter, "upscale": inter}, p=1)
        ),
        "jpeg": direct(A.ImageCompression(quality_range=(50, 50), compression_type="jpeg", p=1)),
        "rotate": direct(A.Rotate(limit=(10, 10), interpolation=inter, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1)),
        "motion": direct(
            A.MotionBlur(blur_limit=(9, 9), angle_range=(0, 0), direction_range=(0, 0), allow_shifted=False, p=1)
        ),
        "snp": direct(A.SaltAndPepper(amount=(0.05, 0.05), salt_vs_pepper=(0.5, 0.5), p=1), True),
    }


# ---- Pillow ---------------------------------------------------------------------------------
def pil_ops():
    if Image is None:
        return {}
    lut = [round(255 * (i / 255) ** 0.7) for i in range(256)]

    def jpeg(im):
        b = io.BytesIO()
        im.save(b, format="JPEG", quality=50)
        b.seek(0)
        out = Image.open(b)
        out.load()
        return out

    def resize(im):
        w, h = im.size
        return im.resize((w // 2, h // 2), Image.BILINEAR).resize((w, h), Image.BILINEAR)

    # Timed on a PIL.Image (conversion from/to numpy outside the timed call). Only resize takes
    # 16-bit gray ('I;16') correctly; the rest is 8-bit only.
    return {
        "blur": (lambda im: im.filter(ImageFilter.GaussianBlur(2)), False),
        "brightness": (lambda im: ImageEnhance.Brightness(im).enhance(1.2), False),
        "contrast": (lambda im: ImageEnhance.Contrast(im).enhance(0.8), False),
        "gamma": (lambda im: im.point(lut * len(im.getbands())), False),
        "resize": (resize, True),
        "jpeg": (jpeg, False),
        "rotate": (lambda im: im.rotate(10, resample=Image.BILINEAR, fillcolor=0), False),
        "motion": (lambda im: im.filter(ImageFilter.BoxBlur((4, 0))), False),
    }


# ---- scikit-image ---------------------------------------------------------------------------
def sk_ops():
    if skimage is None:
        return {}

    def back(f, img):
        return np.clip(np.rint(f), 0, dmax(img)).astype(img.dtype)

    def blur(img):
        ca = -1 if is_rgb(img) else None
        f = skimage.filters.gaussian(img, sigma=2, truncate=3, preserve_range=True, channel_axis=ca)
        return back(f, img)

    def noise(img):
        f = skimage.util.random_noise(img, mode="gaussian", var=0.01, rng=0)
        return back(f * dmax(img), img)

    def bright(img):
        return skimage.exposure.adjust_gamma(img, 1, 1.2)

    def contrast(img):
        m = float(img.mean())
        lo = 0.2 * m
        return skimage.exposure.rescale_intensity(
            img, in_range=(0, dmax(img)), out_range=(lo, lo + 0.8 * dmax(img))
        ).astype(img.dtype)

    def gamma(img):
        return skimage.exposure.adjust_gamma(img, 0.7)

    def resize(img):
        h, w = img.shape[:2]
        s = skimage.transform.resize(img, (h // 2, w // 2), order=1, anti_aliasing=False, preserve_range=True)
        return back(skimage.transform.resize(s, (h, w), order=1, anti_aliasing=False, preserve_range=True), img)

    def rotate(img):
        return back(skimage.transform.rotate(img, 10, order=1, mode="constant", cval=0, preserve_range=True), img)

    def snp(img):
        f = skimage.util.random_noise(img, mode="s&p", amount=0.05, rng=0)
        return back(f * dmax(img), img)

    return {
        "blur": blur,
        "noise": noise,
        "brightness": bright,
        "contrast": contrast,
        "gamma": gamma,
        "resize": resize,
        "rotate": rotate,
        "snp": snp,
    }


# ---- imagecorruptions (not the same work: fixed severity levels; uint8 only) -----------------
def ic_ops():
    try:
        import skimage.filters as skf

        orig = skf.gaussian
        if not getattr(orig, "_clarity_shim", False):
            # imagecorruptions 1.1.2 passes multichannel=, removed in scikit-image 0.19.
            def gaussian(*a, multichannel=None, **k):
                if multichannel:
                    k["channel_axis"] = -1
                return orig(*a, **k)

            gaussian._clarity_shim = True
            skf.gaussian = gaussian
        from imagecorruptions import corrupt
    except Exception:  # pragma: no cover
        return {}

    def c(name, sev, seeded=False):
        def f(img):
            if img.dtype != np.uint8:
                raise NotSupported("uint8 only")
            if seeded:
                np.random.seed(0)
            out = np.asarray(corrupt(img, corruption_name=name, severity=sev)).astype(np.uint8)
            return out if is_rgb(img) else out[..., 0]  # gray comes back stacked to RGB

        return f

    return {
        "blur": c("gaussian_blur", 2),
        "noise": c("gaussian_noise", 1, True),
        "brightness": c("brightness", 1),
        "contrast": c("contrast", 1),
        "jpeg": c("jpeg_compression", 1),
        "motion": c("motion_blur", 1, True),
        "snp": c("impulse_noise", 2, True),
    }


# ---- runners --------------------------------------------------------------------------------
class PyRunner:
    """Times a Python callable on a fixed input."""

    def __init__(self, f, arg):
        self.f, self.arg = f, arg

    def calibrate(self, min_secs):
        for _ in range(3):
            self.f(self.arg)
        t = time.perf_counter()
        self.f(self.arg)
        one = max(time.perf_counter() - t, 1e-9)
        return max(1, int(np.ceil(min_secs / one)))

    def measure(self, n):
        f, arg = self.f, self.arg
        gc.disable()
        try:
            t = time.perf_counter()
            for _ in range(n):
                f(arg)
            return (time.perf_counter() - t) * 1e3 / n
        finally:
            gc.enable()


class RustTimer:
    """clarity-kernel-timer in serve mode."""

    def __init__(self, binary, img_dir):
        self.p = subprocess.Popen(
            [binary, "serve", img_dir], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        answer = self.p.stdout.readline()
        if not answer:
            raise RuntimeError(f"clarity-kernel-timer died on {line!r}")
        return json.loads(answer)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


class RustRunner:
    def __init__(self, timer, op, inp):
        self.t, self.op, self.inp = timer, op, inp

    def calibrate(self, min_secs):
        return self.t.ask(f"calib {self.op} {self.inp} {min_secs}")["n"]

    def measure(self, n):
        return self.t.ask(f"run {self.op} {self.inp} {n}")["ms"]


def check(out, img, ref, deterministic):
    """Validity of a peer output: (ok, note). `ref` is Clarity's output for the same op."""
    out = np.asarray(out)
    if out.dtype != img.dtype or out.shape != img.shape:
        return False, f"returns {out.dtype}{list(out.shape)}"
    diff = out.astype(np.float64) - ref.astype(np.float64)
    mad = float(np.mean(np.abs(diff))) / dmax(img) * 100
    if deterministic:
        far = float(np.mean(np.abs(diff) > 0.1 * dmax(img))) * 100
        if far > 0.5:
            return False, f"MAD vs Clarity {mad:.2f}%, {far:.2f}% of samples off by > 10% of range"
        return True, f"MAD vs Clarity {mad:.2f}%"
    sd = float(np.std(out.astype(np.float64) - img.astype(np.float64))) / dmax(img) * 100
    changed = float(np.mean(np.any((out != img).reshape(img.shape[0], img.shape[1], -1), axis=-1))) * 100
    return True, f"σ(out−in) {sd:.1f}%, changed px {changed:.1f}%"


def load(path):
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def fmt_ms(x):
    if x is None:
        return "n/s"
    return f"{x:.3f}" if x < 1 else f"{x:.3g}" if x < 10 else f"{x:.1f}"


def run_row(runners, min_secs, reps):
    """Round-robin: calibrate each, then `reps` rounds of one measurement per library."""
    ns = {name: r.calibrate(min_secs) for name, r in runners.items()}
    per = {name: [] for name in runners}
    for _ in range(reps):
        for name, r in runners.items():
            per[name].append(r.measure(ns[name]))
    out = {}
    for name, v in per.items():
        v.sort()
        out[name] = (v[len(v) // 2], v[0], v[-1], ns[name])
    return out


def main():
    img_dir, timer_bin = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv
    min_secs, reps = (0.01, 3) if quick else (0.3, 5)
    inputs = QUICK_INPUTS if quick else INPUTS
    libs = [("OpenCV", cv_ops()), ("Albumentations", alb_ops()), ("Pillow", pil_ops()), ("scikit-image", sk_ops())]
    if not quick:
        libs.append(("imagecorruptions", ic_ops()))
    names = [n for n, _ in libs]
    versions = (
        f"numpy {np.__version__}, opencv-python-headless {cv2.__version__}, "
        f"albumentations {getattr(A, '__version__', 'n/a')}, pillow {getattr(PIL, '__version__', 'n/a')}, "
        f"scikit-image {getattr(skimage, '__version__', 'n/a')}, rapidfuzz {getattr(rapidfuzz, '__version__', 'n/a')}"
    )
    print(f"{versions}; single-threaded (cv2.getNumThreads() = {cv2.getNumThreads()}); median ms per call\n")
    header = "| op | input | Clarity | " + " | ".join(names) + " | Clarity / fastest peer |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    notes = []
    ratios = []
    timer = RustTimer(timer_bin, img_dir)
    tmp = tempfile.mkdtemp()
    try:
        for inp in inputs:
            img = load(f"{img_dir}/{inp}.png")
            pil_img = Image.fromarray(img) if Image is not None else None
            for key, label, det in OPS:
                ref_path = os.path.join(tmp, f"{key}_{inp}.png")
                timer.ask(f"save {key} {inp} {ref_path}")
                ref = load(ref_path)
                runners = {"Clarity": RustRunner(timer, key, inp)}
                marks = {}
                for name, ops in libs:
                    f = ops.get(key)
                    if f is None:
                        marks[name] = "n/s"
                        continue
                    same_work = True
                    if name == "Pillow":
                        f, takes16 = f
                        if img.dtype != np.uint8 and not takes16:
                            marks[name] = "n/s"
                            continue
                        same_work = key not in ("blur", "resize")
                        arg = pil_img if img.dtype == np.uint8 else Image.fromarray(img)
                        to_np = np.asarray
                    else:
                        arg = img
                        to_np = np.asarray
                    if name == "imagecorruptions":
                        same_work = False
                    try:
                        out = to_np(f(arg))
                    except NotSupported as e:
                        marks[name] = "n/s"
                        notes.append(f"{name} · {label} · {inp}: n/s — {e}")
                        continue
                    except Exception as e:  # the library cannot do this input
                        marks[name] = "n/s"
                        notes.append(f"{name} · {label} · {inp}: n/s — raises {type(e).__name__}: {str(e)[:120]}")
                        continue
                    ok, note = check(out, img, ref, det)
                    if not ok:
                        marks[name] = "✗"
                        notes.append(f"{name} · {label} · {inp}: invalid — {note}")
                    elif not same_work:
                        marks[name] = "†"
                    runners[name] = PyRunner(f, arg)
                res = run_row(runners, min_secs, reps)
                mine = res["Clarity"][0]
                valid = {n: res[n][0] for n in names if n in res and n not in marks}
                cells = []
                for n in names:
                    if n in res:
                        m = marks.get(n, "")
                        cells.append(f"{m} {fmt_ms(res[n][0])}" if m else fmt_ms(res[n][0]))
                    else:
                        cells.append(marks.get(n, "n/s"))
                if valid:
                    best = min(valid, key=valid.get)
                    ratio = mine / valid[best]
                    ratios.append((ratio, label, inp, best))
                    ratio_s = f"**{ratio:.2f}x** vs {best}" if ratio > 1 else f"{ratio:.2f}x vs {best}"
                else:
                    ratio_s = "— (no valid peer)"
                print(f"| {label} | {inp} | {fmt_ms(mine)} | {' | '.join(cells)} | {ratio_s} |", flush=True)
        # Levenshtein: clarity_analysis::justification_drift vs rapidfuzz's normalized distance.
        if RFLev is not None:
            texts = json.load(open(f"{img_dir}/strings.json"))
            for t in TEXTS if not quick else TEXTS[:1]:
                a, b = texts[t]
                runners = {
                    "Clarity": RustRunner(timer, "levenshtein", t),
                    "rapidfuzz": PyRunner(lambda ab: RFLev.normalized_distance(ab[0], ab[1]), (a, b)),
                }
                res = run_row(runners, min_secs, reps)
                ratio = res["Clarity"][0] / res["rapidfuzz"][0]
                ratios.append((ratio, "normalised Levenshtein", t, "rapidfuzz"))
                print(
                    f"| normalised Levenshtein | {t} ({len(a)}/{len(b)} chars) | {fmt_ms(res['Clarity'][0])} | "
                    + " | ".join("" for _ in names)
                    + f" | {ratio:.2f}x vs rapidfuzz {fmt_ms(res['rapidfuzz'][0])} |",
                    flush=True,
                )
    finally:
        timer.close()
    print()
    print("n/s = no such kernel for this input; † = not the same work (excluded from fastest);")
    print("✗ = ran but output wrong (excluded). Ratio = Clarity / fastest valid peer; < 1: Clarity is faster.")
    if notes:
        print()
        for n in notes:
            print(f"- {n}")
    if ratios:
        worst = max(ratios)
        met = sum(1 for r in ratios if r[0] <= 1.0)
        print(
            f"\n{met}/{len(ratios)} rows at ≤ 1.00x; worst {worst[0]:.2f}x ({worst[1]}, {worst[2]}, vs {worst[3]})"
        )


if __name__ == "__main__":
    main()
