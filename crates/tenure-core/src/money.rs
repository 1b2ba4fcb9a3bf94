//! Money: integer minor units plus an ISO 4217 currency. No floats are stored.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 alphabetic code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Accepts three ASCII letters in any case (`usd` → `USD`).
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        Some(Self([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
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
        if scaled.abs() > 9.0e15 {
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
