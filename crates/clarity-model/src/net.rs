//! The network, with hand-written forward and backward passes.
//!
//! Why not candle: every float operation here has a fixed order (explicit 8-lane dot
//! products, row axpys, sequential sums), uses no fused multiply-add and no run-time SIMD
//! dispatch, and runs on one thread, so training and inference give the same bits on every
//! x86-64 or aarch64 machine at any thread count. candle's CPU matmul (`gemm`) picks FMA or
//! non-FMA kernels and splits work by the number of threads at run time, which would make the
//! committed weights reproducible only on a machine like the one that trained them. The network
//! is small enough (≈140k parameters) that plain loops train it in minutes.
//!
//! Layout is PyTorch's: activations `C×H×W`, conv weights `O×I×3×3`, linear weights
//! `out×in`, so the weights file maps one-to-one onto an ONNX/PyTorch graph:
//!
//! ```text
//! input 1×64×64 → conv3x3(8) → ReLU → maxpool2 → conv3x3(16) → ReLU → maxpool2
//!   → conv3x3(32) → ReLU [saliency layer, 32×16×16] → maxpool2 → flatten(2048)
//!   → linear(64) → ReLU → linear(5) → logits
//! ```
//! (all convolutions stride 1, zero padding 1).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Model input side length.
pub const INPUT: usize = 64;
pub(crate) const C1: usize = 8;
pub(crate) const C2: usize = 16;
pub(crate) const C3: usize = 32;
pub(crate) const HIDDEN: usize = 64;
pub(crate) const CLASSES: usize = 5;
/// Side of the saliency grid (conv3's output).
pub const CAM: usize = INPUT / 4;
const FLAT: usize = C3 * (CAM / 2) * (CAM / 2);

/// Tensor names and shapes, in file order.
pub(crate) const TENSORS: [(&str, &[usize]); 10] = [
    ("conv1.weight", &[C1, 1, 3, 3]),
    ("conv1.bias", &[C1]),
    ("conv2.weight", &[C2, C1, 3, 3]),
    ("conv2.bias", &[C2]),
    ("conv3.weight", &[C3, C2, 3, 3]),
    ("conv3.bias", &[C3]),
    ("fc1.weight", &[HIDDEN, FLAT]),
    ("fc1.bias", &[HIDDEN]),
    ("fc2.weight", &[CLASSES, HIDDEN]),
    ("fc2.bias", &[CLASSES]),
];

const W1: usize = 0;
const B1: usize = 1;
const W2: usize = 2;
const B2: usize = 3;
const W3: usize = 4;
const B3: usize = 5;
const F1W: usize = 6;
const F1B: usize = 7;
const F2W: usize = 8;
pub(crate) const F2B: usize = 9;

/// All parameters (or gradients, or optimiser moments), one flat `Vec` per tensor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Params {
    pub(crate) t: Vec<Vec<f32>>,
}

impl Params {
    pub(crate) fn zeros() -> Self {
        Self {
            t: TENSORS
                .iter()
                .map(|(_, shape)| vec![0.0; shape.iter().product()])
                .collect(),
        }
    }

    /// Kaiming-uniform weights (`U(-b, b)`, `b = sqrt(6 / fan_in)`), zero biases.
    pub(crate) fn init(rng: &mut ChaCha8Rng) -> Self {
        let mut p = Self::zeros();
        for (i, (_, shape)) in TENSORS.iter().enumerate() {
            if shape.len() == 1 {
                continue;
            }
            let fan_in: usize = shape[1..].iter().product();
            let bound = (6.0 / fan_in as f32).sqrt();
            for w in &mut p.t[i] {
                let u = (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0);
                *w = (2.0 * u - 1.0) * bound;
            }
        }
        p
    }

    pub(crate) fn fill_zero(&mut self) {
        for t in &mut self.t {
            t.fill(0.0);
        }
    }
}

/// Intermediate values of one forward pass, kept for the backward pass.
pub(crate) struct Forward {
    pad1: Vec<f32>,
    a1: Vec<f32>,
    idx1: Vec<u32>,
    pad2: Vec<f32>,
    a2: Vec<f32>,
    idx2: Vec<u32>,
    pad3: Vec<f32>,
    /// conv3 after ReLU, `C3×CAM×CAM`: the saliency feature maps.
    pub(crate) a3: Vec<f32>,
    idx3: Vec<u32>,
    p3: Vec<f32>,
    h: Vec<f32>,
    pub(crate) logits: [f32; CLASSES],
}

