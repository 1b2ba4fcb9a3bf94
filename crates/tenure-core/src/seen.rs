//! Which message ids a workspace's log may already hold: a scalable Bloom filter.
//!
//! The writer asks before every append. "Certainly not" (the common case: a new event)
//! needs no database lookup; "maybe" is checked against the log's unique index. The filter
//! never answers "not" for an id it was given, so it can only save work, never let a
//! duplicate through (and the unique constraint stands behind it anyway).
//!
//! Tenure's own events (ids starting `tenure:`, the segment memberships and alerts the
//! engine derives) are not held: the filter always answers "maybe" for them. A backfill
//! derives hundreds of thousands at once, and only an import of an export sends one back,
//! so holding them would cost memory and a backfill's time to save a rare lookup.
//!
//! It grows as a list of filters, each four times larger than the last, at 10 bits and 7
//! probes per id of capacity (≈ 1% false positives): 1.25 bytes per id of capacity, so
//! between 1.3 and 5 bytes per event held depending on how full the newest filter is.

#[derive(Debug, Clone, PartialEq)]
struct Bloom {
    bits: Vec<u64>,
    bit_count: u64,
    capacity: usize,
    len: usize,
}

const PROBES: u64 = 7;
const BITS_PER_ID: usize = 10;
const FIRST_CAPACITY: usize = 1 << 14;

impl Bloom {
    fn with_capacity(capacity: usize) -> Self {
        let words = (capacity * BITS_PER_ID).div_ceil(64).max(1);
        Self {
            bits: vec![0; words],
            bit_count: words as u64 * 64,
            capacity,
            len: 0,
        }
    }

    /// Kirsch–Mitzenmacher double hashing (probe i is h1 + i·h2), mapped onto the bit count
    /// by Lemire's multiply-shift range reduction.
    fn probe(bit_count: u64, (h1, h2): (u64, u64), i: u64) -> u64 {
        let h = h1.wrapping_add(i.wrapping_mul(h2 | 1));
        ((u128::from(h) * u128::from(bit_count)) >> 64) as u64
    }

    fn insert(&mut self, hash: (u64, u64)) {
        for i in 0..PROBES {
            let bit = Self::probe(self.bit_count, hash, i);
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.len += 1;
    }

    fn may_contain(&self, hash: (u64, u64)) -> bool {
        (0..PROBES).all(|i| {
            let bit = Self::probe(self.bit_count, hash, i);
            self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeenIds {
    filters: Vec<Bloom>,
}

/// Two 64-bit hashes of an id, a word at a time (multiply-rotate, then SplitMix64's
/// finaliser). Stable across versions and machines, unlike `std`'s hasher; not resistant to
/// chosen collisions, which here could only cost extra lookups, never a wrong answer.
pub fn hash(id: &str) -> (u64, u64) {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    fn mix64(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let bytes = id.as_bytes();
    let mut h = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        h = (h.rotate_left(23) ^ w).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h.rotate_left(23) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    let h1 = mix64(h);
    (h1, mix64(h1 ^ K))
}

/// The prefix of the message ids Tenure gives the events it derives itself.
pub const OWN_PREFIX: &str = "tenure:";

impl SeenIds {
    pub fn insert(&mut self, id: &str) {
        if id.starts_with(OWN_PREFIX) {
            return;
        }
        let full = self.filters.last().is_none_or(|f| f.len >= f.capacity);
        if full {
            let capacity = self
                .filters
                .last()
                .map_or(FIRST_CAPACITY, |f| f.capacity * 4);
            self.filters.push(Bloom::with_capacity(capacity));
        }
        if let Some(filter) = self.filters.last_mut() {
            filter.insert(hash(id));
        }
    }

    /// `false`: the id was certainly never inserted. `true`: it may have been.
    pub fn may_contain(&self, id: &str) -> bool {
        if id.starts_with(OWN_PREFIX) {
            return true;
        }
        let h = hash(id);
        self.filters.iter().any(|f| f.may_contain(h))
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.filters.iter().map(|f| f.bits.len() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_forgets_and_rarely_imagines() {
        let mut seen = SeenIds::default();
        for i in 0..200_000 {
            seen.insert(&format!("message-{i}"));
        }
        assert!(
            (0..200_000).all(|i| seen.may_contain(&format!("message-{i}"))),
            "no false negatives"
        );
        let false_positives = (0..100_000)
            .filter(|i| seen.may_contain(&format!("other-{i}")))
            .count();
        assert!(
            false_positives < 3_000,
            "{false_positives} false positives in 100,000 (expected ≈ 1%)"
        );
        assert!(seen.filters.len() > 1, "the filter grew");
        // Capacity 16,384 + 65,536 + 262,144 ids at 1.25 bytes each.
        assert!(
            seen.heap_bytes() <= (16_384 + 65_536 + 262_144) * 10 / 8 + 64,
            "{} bytes for 200,000 ids",
            seen.heap_bytes()
        );
    }

    /// Tenure's own ids are never held, and always "maybe": the log is asked.
    #[test]
    fn tenure_ids_are_always_looked_up() {
        let mut seen = SeenIds::default();
        seen.insert("tenure:seg_1.v1:cus_x:in:0");
        assert_eq!(seen.heap_bytes(), 0, "nothing held");
        assert!(seen.may_contain("tenure:seg_1.v1:cus_x:in:0"));
        assert!(seen.may_contain("tenure:never-inserted"));
        assert!(!seen.may_contain("client-id"));
    }
}
