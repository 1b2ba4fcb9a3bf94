//! Typed, prefixed identifiers shown to users (`ws_…`, `cus_…`, `key_…`).
//!
//! An id of one kind cannot be passed where another is expected, and an id read from the
//! outside world is parsed once, at the edge, by `parse`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a valid {kind} id: expected `{prefix}` followed by 1-64 characters [A-Za-z0-9_-]"
)]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn parse(value: &str) -> Result<Self, IdError> {
                let body = value.strip_prefix($prefix).unwrap_or("");
                let valid = !body.is_empty()
                    && body.len() <= 64
                    && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if valid {
                    Ok(Self(value.into()))
                } else {
                    Err(IdError { kind: $kind, prefix: $prefix, value: value.to_owned() })
                }
            }

            /// Builds an id from a body that is already known to be valid (hex, base32…).
            pub(crate) fn from_body(body: &str) -> Self {
                Self(format!("{}{}", $prefix, body).into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }
    };
}

prefixed_id!(
    /// A workspace (tenant): every piece of data belongs to exactly one.
    WorkspaceId,
    "ws_",
    "workspace"
);
prefixed_id!(
    /// A customer as Tenure knows it, after identity resolution.
    CustomerId,
    "cus_",
    "customer"
);
prefixed_id!(
    /// An API key's public id (the secret itself is never stored).
    KeyId,
    "key_",
    "API key"
);

impl WorkspaceId {
    /// A new workspace id from 80 bits of randomness supplied by the caller (the core has no
    /// source of randomness of its own).
    pub fn from_random(bytes: [u8; 10]) -> Self {
        Self::from_body(&base32(&bytes))
    }
}

impl KeyId {
    pub fn from_random(bytes: [u8; 10]) -> Self {
        Self::from_body(&base32(&bytes))
    }
}

impl CustomerId {
    /// The customer id derived from the first identity under which a customer was seen.
    ///
    /// Deriving it (rather than drawing it at random) keeps the fold of the log deterministic:
    /// rebuilding the engine from the same log gives every customer the same id.
    pub fn derive(workspace: &WorkspaceId, identity: &Identity) -> Self {
        let mut h = Fnv128::new();
        h.write(workspace.as_str().as_bytes());
        h.write(&[0]);
        h.write(identity.key().as_bytes());
        Self::from_body(&base32(&h.mixed().to_be_bytes()[..13]))
    }
}

/// One of the identities a message can carry (Segment's `userId` or `anonymousId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    User(String),
    Anonymous(String),
}

impl Identity {
    /// The string under which the identity is stored and looked up (`u:…` / `a:…`).
    pub fn key(&self) -> String {
        match self {
            Identity::User(id) => format!("u:{id}"),
            Identity::Anonymous(id) => format!("a:{id}"),
        }
    }
}

/// Lower-case RFC 4648 base32 without padding: readable, URL-safe ids.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// FNV-1a with a 128-bit state: a stable hash (unlike `std`'s, which may change between
/// releases) for ids and message ids that must be the same on every machine and version.
pub struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;

    pub fn new() -> Self {
        Self(Self::OFFSET)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    pub fn finish(&self) -> u128 {
        self.0
    }

    /// The hash with every input bit spread over every output bit (FNV alone changes only a
    /// few output bits for a change in the last input byte, which makes ids look alike).
    pub fn mixed(&self) -> u128 {
        fn mix64(mut z: u64) -> u64 {
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        let high = (self.0 >> 64) as u64;
        let low = self.0 as u64;
        let a = mix64(high ^ low.rotate_left(29));
        let b = mix64(low ^ a);
        (u128::from(a) << 64) | u128::from(b)
    }

    /// Hex digest, for derived message ids.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.0)
    }
}

impl Default for Fnv128 {
    fn default() -> Self {
        Self::new()
    }
}

/// A segment's id: `seg_` and a number the store assigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u32);

impl SegmentId {
    pub fn parse(text: &str) -> Option<Self> {
        let n = text.strip_prefix("seg_")?;
        if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse().ok().map(Self)
    }
}

impl std::fmt::Display for SegmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seg_{}", self.0)
    }
}

impl serde::Serialize for SegmentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_its_own_prefix() {
        assert!(WorkspaceId::parse("ws_abc").is_ok());
        assert!(WorkspaceId::parse("cus_abc").is_err());
        assert!(WorkspaceId::parse("ws_").is_err());
        assert!(WorkspaceId::parse("ws_a b").is_err());
        let err = CustomerId::parse("ws_x").unwrap_err();
        assert!(err.to_string().contains("cus_"), "{err}");
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 section 10, lower-cased, without padding.
        assert_eq!(base32(b"f"), "my");
        assert_eq!(base32(b"fo"), "mzxq");
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn fnv128_matches_published_vector() {
        // FNV-1a 128 of "a" from the reference test suite (isthe.com/chongo/tech/comp/fnv).
        let mut h = Fnv128::new();
        h.write(b"a");
        assert_eq!(h.hex(), "d228cb696f1a8caf78912b704e4a8964");
    }

    #[test]
    fn customer_ids_are_stable_and_distinct() {
        let ws = WorkspaceId::parse("ws_test").unwrap();
        let a = CustomerId::derive(&ws, &Identity::User("42".into()));
        let b = CustomerId::derive(&ws, &Identity::Anonymous("42".into()));
        assert_ne!(a, b);
        // Neighbouring inputs give ids that differ in most characters.
        let c = CustomerId::derive(&ws, &Identity::User("43".into()));
        let same = a
            .as_str()
            .chars()
            .zip(c.as_str().chars())
            .filter(|(x, y)| x == y)
            .count();
        assert!(same < 10, "{a} vs {c}");
        assert_eq!(a, CustomerId::derive(&ws, &Identity::User("42".into())));
        assert!(CustomerId::parse(a.as_str()).is_ok());
    }
}
