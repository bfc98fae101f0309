//! The kNN probe: cosine similarity between standardised, L2-normalised features; each test
//! row's k most similar training rows vote for their class with weight `exp(similarity / T)`
//! (the weighted kNN of InstDisc and DINO, k = 20, T = 0.07 by default).

use candle_core::{Device, Tensor};
use serde::Serialize;

use ldae_pipeline::Result;

use super::data::{FeatureMatrix, Standardizer};
use super::scores::{rank, Ranking};
use ldae_operators::pca::candle_err;

/// Settings of the kNN probe.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct KnnConfig {
    /// Neighbours that vote.
    pub k: usize,
    /// Temperature of the vote weights.
    pub temperature: f64,
    /// Test rows compared at once (memory: `chunk × training rows × 4` bytes).
    pub chunk: usize,
}

impl Default for KnnConfig {
    fn default() -> Self {
        KnnConfig {
            k: 20,
            temperature: 0.07,
            chunk: 256,
        }
    }
}

/// Standardised rows scaled to unit length (all-zero rows stay zero).
/// `m`'s rows standardised and scaled to unit length, in one copy of the matrix.
fn unit_rows(s: &Standardizer, m: &FeatureMatrix, device: &Device) -> Result<Tensor> {
    let mut values = m.values.clone();
    s.standardize(&mut values, m.dim);
    for row in values.chunks_exact_mut(m.dim.max(1)) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    }
    Tensor::from_vec(values, (m.rows(), m.dim), device).map_err(candle_err)
}

/// Rank the classes of each `test` row by the weighted votes of its `k` nearest `train` rows
/// (standardised with the statistics of `train`). Ties between equally similar neighbours go to
/// the lower training row, so the result is deterministic.
pub fn knn_classify(
    train: &FeatureMatrix,
    test: &FeatureMatrix,
    classes: usize,
    config: &KnnConfig,
    device: &Device,
) -> Result<Ranking> {
    let s = Standardizer::fit(train)?;
    // A transposed view: the matrix product reads it in place (no second copy of the bank).
    let bank = unit_rows(&s, train, device)?.t().map_err(candle_err)?;
    let queries = unit_rows(&s, test, device)?;
    let n = train.rows();
    let k = config.k.clamp(1, n.max(1));
    let mut out = Ranking::with_capacity(test.rows());
    let mut start = 0;
    while start < test.rows() {
        let len = config.chunk.max(1).min(test.rows() - start);
        let sims = queries
            .narrow(0, start, len)
            .and_then(|q| q.matmul(&bank))
            .map_err(candle_err)?;
        let mut votes = vec![0f32; len * classes];
        let mut idx: Vec<u32> = Vec::with_capacity(n);
        with_values(&sims, |sims| {
            for (r, row) in sims.chunks_exact(n).enumerate() {
                idx.clear();
                idx.extend(0..n as u32);
                let better =
                    |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
                if k < n {
                    idx.select_nth_unstable_by(k - 1, better);
                }
                for &j in &idx[..k] {
                    let label = train.labels[j as usize] as usize;
                    if label < classes {
                        votes[r * classes + label] +=
                            ((row[j as usize] as f64) / config.temperature).exp() as f32;
                    }
                }
            }
        })?;
        out.extend(rank(&votes, classes, 5));
        start += len;
    }
    Ok(out)
}

/// Call `f` with the values of `t` (row-major): read in place on the CPU, where copying a block
/// of similarities (chunk x training rows) doubled the kNN's largest buffer; a copy elsewhere.
fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (candle_core::Storage::Cpu(cpu), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        {
            let values = cpu.as_slice::<f32>().map_err(candle_err)?;
            return Ok(f(&values[start..end]));
        }
    }
    let values: Vec<f32> = t
        .flatten_all()
        .and_then(|v| v.to_vec1())
        .map_err(candle_err)?;
    Ok(f(&values))
}
