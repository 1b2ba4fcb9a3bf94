//! How the dashboard writes numbers: the same conventions as `tenure report` (money in the
//! currency's own decimals, rates as percentages, `n/a` for an undefined value).

use serde_json::Value;

/// Everything but RFC 3986's unreserved characters.
const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes everything but unreserved characters (RFC 3986): safe in a path segment
/// and in a query value.
pub fn url_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

/// A query string from pairs, `?a=1&b=2`, or empty.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs.into_iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
        any = true;
    }
    if !any {
        String::new()
    } else {
        format!("?{}", query.finish())
    }
}

/// Minor units as `12,345.67 USD`.
pub fn money(minor: Option<f64>, currency: &str) -> String {
    minor.map_or_else(
        || "n/a".to_owned(),
        |m| tenure_core::money::format_minor(m, currency),
    )
}

/// Minor units, short, for axes and bars: `12.3k`, `1.2M` (in major units).
pub fn money_short(minor: f64, currency: &str) -> String {
    let exponent = tenure_core::money::Currency::parse(currency).map_or(2, |c| c.exponent());
    short(minor / 10f64.powi(exponent as i32))
}

/// A number with a k / M suffix past a thousand.
pub fn short(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else if a == a.trunc() {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// A fraction as a percentage, one decimal.
pub fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

/// A plain number, `digits` decimals.
pub fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.digits$}"))
}

/// A whole count with thousands separators.
pub fn count(n: u64) -> String {
    let text = n.to_string();
    let mut out = String::new();
    for (i, ch) in text.chars().enumerate() {
        if i > 0 && (text.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The date part of an ISO-8601 instant.
pub fn date(iso: &str) -> &str {
    iso.get(..10).unwrap_or(iso)
}

/// A JSON value as display text (strings without quotes).
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The raw value of a number for `data-value` attributes: exactly what the API serialises.
pub fn raw(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_owned(), |x| Value::from(x).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_queries() {
        assert_eq!(url_encode("/dashboard?a=b c"), "%2Fdashboard%3Fa%3Db%20c");
        assert_eq!(
            query_string([("grain", "week"), ("plan", ""), ("to", "2026-01-01")]),
            "?grain=week&to=2026-01-01"
        );
        assert_eq!(query_string([("plan", "")]), "");
    }

    #[test]
    fn writes_numbers() {
        assert_eq!(short(1234.0), "1.2k");
        assert_eq!(short(12_345.0), "12k");
        assert_eq!(short(2_500_000.0), "2.5M");
        assert_eq!(short(12.0), "12");
        assert_eq!(money_short(123_456.0, "USD"), "1.2k");
        assert_eq!(money_short(123_456.0, "JPY"), "123k");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(pct(Some(0.0213)), "2.1%");
        assert_eq!(pct(None), "n/a");
        assert_eq!(raw(Some(0.5)), "0.5");
        assert_eq!(raw(None), "null");
    }
}
