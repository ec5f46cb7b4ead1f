//! Label values encoded in Istio's stat-name form.
//!
//! Envoy has no labelled custom metrics: Istio encodes labels into the stat name as
//! `name=.=value;.;` segments, and `stats_config.stats_tags` regexes
//! `(name=\.=(.*?);\.;)` (what Istio generates from `extraStatTags`) lift them back into
//! labels. A value therefore must never contain `;.;` or `=.=`, and Prometheus label
//! values should stay printable: values are reduced to a safe alphabet.

/// Characters kept in label values: Kafka's topic alphabet plus what workload names,
/// namespaces and client ids commonly use. Everything else becomes `_`.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '@')
}

/// Longest label value kept (Kafka topics are at most 249 characters).
pub const MAX_VALUE: usize = 249;

/// A label value safe inside an Istio-encoded stat name and in Prometheus output.
pub fn sanitize(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out: String = text
        .chars()
        .take(MAX_VALUE)
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// Appends `name=.=value;.;` to a stat name being built.
pub fn push(stat: &mut String, name: &str, value: &str) {
    stat.push_str(name);
    stat.push_str("=.=");
    stat.push_str(value);
    stat.push_str(";.;");
}

/// The Envoy `stats_tags` regex that extracts label `name` (Istio's form).
pub fn tag_regex(name: &str) -> String {
    format!(r"({name}=\.=(.*?);\.;)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_topic_alphabet_and_neutralises_separators() {
        assert_eq!(sanitize(b"orders.eu-west_1"), "orders.eu-west_1");
        assert_eq!(sanitize(b"a;.;b=.=c\"d\n"), "a_._b_._c_d_");
        assert_eq!(sanitize(b""), "_");
        assert_eq!(sanitize(&[0xff, b'x']), "_x");
        assert_eq!(sanitize(&[b'x'; 400]).len(), MAX_VALUE);
    }
}
