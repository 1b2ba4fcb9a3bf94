//! How well a risk score ranks and how well its probabilities are calibrated, on rows whose
//! outcome is known: AUC, Brier score, log loss, a reliability table, and lift and capture in
//! the top decile.

use serde::{Deserialize, Serialize};

/// One set's evaluation. `brier`, `log_loss` and `reliability` need probabilities and are
/// absent for a score that is only a ranking (the recency baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rows: usize,
    pub churned: usize,
    /// Share of the rows that churned.
    pub base_rate: f64,
    /// Area under the ROC curve: the chance that a churner scores above a customer who stayed
    /// (ties count half).
    pub auc: f64,
    pub brier: Option<f64>,
    pub log_loss: Option<f64>,
    pub top_decile: TopDecile,
    pub reliability: Option<Vec<ReliabilityBin>>,
}

/// The tenth of the rows with the highest scores (ties at the edge broken by row order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopDecile {
    pub rows: usize,
    pub churned: usize,
    /// Churn rate in the decile ÷ the base rate.
    pub lift: f64,
    /// Share of all churners that are in the decile.
    pub capture: f64,
}

/// Rows whose predicted probability is in `[from, to)` (the last bin includes 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub from: f64,
    pub to: f64,
    pub rows: usize,
    pub mean_predicted: Option<f64>,
    pub observed: Option<f64>,
}

/// Ten equal-width bins of predicted probability.
const BINS: usize = 10;

/// Evaluates `scores` (higher = more likely to churn) against `churned`. `probabilities`:
/// whether the scores are probabilities in [0, 1].
pub fn evaluate(scores: &[f64], churned: &[bool], probabilities: bool) -> Evaluation {
    assert_eq!(scores.len(), churned.len());
    let rows = scores.len();
    let positives = churned.iter().filter(|c| **c).count();
    let base_rate = if rows == 0 {
        0.0
    } else {
        positives as f64 / rows as f64
    };
    let (brier, log_loss, reliability) = if probabilities && rows > 0 {
        let n = rows as f64;
        let brier = scores
            .iter()
            .zip(churned)
            .map(|(p, y)| (p - f64::from(u8::from(*y))).powi(2))
            .sum::<f64>()
            / n;
        let eps = 1e-15;
        let log_loss = -scores
            .iter()
            .zip(churned)
            .map(|(p, y)| {
                let p = p.clamp(eps, 1.0 - eps);
                if *y { p.ln() } else { (1.0 - p).ln() }
            })
            .sum::<f64>()
            / n;
        (
            Some(brier),
            Some(log_loss),
            Some(reliability(scores, churned)),
        )
    } else {
        (None, None, None)
    };
    Evaluation {
        rows,
        churned: positives,
        base_rate,
        auc: auc(scores, churned),
        brier,
        log_loss,
        top_decile: top_decile(scores, churned, base_rate),
        reliability,
    }
}

/// The Mann–Whitney statistic: Σ ranks of the churners, with ties given their mean rank.
/// `NaN` when one class is empty.
pub fn auc(scores: &[f64], churned: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let (mut rank_sum, mut positives) = (0.0, 0usize);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        for k in &order[i..=j] {
            if churned[*k] {
                rank_sum += mean_rank;
                positives += 1;
            }
        }
        i = j + 1;
    }
    let negatives = scores.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let p = positives as f64;
    (rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64)
}

fn top_decile(scores: &[f64], churned: &[bool], base_rate: f64) -> TopDecile {
    let rows = scores.len().div_ceil(10);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Highest first; a stable sort keeps row order among ties.
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let in_decile = order[..rows].iter().filter(|i| churned[**i]).count();
    let all = churned.iter().filter(|c| **c).count();
    let rate = if rows == 0 {
        0.0
    } else {
        in_decile as f64 / rows as f64
    };
    TopDecile {
        rows,
        churned: in_decile,
        lift: if base_rate > 0.0 {
            rate / base_rate
        } else {
            f64::NAN
        },
        capture: if all > 0 {
            in_decile as f64 / all as f64
        } else {
            f64::NAN
        },
    }
}

fn reliability(probabilities: &[f64], churned: &[bool]) -> Vec<ReliabilityBin> {
    let mut sums = [(0usize, 0.0f64, 0usize); BINS];
    for (p, y) in probabilities.iter().zip(churned) {
        let bin = ((p * BINS as f64) as usize).min(BINS - 1);
        sums[bin].0 += 1;
        sums[bin].1 += p;
        sums[bin].2 += usize::from(*y);
    }
    sums.iter()
        .enumerate()
        .map(|(i, (rows, predicted, observed))| ReliabilityBin {
            from: i as f64 / BINS as f64,
            to: (i + 1) as f64 / BINS as f64,
            rows: *rows,
            mean_predicted: (*rows > 0).then(|| predicted / *rows as f64),
            observed: (*rows > 0).then(|| *observed as f64 / *rows as f64),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_pairs_with_ties_as_half() {
        // Pairs (churner, stayer): (0.9,0.1) win, (0.9,0.5) win, (0.5,0.1) win, (0.5,0.5) tie.
        let scores = [0.9, 0.5, 0.5, 0.1];
        let churned = [true, true, false, false];
        assert!((auc(&scores, &churned) - 3.5 / 4.0).abs() < 1e-12);
        assert!(auc(&[0.1, 0.2], &[true, true]).is_nan());
        // Reversed ranking.
        assert!((auc(&[0.1, 0.9], &[true, false]) - 0.0).abs() < 1e-12);
    }

    #[test]
    fn top_decile_lift_and_capture() {
        // 20 rows, 4 churners; the top 2 by score are both churners.
        let scores: Vec<f64> = (0..20).map(|i| f64::from(i) / 20.0).collect();
        let mut churned = vec![false; 20];
        for i in [19, 18, 3, 0] {
            churned[i] = true;
        }
        let e = evaluate(&scores, &churned, true);
        assert_eq!(e.top_decile.rows, 2);
        assert_eq!(e.top_decile.churned, 2);
        assert!((e.top_decile.lift - 1.0 / 0.2).abs() < 1e-12);
        assert!((e.top_decile.capture - 0.5).abs() < 1e-12);
        let bins = e.reliability.as_ref().map(Vec::len);
        assert_eq!(bins, Some(10));
        let counted: usize = e.reliability.iter().flatten().map(|b| b.rows).sum();
        assert_eq!(counted, 20);
    }
}