/// Fixed-order dot product with eight partial sums (vectorisable, yet bit-stable).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `dst += k * src`.
fn axpy(dst: &mut [f32], k: f32, src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += k * s;
    }
}

/// Zero-pads each `h×w` channel by one pixel.
fn pad(input: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let (ph, pw) = (h + 2, w + 2);
    let mut out = vec![0.0; c * ph * pw];
    for ch in 0..c {
        for y in 0..h {
            let dst = ch * ph * pw + (y + 1) * pw + 1;
            out[dst..dst + w].copy_from_slice(&input[ch * h * w + y * w..][..w]);
        }
    }
    out
}

/// 3×3 convolution, stride 1, on an already padded input; ReLU applied.
fn conv_relu(
    padded: &[f32],
    cin: usize,
    h: usize,
    w: usize,
    weight: &[f32],
    bias: &[f32],
    cout: usize,
) -> Vec<f32> {
    let (ph, pw) = (h + 2, w + 2);
    let mut out = vec![0.0; cout * h * w];
    for o in 0..cout {
        let oc = &mut out[o * h * w..(o + 1) * h * w];
        oc.fill(bias[o]);
        for c in 0..cin {
            let plane = &padded[c * ph * pw..(c + 1) * ph * pw];
            for ky in 0..3 {
                for kx in 0..3 {
                    let k = weight[((o * cin + c) * 3 + ky) * 3 + kx];
                    for y in 0..h {
                        axpy(
                            &mut oc[y * w..(y + 1) * w],
                            k,
                            &plane[(y + ky) * pw + kx..][..w],
                        );
                    }
                }
            }
        }
        for v in oc.iter_mut() {
            *v = v.max(0.0);
        }
    }
    out
}

/// Backward of [`conv_relu`]: `grad_out` is w.r.t. the post-ReLU output (masked here);
/// accumulates weight/bias gradients and returns the gradient w.r.t. the unpadded input when
/// `want_input` is set.
#[allow(clippy::too_many_arguments)]
fn conv_relu_backward(
    grad_out: &mut [f32],
    out: &[f32],
    padded: &[f32],
    cin: usize,
    h: usize,
    w: usize,
    weight: &[f32],
    cout: usize,
    gw: &mut [f32],
    gb: &mut [f32],
    want_input: bool,
) -> Option<Vec<f32>> {
    let (ph, pw) = (h + 2, w + 2);
    for (g, &o) in grad_out.iter_mut().zip(out) {
        if o <= 0.0 {
            *g = 0.0;
        }
    }
    let mut gpad = if want_input {
        vec![0.0; cin * ph * pw]
    } else {
        Vec::new()
    };
    for o in 0..cout {
        let go = &grad_out[o * h * w..(o + 1) * h * w];
        let mut bsum = 0.0;
        for y in 0..h {
            bsum += go[y * w..(y + 1) * w].iter().sum::<f32>();
        }
        gb[o] += bsum;
        for c in 0..cin {
            let plane = &padded[c * ph * pw..(c + 1) * ph * pw];
            for ky in 0..3 {
                for kx in 0..3 {
                    let wi = ((o * cin + c) * 3 + ky) * 3 + kx;
                    let mut s = 0.0;
                    for y in 0..h {
                        s += dot(&go[y * w..(y + 1) * w], &plane[(y + ky) * pw + kx..][..w]);
                    }
                    gw[wi] += s;
                    if want_input {
                        let k = weight[wi];
                        let gplane = &mut gpad[c * ph * pw..(c + 1) * ph * pw];
                        for y in 0..h {
                            axpy(
                                &mut gplane[(y + ky) * pw + kx..][..w],
                                k,
                                &go[y * w..(y + 1) * w],
                            );
                        }
                    }
                }
            }
        }
    }
    want_input.then(|| {
        let mut gin = vec![0.0; cin * h * w];
        for c in 0..cin {
            for y in 0..h {
                gin[c * h * w + y * w..][..w]
                    .copy_from_slice(&gpad[c * ph * pw + (y + 1) * pw + 1..][..w]);
            }
        }
        gin
    })
}

/// 2×2 max pooling; remembers the winning input index (first maximum in scan order).
fn maxpool(input: &[f32], c: usize, h: usize, w: usize) -> (Vec<f32>, Vec<u32>) {
    let (oh, ow) = (h / 2, w / 2);
    let mut out = Vec::with_capacity(c * oh * ow);
    let mut idx = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for y in 0..oh {
            for x in 0..ow {
                let mut best = ch * h * w + 2 * y * w + 2 * x;
                for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
                    let i = ch * h * w + (2 * y + dy) * w + 2 * x + dx;
                    if input[i] > input[best] {
                        best = i;
                    }
                }
                out.push(input[best]);
                idx.push(best as u32);
            }
        }
    }
    (out, idx)
}

