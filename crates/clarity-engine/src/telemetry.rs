//! Execution telemetry: model latency percentiles (a log-bucketed histogram, so memory does not
//! grow with the number of runs) and the progress display (a bar on a terminal; on any other
//! stderr, such as a Slurm or CI log, a plain line every `CLARITY_PROGRESS_SECS` seconds,
//! default 10, `0` for none, plus one when the execution ends).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Buckets grow by 2%: a percentile is exact to within 2% (and never above the maximum).
const GROWTH: f64 = 1.02;
/// The first bucket holds everything below 1 µs.
const FLOOR_NS: f64 = 1_000.0;
/// 1 µs × 1.02^1299 ≈ 1.5 · 10^5 s (41 hours); anything longer lands in the last bucket, whose
/// percentiles are reported as the maximum.
const BUCKETS: usize = 1_300;

/// A latency histogram: counts per bucket, plus the exact count, sum and maximum.
#[derive(Debug, Clone)]
pub struct Latencies {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    max: f64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0.0,
            max: 0.0,
        }
    }
}

/// Percentiles of the model calls' latency, in seconds (`telemetry.json` `model_latency`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Adapter calls measured (retries included; answers from the cache are not calls).
    pub calls: u64,
    pub mean_secs: f64,
    pub p50_secs: f64,
    pub p95_secs: f64,
    pub p99_secs: f64,
    pub max_secs: f64,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        let ns = d.as_nanos() as f64;
        let i = if ns < FLOOR_NS {
            0
        } else {
            (((ns / FLOOR_NS).ln() / GROWTH.ln()).floor() as usize + 1).min(BUCKETS - 1)
        };
        self.counts[i] += 1;
        self.count += 1;
        let s = d.as_secs_f64();
        self.sum += s;
        self.max = self.max.max(s);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0 < q ≤ 1) in seconds: the upper edge of the bucket holding the
    /// `ceil(q · count)`-th smallest latency, capped at the maximum (0 when empty). Monotone in
    /// `q`, so p50 ≤ p95 ≤ p99 ≤ max.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                if i == BUCKETS - 1 {
                    return self.max;
                }
                let upper_ns = FLOOR_NS * GROWTH.powi(i as i32);
                return (upper_ns / 1e9).min(self.max);
            }
        }
        self.max
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            calls: self.count,
            mean_secs: if self.count == 0 {
                0.0
            } else {
                self.sum / self.count as f64
            },
            p50_secs: self.quantile(0.50),
            p95_secs: self.quantile(0.95),
            p99_secs: self.quantile(0.99),
            max_secs: self.max,
        }
    }
}

/// What the progress display shows, at one moment.
pub(crate) struct Snapshot<'a> {
    /// Keys recorded (journal included) and planned.
    pub done: u64,
    pub total: u64,
    /// Recorded in this invocation (the rate's numerator).
    pub recorded_now: u64,
    pub latencies: &'a Latencies,
    /// Summed time the adapter was busy, and the call slots.
    pub adapter_busy: f64,
    pub slots: usize,
    /// Calls running right now.
    pub in_flight_now: usize,
}

/// The progress display of one execution.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    /// Plain lines (stderr is not a terminal): every this often.
    plain: Option<Duration>,
    start: Instant,
    last: Instant,
    /// Whether the bar's message was refreshed recently (it is cheap, but not free).
    last_message: Instant,
}

/// `CLARITY_PROGRESS_SECS`: seconds between plain progress lines (default 10; 0: none).
pub(crate) fn plain_interval() -> Option<Duration> {
    let secs = match std::env::var("CLARITY_PROGRESS_SECS") {
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => s,
            _ => {
                tracing::warn!("CLARITY_PROGRESS_SECS={v:?} is not a number of seconds; using 10");
                10.0
            }
        },
        Err(_) => 10.0,
    };
    (secs > 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

impl Progress {
    pub fn new(enabled: bool, total: u64, done: u64) -> Progress {
        let now = Instant::now();
        let tty = std::io::stderr().is_terminal();
        let bar = if enabled && tty {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} runs ({per_sec}, eta {eta}) {msg}",
            ) {
                bar.set_style(style);
            }
            bar.set_position(done);
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        Progress {
            bar,
            plain: if enabled && !tty {
                plain_interval()
            } else {
                None
            },
            start: now,
            last: now,
            last_message: now,
        }
    }

    /// How often the caller should call [`Progress::tick`] while nothing finishes.
    pub fn interval(&self) -> Option<Duration> {
        self.plain
    }

    /// One more run recorded.
    pub fn inc(&mut self, s: &Snapshot<'_>) {
        self.bar.inc(1);
        if !self.bar.is_hidden() && self.last_message.elapsed() >= Duration::from_millis(500) {
            self.last_message = Instant::now();
            self.bar.set_message(details(s, self.start.elapsed()));
        }
        self.tick(s);
    }

    /// A plain line when one is due.
    pub fn tick(&mut self, s: &Snapshot<'_>) {
        if let Some(every) = self.plain
            && self.last.elapsed() >= every
        {
            self.last = Instant::now();
            eprintln!("{}", line(s, self.start.elapsed()));
        }
    }

    /// Clears the bar; a last plain line.
    pub fn finish(&mut self, s: &Snapshot<'_>) {
        self.bar.finish_and_clear();
        if self.plain.is_some() {
            eprintln!("{} (done)", line(s, self.start.elapsed()));
        }
    }
}

