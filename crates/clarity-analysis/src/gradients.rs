use serde::Serialize;

/// Derivative of `ys` over `xs` (strictly increasing): the three-point formula for non-uniform
/// spacing at interior points, one-sided first differences at the two ends. `None` where a
/// needed value is undefined or when there is a single point.
///
/// Interior, with `h1 = x[i] - x[i-1]`, `h2 = x[i+1] - x[i]`:
/// `f' = -h2/(h1(h1+h2)) f[i-1] + (h2-h1)/(h1 h2) f[i] + h1/(h2(h1+h2)) f[i+1]`.
pub fn gradient_nonuniform(xs: &[f64], ys: &[Option<f64>]) -> Vec<Option<f64>> {
    let n = xs.len().min(ys.len());
    (0..n)
        .map(|i| {
            if n < 2 {
                return None;
            }
            if i == 0 {
                let (y0, y1) = (ys[0]?, ys[1]?);
                return Some((y1 - y0) / (xs[1] - xs[0]));
            }
            if i == n - 1 {
                let (y0, y1) = (ys[n - 2]?, ys[n - 1]?);
                return Some((y1 - y0) / (xs[n - 1] - xs[n - 2]));
            }
            let (f0, f1, f2) = (ys[i - 1]?, ys[i]?, ys[i + 1]?);
            let h1 = xs[i] - xs[i - 1];
            let h2 = xs[i + 1] - xs[i];
            Some(
                -h2 / (h1 * (h1 + h2)) * f0
                    + (h2 - h1) / (h1 * h2) * f1
                    + h1 / (h2 * (h1 + h2)) * f2,
            )
        })
        .map(|g| g.filter(|v| v.is_finite()))
        .collect()
}

/// Gradient of one metric's marginal curve along one numeric axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gradient {
    pub axis: String,
    pub axis_index: usize,
    pub metric: String,
    /// The axis values (the real spacing used by `per_unit`).
    pub values: Vec<f64>,
    /// The marginal curve differentiated.
    pub curve: Vec<Option<f64>>,
    /// Metric units per parameter unit.
    pub per_unit: Vec<Option<f64>>,
    /// Metric units per severity step (level index spacing).
    pub per_step: Vec<Option<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonuniform_spacing_is_used() {
        // y = x^2 on 0, 0.5, 2, 10: the three-point formula is exact for quadratics inside.
        let xs = [0.0, 0.5, 2.0, 10.0];
        let ys: Vec<Option<f64>> = xs.iter().map(|x| Some(x * x)).collect();
        let g = gradient_nonuniform(&xs, &ys);
        assert_eq!(g[0], Some(0.5)); // (0.25 - 0) / 0.5
        assert!((g[1].unwrap() - 1.0).abs() < 1e-12);
        assert!((g[2].unwrap() - 4.0).abs() < 1e-12);
        assert_eq!(g[3], Some(12.0)); // (100 - 4) / 8
        assert_eq!(gradient_nonuniform(&[1.0], &[Some(1.0)]), vec![None]);
        let holes = gradient_nonuniform(&[0.0, 1.0, 2.0], &[Some(1.0), None, Some(0.0)]);
        assert_eq!(holes, vec![None, None, None]);
    }
}