fn maxpool_backward(grad_out: &[f32], idx: &[u32], input_len: usize) -> Vec<f32> {
    let mut g = vec![0.0; input_len];
    for (&go, &i) in grad_out.iter().zip(idx) {
        g[i as usize] += go;
    }
    g
}

/// Runs the network on one preprocessed `INPUT×INPUT` image.
pub(crate) fn forward(p: &Params, x: &[f32]) -> Forward {
    let n = INPUT;
    let pad1 = pad(x, 1, n, n);
    let a1 = conv_relu(&pad1, 1, n, n, &p.t[W1], &p.t[B1], C1);
    let (p1, idx1) = maxpool(&a1, C1, n, n);
    let n2 = n / 2;
    let pad2 = pad(&p1, C1, n2, n2);
    let a2 = conv_relu(&pad2, C1, n2, n2, &p.t[W2], &p.t[B2], C2);
    let (p2, idx2) = maxpool(&a2, C2, n2, n2);
    let n3 = n2 / 2;
    let pad3 = pad(&p2, C2, n3, n3);
    let a3 = conv_relu(&pad3, C2, n3, n3, &p.t[W3], &p.t[B3], C3);
    let (p3, idx3) = maxpool(&a3, C3, n3, n3);
    let h: Vec<f32> = (0..HIDDEN)
        .map(|j| (p.t[F1B][j] + dot(&p.t[F1W][j * FLAT..(j + 1) * FLAT], &p3)).max(0.0))
        .collect();
    let mut logits = [0.0; CLASSES];
    for (k, l) in logits.iter_mut().enumerate() {
        *l = p.t[F2B][k] + dot(&p.t[F2W][k * HIDDEN..(k + 1) * HIDDEN], &h);
    }
    Forward {
        pad1,
        a1,
        idx1,
        pad2,
        a2,
        idx2,
        pad3,
        a3,
        idx3,
        p3,
        h,
        logits,
    }
}

/// Back-propagates `dlogits` through the dense head to conv3's (post-ReLU) output,
/// accumulating the head's gradients into `g` when given.
fn head_backward(
    p: &Params,
    f: &Forward,
    dlogits: &[f32; CLASSES],
    mut g: Option<&mut Params>,
) -> Vec<f32> {
    let mut dh = vec![0.0; HIDDEN];
    for (k, &dl) in dlogits.iter().enumerate() {
        let row = &p.t[F2W][k * HIDDEN..(k + 1) * HIDDEN];
        axpy(&mut dh, dl, row);
        if let Some(g) = g.as_deref_mut() {
            axpy(&mut g.t[F2W][k * HIDDEN..(k + 1) * HIDDEN], dl, &f.h);
            g.t[F2B][k] += dl;
        }
    }
    let mut dp3 = vec![0.0; FLAT];
    for (j, &dj) in dh.iter().enumerate() {
        if f.h[j] <= 0.0 {
            continue;
        }
        axpy(&mut dp3, dj, &p.t[F1W][j * FLAT..(j + 1) * FLAT]);
        if let Some(g) = g.as_deref_mut() {
            axpy(&mut g.t[F1W][j * FLAT..(j + 1) * FLAT], dj, &f.p3);
            g.t[F1B][j] += dj;
        }
    }
    maxpool_backward(&dp3, &f.idx3, f.a3.len())
}

/// Full backward pass for one sample; gradients are added into `g`.
pub(crate) fn backward(p: &Params, f: &Forward, dlogits: &[f32; CLASSES], g: &mut Params) {
    let n3 = INPUT / 4;
    let n2 = INPUT / 2;
    let n = INPUT;
    let mut da3 = head_backward(p, f, dlogits, Some(g));
    let [gw3, gb3] = two(&mut g.t, W3, B3);
    let dp2 = conv_relu_backward(
        &mut da3, &f.a3, &f.pad3, C2, n3, n3, &p.t[W3], C3, gw3, gb3, true,
    )
    .expect("input gradient requested");
    let mut da2 = maxpool_backward(&dp2, &f.idx2, f.a2.len());
    let [gw2, gb2] = two(&mut g.t, W2, B2);
    let dp1 = conv_relu_backward(
        &mut da2, &f.a2, &f.pad2, C1, n2, n2, &p.t[W2], C2, gw2, gb2, true,
    )
    .expect("input gradient requested");
    let mut da1 = maxpool_backward(&dp1, &f.idx1, f.a1.len());
    let [gw1, gb1] = two(&mut g.t, W1, B1);
    conv_relu_backward(
        &mut da1, &f.a1, &f.pad1, 1, n, n, &p.t[W1], C1, gw1, gb1, false,
    );
}