fn ms(secs: f64) -> String {
    if secs >= 10.0 {
        format!("{secs:.0}s")
    } else if secs >= 1.0 {
        format!("{secs:.1}s")
    } else {
        format!("{:.0}ms", secs * 1000.0)
    }
}

/// Model latency and slot use (the bar's message, and the end of a plain line).
fn details(s: &Snapshot<'_>, elapsed: Duration) -> String {
    let mut t = String::new();
    if s.latencies.count() > 0 {
        t.push_str(&format!(
            "model p50 {} p95 {} p99 {}; ",
            ms(s.latencies.quantile(0.5)),
            ms(s.latencies.quantile(0.95)),
            ms(s.latencies.quantile(0.99))
        ));
    }
    let cap = elapsed.as_secs_f64() * s.slots.max(1) as f64;
    let util = if cap > 0.0 {
        (s.adapter_busy / cap).min(1.0)
    } else {
        0.0
    };
    t.push_str(&format!(
        "{}/{} calls in flight, slots {:.0}% busy",
        s.in_flight_now,
        s.slots,
        util * 100.0
    ));
    t
}

/// `clarity: 40/72 runs (56%), 12.3 runs/s, eta 3s; model p50 … ; 2/2 calls in flight, …`.
fn line(s: &Snapshot<'_>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        s.recorded_now as f64 / secs
    } else {
        0.0
    };
    let pct = if s.total > 0 {
        100.0 * s.done as f64 / s.total as f64
    } else {
        100.0
    };
    let left = s.total.saturating_sub(s.done);
    let eta = if left == 0 {
        "0s".to_string()
    } else if rate > 0.0 {
        ms(left as f64 / rate)
    } else {
        "?".to_string()
    };
    format!(
        "clarity: {}/{} runs ({pct:.0}%), {rate:.1} runs/s, elapsed {}, eta {eta}; {}",
        s.done,
        s.total,
        ms(secs),
        details(s, elapsed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_close_ordered_and_capped() {
        let mut h = Latencies::default();
        assert_eq!(h.summary(), LatencySummary::default());
        // 1..=1000 ms.
        for i in 1..=1000u64 {
            h.record(Duration::from_millis(i));
        }
        let s = h.summary();
        assert_eq!(s.calls, 1000);
        assert!((s.mean_secs - 0.5005).abs() < 1e-9);
        for (got, want) in [(s.p50_secs, 0.5), (s.p95_secs, 0.95), (s.p99_secs, 0.99)] {
            assert!(
                got >= want && got <= want * GROWTH + 1e-9,
                "{got} vs {want}"
            );
        }
        assert!(s.p50_secs <= s.p95_secs && s.p95_secs <= s.p99_secs && s.p99_secs <= s.max_secs);
        assert_eq!(s.max_secs, 1.0);
        // One value: every percentile is it (capped at the maximum, not the bucket's edge).
        let mut one = Latencies::default();
        one.record(Duration::from_micros(1234));
        let s = one.summary();
        assert_eq!(
            (s.p50_secs, s.p99_secs, s.max_secs),
            (0.001234, 0.001234, 0.001234)
        );
        // Below the floor and absurdly large values land in the end buckets.
        let mut ext = Latencies::default();
        ext.record(Duration::from_nanos(5));
        ext.record(Duration::from_secs(1 << 40));
        assert!(ext.quantile(0.5) <= 1e-6);
        assert_eq!(ext.quantile(1.0), (1u64 << 40) as f64);
    }

    #[test]
    fn the_plain_line_reads_well() {
        let mut h = Latencies::default();
        h.record(Duration::from_millis(20));
        let s = Snapshot {
            done: 30,
            total: 60,
            recorded_now: 20,
            latencies: &h,
            adapter_busy: 3.0,
            slots: 2,
            in_flight_now: 2,
        };
        assert_eq!(
            line(&s, Duration::from_secs(2)),
            "clarity: 30/60 runs (50%), 10.0 runs/s, elapsed 2.0s, eta 3.0s; model p50 20ms p95 20ms p99 20ms; 2/2 calls in flight, slots 75% busy"
        );
    }
}
