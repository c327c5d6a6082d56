//! Image → model input tensor.

use clarity_image::{Channels, Image};
use fast_image_resize as fir;

use super::config::{ChannelMode, Fit, Layout, ResizeFilter, Scale};

/// The resolved preprocessing: image → model input tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessing {
    pub width: u32,
    pub height: u32,
    pub channels: ChannelMode,
    pub layout: Layout,
    pub resize: ResizeFilter,
    pub scale: Scale,
    /// One per channel.
    pub mean: Vec<f32>,
    /// One per channel, > 0.
    pub std: Vec<f32>,
    pub fit: Fit,
    /// `Fit::Letterbox` padding, in `[0, 1]` sample units.
    pub pad: f32,
}

impl Preprocessing {
    /// The input tensor's shape (batch of one).
    pub fn shape(&self) -> [usize; 4] {
        self.batch_shape(1)
    }

    /// The input shape of a batch of `n` images.
    pub fn batch_shape(&self, n: usize) -> [usize; 4] {
        let (c, h, w) = (
            self.channels.count(),
            self.height as usize,
            self.width as usize,
        );
        match self.layout {
            Layout::Nchw => [n, c, h, w],
            Layout::Nhwc => [n, h, w, c],
        }
    }

    pub(super) fn settings(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "input_size": [self.width, self.height],
            "channels": self.channels.as_str(),
            "layout": self.layout.as_str(),
            "resize": self.resize.as_str(),
            "scale": self.scale.as_str(),
            "mean": self.mean,
            "std": self.std,
        });
        // Only when not the default, so configs written before `fit` existed keep their keys.
        if self.fit != Fit::Stretch {
            v["fit"] = serde_json::json!(self.fit.as_str());
        }
        if self.fit == Fit::Letterbox {
            v["pad"] = serde_json::json!(self.pad);
        }
        v
    }
}

/// The model input for `image`, in `p.layout` order (`p.shape()`).
///
/// Order: samples to `[0, 1]` → channel conversion → resize (skipped when the size already
/// matches) → `× 255` for [`Scale::Byte`] → `(x − mean[c]) / std[c]`.
pub fn preprocess(image: &Image, p: &Preprocessing) -> Vec<f32> {
    let unit = image.to_unit_f32();
    let c = p.channels.count();
    let converted: Vec<f32> = match (image.channels(), p.channels) {
        (Channels::Gray, ChannelMode::Gray) | (Channels::Rgb, ChannelMode::Rgb) => unit,
        (Channels::Rgb, ChannelMode::Gray) => unit
            .chunks_exact(3)
            .map(|px| 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2])
            .collect(),
        (Channels::Gray, ChannelMode::Rgb) => unit.iter().flat_map(|&g| [g, g, g]).collect(),
    };
    let mut hwc = fit_to_input(converted, c, (image.width(), image.height()), p);
    let factor = match p.scale {
        Scale::Unit => 1.0,
        Scale::Byte => 255.0,
    };
    for (i, v) in hwc.iter_mut().enumerate() {
        let ch = i % c;
        *v = (*v * factor - p.mean[ch]) / p.std[ch];
    }
    match p.layout {
        Layout::Nhwc => hwc,
        Layout::Nchw => {
            let plane = p.width as usize * p.height as usize;
            let mut out = vec![0.0; hwc.len()];
            for (i, v) in hwc.into_iter().enumerate() {
                out[(i % c) * plane + i / c] = v;
            }
            out
        }
    }
}

/// Fits interleaved `px` (`c` channels, size `from`) to the input size as `p.fit` says.
fn fit_to_input(px: Vec<f32>, c: usize, from: (u32, u32), p: &Preprocessing) -> Vec<f32> {
    let to = (p.width, p.height);
    match p.fit {
        Fit::Stretch => resize_any(px, c, from, to, p.resize),
        Fit::CenterCrop => {
            let (x0, y0, cw, ch) = center_crop_box(from, to);
            let row = from.0 as usize * c;
            let mut cropped = Vec::with_capacity(cw as usize * ch as usize * c);
            for y in y0..y0 + ch {
                let start = y as usize * row + x0 as usize * c;
                cropped.extend_from_slice(&px[start..start + cw as usize * c]);
            }
            resize_any(cropped, c, (cw, ch), to, p.resize)
        }
        Fit::Letterbox => {
            let (nw, nh) = letterbox_size(from, to);
            let inner = resize_any(px, c, from, (nw, nh), p.resize);
            let mut out = vec![p.pad; to.0 as usize * to.1 as usize * c];
            let (ox, oy) = ((to.0 - nw) / 2, (to.1 - nh) / 2);
            let (in_row, out_row) = (nw as usize * c, to.0 as usize * c);
            for y in 0..nh as usize {
                let dst = (oy as usize + y) * out_row + ox as usize * c;
                out[dst..dst + in_row].copy_from_slice(&inner[y * in_row..(y + 1) * in_row]);
            }
            out
        }
    }
}