/// Two distinct mutable tensors (`a < b`).
fn two(t: &mut [Vec<f32>], a: usize, b: usize) -> [&mut [f32]; 2] {
    let (lo, hi) = t.split_at_mut(b);
    [&mut lo[a], &mut hi[0]]
}

/// HiResCAM for class `class` (Draelos & Carin, 2020): the element-wise product of conv3's
/// activations and the class score's gradient, summed over channels, ReLU, scaled to
/// `[0, 1]` (all zeros when no location supports the class). `CAM×CAM`, row-major. Unlike
/// Grad-CAM, which averages the gradient over positions, this stays faithful for a head that
/// flattens the feature maps (where a feature sits matters here: left vs right lung).
pub(crate) fn saliency(p: &Params, f: &Forward, class: usize) -> Vec<f32> {
    let mut onehot = [0.0; CLASSES];
    onehot[class] = 1.0;
    let da3 = head_backward(p, f, &onehot, None);
    let plane = CAM * CAM;
    let mut cam = vec![0.0f32; plane];
    for k in 0..C3 {
        for (c, (g, a)) in cam.iter_mut().zip(
            da3[k * plane..(k + 1) * plane]
                .iter()
                .zip(&f.a3[k * plane..(k + 1) * plane]),
        ) {
            *c += g * a;
        }
    }
    let max = cam.iter().fold(0.0f32, |m, &v| m.max(v));
    for v in &mut cam {
        *v = if max > 0.0 { v.max(0.0) / max } else { 0.0 };
    }
    cam
}

/// `e^x` from range reduction and a polynomial in plain IEEE arithmetic, so softmax (and with
/// it training) does not depend on the platform's libm. Relative error below 1e-15.
pub(crate) fn exp(x: f64) -> f64 {
    if x < -700.0 {
        return 0.0;
    }
    let x = x.min(700.0);
    let k = (x * std::f64::consts::LOG2_E).round();
    let r = x - k * std::f64::consts::LN_2;
    // Taylor series to degree 13 on |r| <= ln2/2.
    let mut term = 1.0;
    let mut sum = 1.0;
    for i in 1..=13 {
        term *= r / f64::from(i);
        sum += term;
    }
    sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// Softmax of `logits / temperature` in f64.
pub(crate) fn softmax(logits: &[f32], temperature: f64) -> Vec<f64> {
    let scaled: Vec<f64> = logits.iter().map(|&l| f64::from(l) / temperature).collect();
    let max = scaled.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let e: Vec<f64> = scaled.iter().map(|&v| exp(v - max)).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn exp_matches_std() {
        for i in -400..=400 {
            let x = f64::from(i) * 0.1;
            let rel = (exp(x) - x.exp()).abs() / x.exp();
            assert!(rel < 1e-14, "{x}: {} vs {}", exp(x), x.exp());
        }
        assert_eq!(exp(-800.0), 0.0);
    }

    /// The analytic gradient agrees with central finite differences.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let p = Params::init(&mut rng);
        let x: Vec<f32> = (0..INPUT * INPUT)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let target = 2;
        let loss = |p: &Params| -> f64 {
            let f = forward(p, &x);
            -softmax(&f.logits, 1.0)[target].ln()
        };
        let f = forward(&p, &x);
        let probs = softmax(&f.logits, 1.0);
        let mut dl = [0.0; CLASSES];
        for k in 0..CLASSES {
            dl[k] = probs[k] as f32 - f32::from(k == target);
        }
        let mut g = Params::zeros();
        backward(&p, &f, &dl, &mut g);
        // One weight from each tensor: pick the entry with the largest gradient.
        for (t, (name, _)) in TENSORS.iter().enumerate() {
            let (i, &gi) = g.t[t]
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap();
            let eps = 1e-2;
            let mut plus = p.clone();
            plus.t[t][i] += eps;
            let mut minus = p.clone();
            minus.t[t][i] -= eps;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(eps));
            let err = (numeric - f64::from(gi)).abs() / numeric.abs().max(1e-3);
            assert!(err < 0.05, "{name}[{i}]: analytic {gi} numeric {numeric}");
        }
    }
}
