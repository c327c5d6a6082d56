"""Times the Python peers on the images clarity-kernel-timer wrote and prints ratio tables.

Method (same as ../shared/bench/peer_kernels_results.md): 3 warm-up calls, then R measurements
of N calls each, N chosen so one measurement lasts >= 0.3 s; median of the per-image time.
Every call is image -> image in the input dtype (float results rounded back inside the call);
stochastic ops re-seed their generator every call. GC disabled while timing.
Ratio = Clarity / fastest peer: < 1 means Clarity is faster.
"""

import gc
import io
import json
import sys
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

OPS = [
    "gaussian blur σ=2",
    "gaussian noise σ=0.1·range",
    "brightness ×1.2",
    "contrast ×0.8",
    "gamma 0.7",
    "resize ½ then ×2 (bilinear)",
    "JPEG q=50 enc+dec",
    "rotate 10° (bilinear)",
    "motion blur len 9",
    "salt & pepper 0.05",
]
INPUTS = ["gray512_u8", "rgb512_u8", "gray1024_u16", "rgb224_u8"]


def dmax(img):
    return 65535 if img.dtype == np.uint16 else 255


def cv_dtype(img):
    return cv2.CV_16U if img.dtype == np.uint16 else cv2.CV_8U


def rgb(img):
    return img.ndim == 3


# ---- OpenCV ---------------------------------------------------------------------------------
def cv_ops():
    def blur(img):
        return cv2.GaussianBlur(img, (0, 0), 2, borderType=cv2.BORDER_REFLECT_101)

    def noise(img):
        cv2.setRNGSeed(0)
        n = np.empty(img.shape, np.float32)
        cv2.randn(n, 0.0, 0.1 * dmax(img))
        return cv2.add(img, n, dtype=cv_dtype(img))

    def bright(img):
        return cv2.addWeighted(img, 1.2, img, 0, 0)

    def contrast(img):
        m = float(np.mean(img))
        return cv2.addWeighted(img, 0.8, img, 0, 0.2 * m)

    lut8 = np.array([round(255 * (i / 255) ** 0.7) for i in range(256)], np.uint8)

    def gamma(img):
        if img.dtype == np.uint8:
            return cv2.LUT(img, lut8)
        f = cv2.pow(img.astype(np.float32) * (1 / 65535), 0.7)
        return cv2.convertScaleAbs(f, alpha=65535) if False else (f * 65535 + 0.5).astype(np.uint16)

    def resize(img):
        h, w = img.shape[:2]
        s = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(s, (w, h), interpolation=cv2.INTER_LINEAR)

    def jpeg(img):
        if img.dtype != np.uint8:
            return None
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 50])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)

    def rotate(img):
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 10, 1.0)
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    k9 = np.zeros((9, 9), np.float32)
    k9[4, :] = 1 / 9

    def motion(img):
        return cv2.filter2D(img, -1, k9, borderType=cv2.BORDER_REFLECT_101)

    def snp(img):
        cv2.setRNGSeed(0)
        u = np.empty(img.shape[:2], np.float32)
        cv2.randu(u, 0.0, 1.0)
        out = img.copy()
        out[u < 0.025] = 0
        out[u > 0.975] = dmax(img)
        return out

    return dict(zip(OPS, [blur, noise, bright, contrast, gamma, resize, jpeg, rotate, motion, snp]))


