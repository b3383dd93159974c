//! The Prometheus text exposition format, version 0.0.4, written by hand.
//!
//! Both agents expose a dozen series; a metrics crate would bring a
//! registry, macros and dependencies the node agent (which travels inside
//! cloud-init user-data) does not need. What the format asks for is small:
//! `# HELP` and `# TYPE` lines, samples `name{label="value"} number`, label
//! values with `\\`, `"` and newlines escaped, and `+Inf`/`-Inf`/`NaN`
//! spelled that way. The values themselves are plain atomics
//! ([`Counter`], [`Gauge`]), per-label maps ([`CounterVec`]) and
//! fixed-bucket [`Histogram`]s that the agents keep and render on demand.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The `Content-Type` of a text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type, as the `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only ever goes up (restarts from zero with the process).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations counted into cumulative buckets.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A monotonic count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters keyed by the value of one label (a node name, a reason). The
/// callers bound the label's values (nodes of the topology, a fixed set of
/// reasons), so the map cannot grow without bound from peer input.
#[derive(Debug, Default)]
pub struct CounterVec(Mutex<BTreeMap<String, u64>>);

impl CounterVec {
    /// Adds one to the counter for `label`.
    pub fn inc(&self, label: &str) {
        if let Ok(mut m) = self.0.lock() {
            match m.get_mut(label) {
                Some(n) => *n += 1,
                None => {
                    m.insert(label.to_owned(), 1);
                }
            }
        }
    }
    /// Makes `label` appear (at zero) before anything happened, so a query
    /// for it finds a series rather than nothing.
    pub fn touch(&self, label: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.entry(label.to_owned()).or_insert(0);
        }
    }
    /// The count for `label`.
    pub fn get(&self, label: &str) -> u64 {
        self.0
            .lock()
            .ok()
            .and_then(|m| m.get(label).copied())
            .unwrap_or(0)
    }
    fn snapshot(&self) -> Vec<(String, u64)> {
        self.0
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}

/// Observations in fixed cumulative buckets (upper bounds, ascending).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    state: Mutex<HistogramState>,
}

#[derive(Debug, Default, Clone)]
struct HistogramState {
    /// Per bucket (not cumulative); one more than `bounds` for `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    /// A histogram with these upper bounds (`+Inf` is implied).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            state: Mutex::new(HistogramState {
                counts: vec![0; bounds.len() + 1],
                sum: 0.0,
            }),
        }
    }
    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        if let Ok(mut s) = self.state.lock() {
            s.counts[i] += 1;
            s.sum += v;
        }
    }
    /// How many observations were made.
    pub fn count(&self) -> u64 {
        self.state
            .lock()
            .map(|s| s.counts.iter().sum())
            .unwrap_or(0)
    }
}

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Every sample of
    /// the family must follow before the next family starts.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&number(value));
        self.out.push('\n');
    }

    /// A family with a single unlabelled counter.
    pub fn counter(&mut self, name: &str, help: &str, c: &Counter) {
        self.family(name, help, Kind::Counter);
        self.sample(name, &[], c.get() as f64);
    }

    /// A family with a single unlabelled gauge.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, Kind::Gauge);
        self.sample(name, &[], value);
    }

    /// A counter family, one series per value of `label`.
    pub fn counter_vec(&mut self, name: &str, help: &str, label: &str, c: &CounterVec) {
        self.family(name, help, Kind::Counter);
        for (value, n) in c.snapshot() {
            self.sample(name, &[(label, &value)], n as f64);
        }
    }

    /// A histogram family with one unlabelled histogram.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, help, Kind::Histogram);
        let state = h.state.lock().map(|s| s.clone()).unwrap_or_default();
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, n) in state.counts.iter().enumerate() {
            cumulative += n;
            let le = h.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            self.sample(&bucket, &[("le", &number(le))], cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), &[], state.sum);
        self.sample(&format!("{name}_count"), &[], cumulative as f64);
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as the format spells it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes_follow_the_text_format() {
        let mut e = Exposition::new();
        let c = Counter::default();
        c.add(3);
        e.counter("x_total", "Things.\nMore", &c);
        let v = CounterVec::default();
        v.inc("a\"b");
        v.touch("c");
        e.counter_vec("y_total", "Per node.", "node", &v);
        e.gauge("z", "Age.", 1.5);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_total Things.\\nMore\n# TYPE x_total counter\nx_total 3\n\
             # HELP y_total Per node.\n# TYPE y_total counter\ny_total{node=\"a\\\"b\"} 1\ny_total{node=\"c\"} 0\n\
             # HELP z Age.\n# TYPE z gauge\nz 1.5\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        static BOUNDS: [f64; 2] = [0.5, 2.0];
        let h = Histogram::new(&BOUNDS);
        h.observe(0.1);
        h.observe(1.0);
        h.observe(9.0);
        let mut e = Exposition::new();
        e.histogram("d_seconds", "D.", &h);
        let text = e.finish();
        assert!(text.contains("d_seconds_bucket{le=\"0.5\"} 1\n"), "{text}");
        assert!(text.contains("d_seconds_bucket{le=\"2\"} 2\n"), "{text}");
        assert!(text.contains("d_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("d_seconds_sum 10.1\n"), "{text}");
        assert!(text.contains("d_seconds_count 3\n"), "{text}");
        assert_eq!(h.count(), 3);
    }
}
