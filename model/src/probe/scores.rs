//! Scoring ranked predictions: top-1, top-5, per-class accuracy and the confusion matrix.

use serde::Serialize;

/// Each row's classes, best first (at most 5 kept).
pub type Ranking = Vec<Vec<u32>>;

/// Keep the `k` best classes of each row of `scores` (`rows × classes`, row-major), best first;
/// ties go to the lower class index so results are deterministic.
pub fn rank(scores: &[f32], classes: usize, k: usize) -> Ranking {
    scores
        .chunks_exact(classes)
        .map(|row| {
            let mut order: Vec<u32> = (0..classes as u32).collect();
            order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
            order.truncate(k.min(classes));
            order
        })
        .collect()
}

/// Accuracy of a ranking against true labels.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    /// Fraction of rows whose best class is the label.
    pub top1: f64,
    /// Fraction of rows with the label among the 5 best (1 when there are at most 5 classes).
    pub top5: f64,
    /// Top-1 accuracy of the rows of each class; `None` (`null` in JSON) for a class without
    /// test rows, which has no accuracy (a 0 there would read as a class always missed).
    pub per_class: Vec<Option<f64>>,
    /// Rows of each class.
    pub class_rows: Vec<usize>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl Scores {
    /// Score `ranking` against `labels` over `classes` classes.
    pub fn new(ranking: &Ranking, labels: &[u32], classes: usize) -> Scores {
        let mut confusion = vec![vec![0usize; classes]; classes];
        let (mut top1, mut top5) = (0usize, 0usize);
        for (ranked, &label) in ranking.iter().zip(labels) {
            let best = ranked[0];
            if (best as usize) < classes && (label as usize) < classes {
                confusion[label as usize][best as usize] += 1;
            }
            top1 += (best == label) as usize;
            top5 += ranked.iter().take(5).any(|&c| c == label) as usize;
        }
        let n = labels.len().max(1) as f64;
        let class_rows: Vec<usize> = confusion.iter().map(|r| r.iter().sum()).collect();
        let per_class = confusion
            .iter()
            .enumerate()
            .map(|(c, r)| (class_rows[c] > 0).then(|| r[c] as f64 / class_rows[c] as f64))
            .collect();
        Scores {
            top1: top1 as f64 / n,
            top5: top5 as f64 / n,
            per_class,
            class_rows,
            confusion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_scores() {
        let scores = [0.1, 0.7, 0.2, 0.5, 0.5, 0.0];
        let r = rank(&scores, 3, 2);
        assert_eq!(r, vec![vec![1, 2], vec![0, 1]]);
        let s = Scores::new(&r, &[2, 0], 3);
        assert_eq!(s.top1, 0.5);
        assert_eq!(s.top5, 1.0);
        assert_eq!(s.confusion[2][1], 1);
        assert_eq!(s.per_class, vec![Some(1.0), None, Some(0.0)]);
        assert_eq!(s.class_rows, vec![1, 0, 1]);
    }
}
