//! The kept trees laid out for scoring one customer at a time.
//!
//! A segment on risk scores every customer, one row each, from its own parallel pass.
//! forust's nodes carry their training statistics (about 130 bytes each) and its prediction
//! is built for batches; here each node is 24 bytes in one array for the whole forest, and a
//! row walks it without allocating. The log-odds are the same sums in the same order as
//! forust's, so the same number to the last bit (tested against it).

use forust_ml::GradientBooster;

/// A leaf's `feature`.
const LEAF: u32 = u32::MAX;

/// A split on `feature` at `split` (missing values go to `missing`, values below the split
/// `left`, the others `right`), or a leaf (`feature == LEAF`) whose value is `split`.
#[derive(Debug, Clone, Copy)]
struct Node {
    split: f64,
    feature: u32,
    left: u32,
    right: u32,
    missing: u32,
}

#[derive(Debug)]
pub(crate) struct Forest {
    base: f64,
    /// Each tree's root in `nodes`.
    roots: Vec<u32>,
    nodes: Vec<Node>,
}

impl Forest {
    /// The booster's prediction trees, if its missing value is NaN (forust's default and
    /// the only one training uses; otherwise `None`: forust scores them).
    pub fn of(booster: &GradientBooster) -> Option<Self> {
        if !booster.missing.is_nan() {
            return None;
        }
        let n = booster.prediction_iteration.unwrap_or(booster.trees.len());
        let trees = booster.trees.get(..n).unwrap_or(&booster.trees);
        let mut forest = Forest {
            base: booster.base_score,
            roots: Vec::with_capacity(trees.len()),
            nodes: Vec::new(),
        };
        for tree in trees {
            let offset = forest.nodes.len();
            let at = |i: usize| u32::try_from(offset + i).ok();
            forest.roots.push(at(0)?);
            for node in &tree.nodes {
                forest.nodes.push(if node.is_leaf {
                    Node {
                        split: f64::from(node.weight_value),
                        feature: LEAF,
                        left: 0,
                        right: 0,
                        missing: 0,
                    }
                } else {
                    Node {
                        split: node.split_value,
                        feature: u32::try_from(node.split_feature).ok()?,
                        left: at(node.left_child)?,
                        right: at(node.right_child)?,
                        missing: at(node.missing_node)?,
                    }
                });
            }
        }
        Some(forest)
    }

    /// The log-odds of one row (a feature past the row's end counts as missing).
    pub fn log_odds(&self, row: &[f64]) -> f64 {
        let mut sum = self.base;
        for root in &self.roots {
            let mut i = *root as usize;
            while let Some(node) = self.nodes.get(i) {
                if node.feature == LEAF {
                    sum += node.split;
                    break;
                }
                let v = row.get(node.feature as usize).copied().unwrap_or(f64::NAN);
                i = if v.is_nan() {
                    node.missing
                } else if v < node.split {
                    node.left
                } else {
                    node.right
                } as usize;
            }
        }
        sum
    }
}