/// `a · b / d` rounded half up, at least 1 and at most `max`, in integers (no float rounding
/// differences between machines).
fn scaled(a: u32, b: u32, d: u32, max: u32) -> u32 {
    let v = (2 * u64::from(a) * u64::from(b) + u64::from(d)) / (2 * u64::from(d));
    (v as u32).clamp(1, max)
}

/// `(x0, y0, width, height)` of the largest centred region of a `from` image with the aspect
/// ratio of `to`.
pub(super) fn center_crop_box(from: (u32, u32), to: (u32, u32)) -> (u32, u32, u32, u32) {
    if u64::from(from.0) * u64::from(to.1) > u64::from(from.1) * u64::from(to.0) {
        // Wider than the input: keep the full height.
        let cw = scaled(from.1, to.0, to.1, from.0);
        ((from.0 - cw) / 2, 0, cw, from.1)
    } else {
        let ch = scaled(from.0, to.1, to.0, from.1);
        (0, (from.1 - ch) / 2, from.0, ch)
    }
}

/// The size a `from` image is resized to so it fits inside `to` with its aspect ratio kept.
pub(super) fn letterbox_size(from: (u32, u32), to: (u32, u32)) -> (u32, u32) {
    if u64::from(from.0) * u64::from(to.1) >= u64::from(from.1) * u64::from(to.0) {
        (to.0, scaled(from.1, to.0, from.0, to.1))
    } else {
        (scaled(from.0, to.1, from.1, to.0), to.1)
    }
}