# ---- Albumentations -------------------------------------------------------------------------
def alb_ops():
    if A is None:
        return {}

    def wrap(t):
        comp = A.Compose([t], seed=0)

        def f(img):
            comp.set_random_seed(0) if hasattr(comp, "set_random_seed") else None
            return comp(image=img)["image"]

        return f

    def resize(img):
        h, w = img.shape[:2]
        a = A.Resize(h // 2, w // 2, interpolation=cv2.INTER_LINEAR, p=1)(image=img)["image"]
        return A.Resize(h, w, interpolation=cv2.INTER_LINEAR, p=1)(image=a)["image"]

    ops = {
        "gaussian blur σ=2": wrap(A.GaussianBlur(blur_limit=0, sigma_limit=(2.0, 2.0), p=1)),
        "gaussian noise σ=0.1·range": wrap(A.GaussNoise(std_range=(0.1, 0.1), mean_range=(0, 0), p=1)),
        "brightness ×1.2": wrap(
            A.RandomBrightnessContrast(brightness_limit=(0, 0), contrast_limit=(0.2, 0.2), p=1)
        ),
        "contrast ×0.8": wrap(
            A.RandomBrightnessContrast(brightness_limit=(0, 0), contrast_limit=(-0.2, -0.2), p=1)
        ),
        "gamma 0.7": wrap(A.RandomGamma(gamma_limit=(70, 70), p=1)),
        "resize ½ then ×2 (bilinear)": resize,
        "JPEG q=50 enc+dec": wrap(A.ImageCompression(quality_range=(50, 50), compression_type="jpeg", p=1)),
        "rotate 10° (bilinear)": wrap(
            A.Rotate(limit=(10, 10), interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_CONSTANT, p=1)
        ),
        "motion blur len 9": wrap(A.MotionBlur(blur_limit=(9, 9), angle_range=(0, 0), direction_range=(0, 0), p=1)),
        "salt & pepper 0.05": wrap(A.SaltAndPepper(amount=(0.05, 0.05), salt_vs_pepper=(0.5, 0.5), p=1)),
    }
    return ops


# ---- Pillow ---------------------------------------------------------------------------------
def pil_ops():
    if Image is None:
        return {}

    def via(fn):
        def f(img):
            if img.dtype != np.uint8:
                return None  # Pillow's filters and enhancers take no 16-bit input
            return np.asarray(fn(Image.fromarray(img)))

        return f

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

    return {
        "gaussian blur σ=2": via(lambda im: im.filter(ImageFilter.GaussianBlur(2))),
        "brightness ×1.2": via(lambda im: ImageEnhance.Brightness(im).enhance(1.2)),
        "contrast ×0.8": via(lambda im: ImageEnhance.Contrast(im).enhance(0.8)),
        "gamma 0.7": via(lambda im: im.point(lut * len(im.getbands()))),
        "resize ½ then ×2 (bilinear)": via(resize),
        "JPEG q=50 enc+dec": via(jpeg),
        "rotate 10° (bilinear)": via(lambda im: im.rotate(10, resample=Image.BILINEAR)),
    }


# ---- scikit-image ---------------------------------------------------------------------------
def sk_ops():
    if skimage is None:
        return {}

    def back(f, img):
        return np.clip(np.rint(f), 0, dmax(img)).astype(img.dtype)

    def blur(img):
        f = skimage.filters.gaussian(img, sigma=2, preserve_range=True, channel_axis=-1 if rgb(img) else None)
        return back(f, img)

    def noise(img):
        f = skimage.util.random_noise(img, mode="gaussian", var=0.01, rng=0)
        return back(f * dmax(img), img)

    def gamma(img):
        return skimage.exposure.adjust_gamma(img, 0.7)

    def resize(img):
        h, w = img.shape[:2]
        s = skimage.transform.resize(img, (h // 2, w // 2), order=1, anti_aliasing=False, preserve_range=True)
        return back(skimage.transform.resize(s, (h, w), order=1, anti_aliasing=False, preserve_range=True), img)

    def rotate(img):
        return back(skimage.transform.rotate(img, 10, order=1, preserve_range=True), img)

    def snp(img):
        f = skimage.util.random_noise(img, mode="s&p", amount=0.05, rng=0)
        return back(f * dmax(img), img)

    return {
        "gaussian blur σ=2": blur,
        "gaussian noise σ=0.1·range": noise,
        "gamma 0.7": gamma,
        "resize ½ then ×2 (bilinear)": resize,
        "rotate 10° (bilinear)": rotate,
        "salt & pepper 0.05": snp,
    }


def time_op(f, img, min_secs, reps):
    for _ in range(3):
        out = f(img)
        if out is None:
            return None
        out = np.asarray(out)
        if out.dtype != img.dtype or out.shape != img.shape:
            # Wrong output (dtype or shape changed): excluded from "fastest", as in the peer table.
            raise ValueError(f"invalid output {out.dtype}{out.shape} for {img.dtype}{img.shape}")
    t = time.perf_counter()
    f(img)
    one = max(time.perf_counter() - t, 1e-9)
    n = max(1, int(np.ceil(min_secs / one)))
    per = []
    gc.disable()
    try:
        for _ in range(reps):
            t = time.perf_counter()
            for _ in range(n):
                f(img)
            per.append((time.perf_counter() - t) * 1e3 / n)
    finally:
        gc.enable()
    per.sort()
    return per[len(per) // 2]


def load(path):
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def fmt_ms(x):
    if x is None:
        return "n/s"
    return f"{x:.3f}" if x < 1 else f"{x:.3g}" if x < 10 else f"{x:.1f}"


def main():
    img_dir, clarity_jsonl = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv
    min_secs, reps = (0.01, 3) if quick else (0.3, 5)
    ours = {}
    for line in open(clarity_jsonl):
        r = json.loads(line)
        ours[(r["op"], r["input"])] = r.get("median_ms")
    libs = [("OpenCV", cv_ops()), ("Albumentations", alb_ops()), ("Pillow", pil_ops()), ("scikit-image", sk_ops())]
    inputs = INPUTS[:1] + INPUTS[2:3] if quick else INPUTS
    print(f"cv2 {cv2.__version__}, albumentations {getattr(A, '__version__', 'n/a')}, "
          f"numpy {np.__version__}; single-threaded; median ms per image\n")
    header = "| op | input | Clarity | " + " | ".join(n for n, _ in libs) + " | ratio (Clarity / fastest peer) |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    worst = 0.0
    for inp in inputs:
        img = load(f"{img_dir}/{inp}.png")
        for op in OPS:
            row = {}
            for name, ops in libs:
                f = ops.get(op)
                try:
                    row[name] = time_op(f, img, min_secs, reps) if f else None
                except Exception as e:  # a peer that cannot do this input
                    print(f"<!-- {name} {op} {inp}: {type(e).__name__}: {e} -->", file=sys.stderr)
                    row[name] = None
            valid = [v for v in row.values() if v is not None]
            mine = ours.get((op, inp))
            if valid and mine is not None:
                ratio = mine / min(valid)
                worst = max(worst, ratio)
                ratio_s = f"{ratio:.2f}x"
            else:
                ratio_s = "—"
            cells = " | ".join(fmt_ms(row[n]) for n, _ in libs)
            print(f"| {op} | {inp} | {fmt_ms(mine)} | {cells} | {ratio_s} |", flush=True)
    print(f"\nworst ratio: {worst:.2f}x (< 1 means Clarity is faster than every peer)")


if __name__ == "__main__":
    main()
