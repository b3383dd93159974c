//! Reading the Prometheus text exposition that the shippers serve on
//! `/metrics` (the Prometheus agent's remote-write series, Alloy's Loki
//! writes), for `hostctl status`: only what status needs — a series'
//! values by metric name, over all label sets — not a full parser.

/// Every value of metric `name` (any labels) in `text`.
pub fn values<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = f64> + 'a {
    text.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        // `name{labels} value [ts]` or `name value [ts]`, not `name_more`.
        let rest = match rest.chars().next()? {
            '{' => &rest[rest.rfind('}')? + 1..],
            ' ' => rest,
            _ => return None,
        };
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The sum of metric `name` over its label sets (0 when absent; a fold
/// from +0, since `Sum for f64` starts at -0, which prints as `-0`).
pub fn sum(text: &str, name: &str) -> f64 {
    values(text, name).fold(0.0, |a, b| a + b)
}

/// The largest value of metric `name`, if it is present.
pub fn max(text: &str, name: &str) -> Option<f64> {
    values(text, name).reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_whole_name_with_or_without_labels() {
        let text = "# HELP up x\n# TYPE up gauge\nup 1\nup{job=\"a b\",x=\"}\"} 2 1700000000\n\
                    up_more 9\nupx{a=\"b\"} 9\n";
        assert_eq!(sum(text, "up"), 3.0);
        assert_eq!(max(text, "up"), Some(2.0));
        assert_eq!(max(text, "absent"), None);
        assert_eq!(sum(text, "absent"), 0.0);
    }
}
