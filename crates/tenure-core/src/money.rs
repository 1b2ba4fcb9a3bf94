//! Money: integer minor units plus an ISO 4217 currency. No floats are stored.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 alphabetic code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// ISO 4217 alphabetic codes Tenure accepts, sorted: the current list (funds and precious
/// metals included), and currencies withdrawn since 1999, so that history (a 2022 order in
/// kuna) can be imported. `XTS` (testing) and `XXX` (no currency) are left out.
const ISO_4217: &[&str] = &[
    "ADP", "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "ATS", "AUD", "AWG", "AZM", "AZN",
    "BAM", "BBD", "BDT", "BEF", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD",
    "BTN", "BWP", "BYN", "BYR", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY",
    "COP", "COU", "CRC", "CSD", "CUC", "CUP", "CVE", "CYP", "CZK", "DEM", "DJF", "DKK", "DOP",
    "DZD", "EEK", "EGP", "ERN", "ESP", "ETB", "EUR", "FIM", "FJD", "FKP", "FRF", "GBP", "GEL",
    "GHC", "GHS", "GIP", "GMD", "GNF", "GRD", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF",
    "IDR", "IEP", "ILS", "INR", "IQD", "IRR", "ISK", "ITL", "JMD", "JOD", "JPY", "KES", "KGS",
    "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LTL",
    "LUF", "LVL", "LYD", "MAD", "MDL", "MGA", "MGF", "MKD", "MMK", "MNT", "MOP", "MRO", "MRU",
    "MTL", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZM", "MZN", "NAD", "NGN", "NIO", "NLG",
    "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PTE", "PYG", "QAR",
    "ROL", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDD", "SDG", "SEK", "SGD", "SHP",
    "SIT", "SKK", "SLE", "SLL", "SOS", "SRD", "SRG", "SSP", "STD", "STN", "SVC", "SYP", "SZL",
    "THB", "TJS", "TMM", "TMT", "TND", "TOP", "TRL", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX",
    "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VEB", "VED", "VEF", "VES", "VND", "VUV", "WST",
    "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF",
    "XPT", "XSU", "XUA", "YER", "ZAR", "ZMK", "ZMW", "ZWD", "ZWG", "ZWL", "ZWN", "ZWR",
];

impl Currency {
    /// Accepts an ISO 4217 code in any case (`usd` → `USD`); anything else (`XYZ`, `$`) is
    /// `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        let code = [
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ];
        ISO_4217
            .binary_search_by(|known| known.as_bytes().cmp(&code[..]))
            .ok()
            .map(|_| Self(code))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (ISO 4217 minor unit). Most currencies use 2.
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).ok_or_else(|| format!("`{value}` is not an ISO 4217 currency code"))
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

/// Largest amount accepted, in minor units (below 2^53, so every amount converts exactly).
pub const MAX_MINOR_UNITS: i64 = 9_000_000_000_000_000;

/// The largest accepted amount as a decimal in `currency` (`90000000000000.00` for USD).
pub fn max_decimal(currency: Currency) -> String {
    let exponent = currency.exponent();
    let whole = MAX_MINOR_UNITS / 10i64.pow(exponent);
    if exponent == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", "0".repeat(exponent as usize))
    }
}

/// An amount in the currency's minor units (cents for USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    /// Converts a decimal amount as Segment events carry it (`19.99`) to minor units,
    /// rounding half away from zero. Rejects amounts that do not fit in `i64` minor units.
    pub fn from_decimal(amount: f64, currency: Currency) -> Option<Self> {
        if !amount.is_finite() {
            return None;
        }
        let scaled = (amount * 10f64.powi(currency.exponent() as i32)).round();
        if scaled.abs() > MAX_MINOR_UNITS as f64 {
            return None;
        }
        Some(Self {
            minor: scaled as i64,
            currency,
        })
    }

    /// The amount as a decimal number, for display and JSON.
    pub fn to_decimal(&self) -> f64 {
        self.minor as f64 / 10f64.powi(self.currency.exponent() as i32)
    }
}

/// An amount in minor units as `12,345.67 USD`, with the currency's own number of decimals.
pub fn format_minor(minor: f64, currency: &str) -> String {
    let exponent = Currency::parse(currency).map_or(2, |c| c.exponent());
    let text = format!(
        "{:.*}",
        exponent as usize,
        minor.abs() / 10f64.powi(exponent as i32)
    );
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if minor < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        "-"
    } else {
        ""
    };
    let point = if fraction.is_empty() { "" } else { "." };
    format!("{sign}{grouped}{point}{fraction} {currency}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_iso_4217_codes_are_currencies() {
        assert_eq!(
            Currency::parse("usd").map(|c| c.to_string()),
            Some("USD".into())
        );
        assert_eq!(
            Currency::parse("HRK").map(|c| c.to_string()),
            Some("HRK".into())
        );
        for fake in ["XYZ", "ABC", "XXX", "XTS", "US$", "EURO", ""] {
            assert_eq!(Currency::parse(fake), None, "{fake}");
        }
        assert!(
            ISO_4217.windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeats"
        );
    }

    #[test]
    fn the_largest_amount_is_written_in_the_currency() {
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(max_decimal(usd), "90000000000000.00");
        assert_eq!(
            max_decimal(Currency::parse("JPY").unwrap()),
            "9000000000000000"
        );
        assert!(Money::from_decimal(90_000_000_000_000.0, usd).is_some());
        assert!(Money::from_decimal(90_000_000_000_000.5, usd).is_none());
    }

    #[test]
    fn decimal_amounts_become_exact_minor_units() {
        let usd = Currency::parse("usd").unwrap();
        assert_eq!(usd.as_str(), "USD");
        assert_eq!(Money::from_decimal(19.99, usd).unwrap().minor, 1999);
        assert_eq!(Money::from_decimal(0.1 + 0.2, usd).unwrap().minor, 30);
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::from_decimal(1200.0, jpy).unwrap().minor, 1200);
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::from_decimal(1.2345, kwd).unwrap().minor, 1235);
        assert!(Money::from_decimal(f64::NAN, usd).is_none());
        assert!(Money::from_decimal(1e300, usd).is_none());
    }

    #[test]
    fn currency_codes_must_be_three_letters() {
        assert!(Currency::parse("US").is_none());
        assert!(Currency::parse("U$D").is_none());
        assert!(Currency::parse("EURO").is_none());
    }
}
