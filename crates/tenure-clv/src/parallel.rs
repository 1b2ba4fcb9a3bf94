//! Sums over many customers on every core, in an order that does not depend on the machine.
//!
//! A likelihood or its gradient is a sum over customers; the fit evaluates it hundreds of
//! times. The customers are cut into [`CHUNKS`] runs, each run summed in order, and the
//! runs' totals added in order: the same partition and the same additions whether the runs
//! are summed on one thread (small inputs, where starting threads would cost more than the
//! sum) or on several, so a fit gives the same numbers on any machine. Scoped standard
//! threads: the crate keeps no dependencies.

/// Runs the customers are cut into (more than the cores of any machine we run on, so the
/// threads stay busy; few enough that adding the runs' totals costs nothing).
const CHUNKS: usize = 16;

/// Below this many items one thread sums every run.
const PARALLEL_FROM: usize = 4_096;

/// The cores to use, asked once (the standard library reads the cgroup quota each time, and
/// a fit sums hundreds of times).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Σ f(item), component by component.
pub(crate) fn sum<T: Sync, const N: usize>(
    items: &[T],
    f: impl Fn(&T) -> [f64; N] + Sync,
) -> [f64; N] {
    let size = items.len().div_ceil(CHUNKS).max(1);
    let run = |chunk: &[T]| {
        let mut total = [0.0; N];
        for item in chunk {
            for (t, v) in total.iter_mut().zip(f(item)) {
                *t += v;
            }
        }
        total
    };
    let threads = if items.len() < PARALLEL_FROM {
        1
    } else {
        cores()
    };
    let totals: Vec<[f64; N]> = if threads < 2 {
        items.chunks(size).map(run).collect()
    } else {
        let chunks: Vec<&[T]> = items.chunks(size).collect();
        let per_thread = chunks.len().div_ceil(threads.min(chunks.len()));
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .chunks(per_thread)
                .map(|group| scope.spawn(|| group.iter().map(|c| run(c)).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    let mut total = [0.0; N];
    for t in totals {
        for (a, b) in total.iter_mut().zip(t) {
            *a += b;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One thread or several, the same partition and order: the same bits.
    #[test]
    fn a_sum_does_not_depend_on_the_threads() {
        let items: Vec<f64> = (0..10_000).map(|i| 1.0 / (1.0 + f64::from(i))).collect();
        let parallel = sum(&items, |x| [*x, x * x]);
        let size = items.len().div_ceil(CHUNKS);
        let mut sequential = [0.0; 2];
        for chunk in items.chunks(size) {
            let mut t = [0.0; 2];
            for x in chunk {
                t[0] += x;
                t[1] += x * x;
            }
            sequential[0] += t[0];
            sequential[1] += t[1];
        }
        assert_eq!(parallel.map(f64::to_bits), sequential.map(f64::to_bits));
        assert_eq!(sum(&[] as &[f64], |x| [*x]), [0.0]);
    }
}
