//! The calendar months (UTC) in which a customer did any named event, as a bit set: an
//! index kept beside `CustomerState::activity` so that monthly "any event" retention and
//! lifecycle read one word inline in the state instead of walking the activity list (a
//! cache miss per customer per table on a million customers; docs/benchmarks.md).
//!
//! It is derived state: [`ActiveMonths::from_days`] over the activity list gives the same
//! set, and the engine's tests check the incremental path against it.

use crate::time::civil_from_days;

/// Month index of a day: year × 12 + month − 1.
pub fn month_of_day(day: i32) -> i32 {
    let (y, m, _) = civil_from_days(day);
    y * 12 + m as i32 - 1
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActiveMonths {
    /// The first active month (month index); meaningless while `bits` is 0.
    first: i32,
    /// Months `first .. first + 64`, bit k for `first + k`.
    bits: u64,
    /// Later months, 64 per word (rarely needed: a customer active for over five years).
    later: Vec<u64>,
}

impl ActiveMonths {
    /// The set of the months of these days (any order).
    pub fn from_days(days: impl IntoIterator<Item = i32>) -> Self {
        let mut months: Vec<i32> = days.into_iter().map(month_of_day).collect();
        months.sort_unstable();
        months.dedup();
        let mut set = Self::default();
        for m in months {
            set.insert_month(m);
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// The first active month, if any.
    pub fn first(&self) -> Option<i32> {
        (!self.is_empty()).then_some(self.first)
    }

    /// Adds a month; `false` when it is before the first one (the caller rebuilds the set
    /// with [`Self::from_days`], which a late event for an early month makes rare).
    pub fn insert_month(&mut self, month: i32) -> bool {
        if self.is_empty() {
            self.first = month;
            self.bits = 1;
            return true;
        }
        let Ok(offset) = usize::try_from(month - self.first) else {
            return false;
        };
        if offset < 64 {
            self.bits |= 1 << offset;
        } else {
            let word = offset / 64 - 1;
            if self.later.len() <= word {
                self.later.resize(word + 1, 0);
            }
            self.later[word] |= 1 << (offset % 64);
        }
        true
    }

    fn word(&self, k: usize) -> u64 {
        match k {
            0 => self.bits,
            _ => self.later.get(k - 1).copied().unwrap_or(0),
        }
    }

    /// Bit i set when month `from + i` is active, for i < `n` ≤ 64.
    pub fn window(&self, from: i32, n: usize) -> u64 {
        debug_assert!(n <= 64);
        if self.is_empty() || n == 0 {
            return 0;
        }
        let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        let offset = i64::from(from) - i64::from(self.first);
        if offset <= -64 {
            return 0;
        }
        let bits = if offset < 0 {
            // Months before `first` are inactive: shift the first word up.
            self.bits << (-offset) as u32
        } else {
            let (k, shift) = ((offset / 64) as usize, (offset % 64) as u32);
            let low = self.word(k) >> shift;
            let high = if shift == 0 {
                0
            } else {
                self.word(k + 1) << (64 - shift)
            };
            low | high
        };
        bits & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Rng;
    use crate::time::days_from_civil;

    #[test]
    fn windows_equal_the_months_of_the_days() {
        let mut rng = Rng::derive(11, 3);
        let base = days_from_civil(2015, 1, 1);
        for _ in 0..500 {
            let days: Vec<i32> = (0..rng.below(40))
                .map(|_| base + rng.below(365 * 12) as i32)
                .collect();
            // Incremental, in arrival order, rebuilding when a month precedes the first.
            let mut incremental = ActiveMonths::default();
            for (i, d) in days.iter().enumerate() {
                if !incremental.insert_month(month_of_day(*d)) {
                    incremental = ActiveMonths::from_days(days[..=i].iter().copied());
                }
            }
            let set = ActiveMonths::from_days(days.iter().copied());
            assert_eq!(incremental.window(0, 0), 0);
            let months: std::collections::BTreeSet<i32> =
                days.iter().map(|d| month_of_day(*d)).collect();
            for _ in 0..20 {
                let from = month_of_day(base) - 70 + rng.below(12 * 12 + 140) as i32;
                let n = 1 + rng.below(64) as usize;
                let expected = (0..n)
                    .filter(|i| months.contains(&(from + *i as i32)))
                    .fold(0u64, |b, i| b | 1 << i);
                assert_eq!(
                    set.window(from, n),
                    expected,
                    "from {from}, n {n}, {months:?}"
                );
                assert_eq!(incremental.window(from, n), expected);
            }
            assert_eq!(set.first(), months.first().copied());
        }
    }
}