/// Resizes interleaved gray (`c = 1`) or RGB (`c = 3`) samples; the same size is untouched.
fn resize_any(
    px: Vec<f32>,
    c: usize,
    from: (u32, u32),
    to: (u32, u32),
    f: ResizeFilter,
) -> Vec<f32> {
    if from == to {
        return px;
    }
    if c == 1 {
        let px = px.into_iter().map(fir::pixels::F32::new).collect();
        clarity_perturb::fir_resize(px, from, to, f.alg())
            .into_iter()
            .map(|q| q.0)
            .collect()
    } else {
        let px = px
            .chunks_exact(3)
            .map(|q| fir::pixels::F32x3::new([q[0], q[1], q[2]]))
            .collect();
        clarity_perturb::fir_resize(px, from, to, f.alg())
            .into_iter()
            .flat_map(|q| q.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(w: u32, h: u32, channels: ChannelMode, layout: Layout) -> Preprocessing {
        let n = channels.count();
        Preprocessing {
            width: w,
            height: h,
            channels,
            layout,
            resize: ResizeFilter::Area,
            scale: Scale::Unit,
            mean: vec![0.0; n],
            std: vec![1.0; n],
            fit: Fit::Stretch,
            pad: 0.0,
        }
    }

    fn rgb_2x1() -> Image {
        // Two pixels: pure red, then white.
        Image::from_u8(2, 1, Channels::Rgb, vec![255, 0, 0, 255, 255, 255]).unwrap()
    }

    #[test]
    fn layouts_order_the_same_values() {
        let img = rgb_2x1();
        let nhwc = preprocess(&img, &pre(2, 1, ChannelMode::Rgb, Layout::Nhwc));
        assert_eq!(nhwc, [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let nchw = preprocess(&img, &pre(2, 1, ChannelMode::Rgb, Layout::Nchw));
        // Planes: r r, g g, b b.
        assert_eq!(nchw, [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(
            pre(2, 1, ChannelMode::Rgb, Layout::Nchw).shape(),
            [1, 3, 1, 2]
        );
        assert_eq!(
            pre(2, 1, ChannelMode::Rgb, Layout::Nhwc).shape(),
            [1, 1, 2, 3]
        );
    }

    #[test]
    fn channel_conversions() {
        let gray = preprocess(&rgb_2x1(), &pre(2, 1, ChannelMode::Gray, Layout::Nchw));
        assert!((gray[0] - 0.299).abs() < 1e-6, "{gray:?}");
        assert!((gray[1] - 1.0).abs() < 1e-6, "{gray:?}");
        let g = Image::from_u16(1, 1, Channels::Gray, vec![65535]).unwrap();
        let rgb = preprocess(&g, &pre(1, 1, ChannelMode::Rgb, Layout::Nhwc));
        assert_eq!(rgb, [1.0, 1.0, 1.0]);
    }

    #[test]
    fn scale_mean_and_std_per_channel() {
        let mut p = pre(2, 1, ChannelMode::Rgb, Layout::Nhwc);
        p.scale = Scale::Byte;
        p.mean = vec![100.0, 0.0, 55.0];
        p.std = vec![2.0, 1.0, 4.0];
        let v = preprocess(&rgb_2x1(), &p);
        assert_eq!(v, [77.5, 0.0, -13.75, 77.5, 255.0, 50.0]);
    }

    #[test]
    fn area_resize_averages_blocks_and_same_size_is_untouched() {
        // 4×2 → 2×1: each output is the mean of a 2×2 block.
        let img = Image::from_u8(
            4,
            2,
            Channels::Gray,
            vec![0, 50, 100, 150, 100, 150, 200, 250],
        )
        .unwrap();
        let v = preprocess(&img, &pre(2, 1, ChannelMode::Gray, Layout::Nchw));
        assert!((v[0] - 75.0 / 255.0).abs() < 1e-6, "{v:?}");
        assert!((v[1] - 175.0 / 255.0).abs() < 1e-6, "{v:?}");
        let same = preprocess(&img, &pre(4, 2, ChannelMode::Gray, Layout::Nchw));
        assert_eq!(same, img.to_unit_f32());
        // Every filter gives the target size, for gray and RGB.
        for resize in [
            ResizeFilter::Area,
            ResizeFilter::Bilinear,
            ResizeFilter::Bicubic,
            ResizeFilter::Nearest,
        ] {
            for channels in [ChannelMode::Gray, ChannelMode::Rgb] {
                let mut p = pre(3, 5, channels, Layout::Nchw);
                p.resize = resize;
                assert_eq!(preprocess(&img, &p).len(), 15 * channels.count());
            }
        }
    }

    #[test]
    fn crop_and_letterbox_geometry() {
        // 8×4 into a square: crop the middle 4×4; letterbox to 8 wide, 4 high → 4×2 inside 4×4.
        assert_eq!(center_crop_box((8, 4), (4, 4)), (2, 0, 4, 4));
        assert_eq!(center_crop_box((4, 8), (4, 4)), (0, 2, 4, 4));
        assert_eq!(center_crop_box((5, 5), (2, 2)), (0, 0, 5, 5));
        assert_eq!(letterbox_size((8, 4), (4, 4)), (4, 2));
        assert_eq!(letterbox_size((4, 8), (4, 4)), (2, 4));
        assert_eq!(letterbox_size((447, 512), (64, 64)), (56, 64));
        // Never zero, even for a needle-thin image.
        assert_eq!(letterbox_size((1000, 1), (4, 4)), (4, 1));
    }

    #[test]
    fn center_crop_and_letterbox_keep_the_aspect_ratio() {
        // 4×2 gray: left half 0, right half 255; a vertical stripe pattern.
        let img =
            Image::from_u8(4, 2, Channels::Gray, vec![0, 0, 255, 255, 0, 0, 255, 255]).unwrap();
        let mut p = pre(2, 2, ChannelMode::Gray, Layout::Nhwc);
        p.resize = ResizeFilter::Nearest;
        // Stretch squeezes both halves in; centre crop keeps the middle columns 1..3.
        p.fit = Fit::CenterCrop;
        assert_eq!(preprocess(&img, &p), [0.0, 1.0, 0.0, 1.0]);
        // Letterbox: 4×2 → 2×1 in the middle... of a 2×2 input: row 0 is the image, row 1 pad.
        p.fit = Fit::Letterbox;
        p.pad = 0.5;
        let v = preprocess(&img, &p);
        assert_eq!(v.len(), 4);
        assert_eq!(&v[2..], [0.5, 0.5], "{v:?}");
        assert_eq!(&v[..2], [0.0, 1.0], "{v:?}");
        // A square image is untouched by either fit when the input is square too.
        let sq = Image::from_u8(2, 2, Channels::Gray, vec![0, 85, 170, 255]).unwrap();
        for fit in [Fit::Stretch, Fit::CenterCrop, Fit::Letterbox] {
            p.fit = fit;
            assert_eq!(preprocess(&sq, &p), sq.to_unit_f32());
        }
    }
}
