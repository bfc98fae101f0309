//! Mergeable running statistics of patches: count, sum and sum of outer products, in f64.

use std::path::Path;

use ldae_pipeline::{Error, Result};

use super::file::{self, PcaMeta};

/// Running statistics of D-dimensional patch vectors. Two shards' statistics merge into exactly
/// what one pass over both would give (up to floating-point summation order).
#[derive(Debug, Clone, PartialEq)]
pub struct PcaStats {
    /// D.
    pub dim: usize,
    /// Patches seen.
    pub count: u64,
    /// Images seen.
    pub images: u64,
    /// Sum of the patches, length D.
    pub sum: Vec<f64>,
    /// Sum of the outer products x x^T, D x D row-major.
    pub outer: Vec<f64>,
    /// Order-independent fingerprint of the image ids seen (wrapping sum of their hashes).
    pub fingerprint: u64,
}

impl PcaStats {
    /// Empty statistics for D-dimensional patches.
    pub fn new(dim: usize) -> Self {
        PcaStats {
            dim,
            count: 0,
            images: 0,
            sum: vec![0.0; dim],
            outer: vec![0.0; dim * dim],
            fingerprint: 0,
        }
    }

    /// Add `patches.len() / D` patches (row-major f32).
    pub fn add(&mut self, patches: &[f32]) -> Result<()> {
        let d = self.dim;
        if !patches.len().is_multiple_of(d) {
            return Err(Error::data(format!(
                "{} values are not whole {d}-dimensional patches",
                patches.len()
            )));
        }
        // Fixed-size blocks of rows, each widened to f64 (products of f32 values are exact in
        // f64; only the sums need the precision). Each block's X^T X is computed strip by strip
        // above the diagonal only (as BLAS's syrk: about half the products of a full X^T X,
        // which matters at D = 768) and mirrored. The (block, strip) products are spread over
        // the cores, each single-threaded, and added in block order, so the sums do not depend
        // on the thread count.
        const BLOCK_ROWS: usize = 4096;
        let blocks: Vec<Vec<f64>> = patches
            .chunks(BLOCK_ROWS * d)
            .map(|b| b.iter().map(|&v| v as f64).collect())
            .collect();
        let strips = upper_strips(d);
        let items: Vec<(usize, usize)> = (0..blocks.len())
            .flat_map(|b| (0..strips.len()).map(move |s| (b, s)))
            .collect();
        let threads = ldae_pipeline::cores().min(items.len());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut products: Vec<Option<Vec<f64>>> = (0..items.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (blocks, items, strips, next) = (&blocks, &items, &strips, &next);
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&(b, s)) = items.get(i) else {
                                return done;
                            };
                            done.push((i, strip_product(&blocks[b], d, strips[s])));
                        }
                    })
                })
                .collect();
            for h in handles {
                for (i, p) in h.join().unwrap_or_default() {
                    products[i] = Some(p);
                }
            }
        });
        let mut products = products.into_iter();
        for block in &blocks {
            for row in block.chunks_exact(d) {
                for (a, v) in self.sum.iter_mut().zip(row) {
                    *a += v;
                }
            }
            for &(start, height) in &strips {
                let product = products
                    .next()
                    .flatten()
                    .ok_or_else(|| Error::internal("PCA statistics worker failed"))?;
                let width = d - start;
                for (r, values) in product.chunks_exact(width).enumerate() {
                    let row = (start + r) * d + start;
                    for (a, v) in self.outer[row..row + width].iter_mut().zip(values) {
                        *a += v;
                    }
                }
                debug_assert_eq!(product.len(), height * width);
            }
            self.count += (block.len() / d) as u64;
        }
        // The strips fill the upper triangle (and the diagonal blocks); mirror it.
        for r in 0..d {
            for c in 0..r {
                self.outer[r * d + c] = self.outer[c * d + r];
            }
        }
        Ok(())
    }

    /// Record one image's id in the count and fingerprint.
    pub fn add_image(&mut self, id: &str) {
        self.images += 1;
        self.fingerprint = self
            .fingerprint
            .wrapping_add(xxhash_rust::xxh3::xxh3_64(id.as_bytes()));
    }

    /// Fold another shard's statistics into these.
    pub fn merge(&mut self, other: &PcaStats) -> Result<()> {
        if other.dim != self.dim {
            return Err(Error::invalid(format!(
                "cannot merge statistics of {}-dimensional and {}-dimensional patches",
                self.dim, other.dim
            )));
        }
        self.count += other.count;
        self.images += other.images;
        self.fingerprint = self.fingerprint.wrapping_add(other.fingerprint);
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.outer.iter_mut().zip(&other.outer) {
            *a += b;
        }
        Ok(())
    }

    /// The mean patch.
    pub fn mean(&self) -> Vec<f64> {
        let n = self.count.max(1) as f64;
        self.sum.iter().map(|s| s / n).collect()
    }

    /// The sample covariance (denominator n - 1, as numpy's `cov` and scikit-learn's PCA).
    pub fn covariance(&self) -> Result<Vec<f64>> {
        if self.count < 2 {
            return Err(Error::data(format!(
                "PCA needs at least 2 patches, got {}",
                self.count
            )));
        }
        let n = self.count as f64;
        let mean = self.mean();
        let d = self.dim;
        let mut cov = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] = (self.outer[i * d + j] - n * mean[i] * mean[j]) / (n - 1.0);
            }
        }
        Ok(cov)
    }

    /// Save as a partial-statistics safetensors file (`ldae pca fit --partial`), atomically.
    pub fn save_partial(&self, path: &Path, meta: &PcaMeta) -> Result<()> {
        let d = self.dim;
        let tensors: [(&str, &[f64], Vec<usize>); 2] = [
            ("sum", &self.sum, vec![d]),
            ("outer", &self.outer, vec![d, d]),
        ];
        let extra = [
            ("count", self.count.to_string()),
            ("images", self.images.to_string()),
            ("fingerprint", format!("{:016x}", self.fingerprint)),
        ];
        file::write(path, file::PARTIAL_FORMAT, meta, &tensors, &extra)
    }

    /// Load a partial-statistics file.
    pub fn load_partial(path: &Path) -> Result<(PcaStats, PcaMeta)> {
        let file::PcaFile {
            info,
            meta,
            tensors,
        } = file::read(path, file::PARTIAL_FORMAT, &["sum", "outer"])?;
        let field = |k: &str| -> Result<u64> {
            info.get(k)
                .and_then(|v| {
                    if k == "fingerprint" {
                        u64::from_str_radix(v, 16).ok()
                    } else {
                        v.parse().ok()
                    }
                })
                .ok_or_else(|| Error::corrupt(path, format!("metadata '{k}' missing")))
        };
        let [sum, outer]: [Vec<f64>; 2] = tensors
            .try_into()
            .map_err(|_| Error::internal("two tensors asked for"))?;
        let dim = sum.len();
        if Some(outer.len()) != dim.checked_mul(dim) || dim != meta.patch_dim() {
            return Err(Error::corrupt(
                path,
                format!(
                    "tensor shapes do not match a {}-dimensional patch PCA",
                    meta.patch_dim()
                ),
            ));
        }
        Ok((
            PcaStats {
                dim,
                count: field("count")?,
                images: field("images")?,
                sum,
                outer,
                fingerprint: field("fingerprint")?,
            },
            meta,
        ))
    }
}

/// Rows of the strips that cover X^T X's upper triangle: `(first row, height)`.
fn upper_strips(d: usize) -> Vec<(usize, usize)> {
    // 64 rows: half the products of the full square at D = 768 is 50%; 64-row strips do 54%
    // while keeping each matrix product large enough to run at the kernel's speed.
    const STRIP: usize = 64;
    (0..d)
        .step_by(STRIP)
        .map(|start| (start, STRIP.min(d - start)))
        .collect()
}

/// Rows `start..start + height` of X^T X, columns `start..d` (row-major `height x (d - start)`),
/// for the row-major `rows x d` matrix `x`.
fn strip_product(x: &[f64], d: usize, (start, height): (usize, usize)) -> Vec<f64> {
    let rows = x.len() / d;
    let width = d - start;
    let mut out = vec![0.0; height * width];
    if rows == 0 {
        return out;
    }
    // SAFETY: every pointer and stride stays inside its slice. dst is `height x width`, row
    // stride `width`. lhs is X^T's rows start.., i.e. element (r, k) = x[k * d + start + r]:
    // row stride 1, column stride d, with r < height and start + height <= d. rhs is X's
    // columns start.., element (k, c) = x[k * d + start + c]: row stride d, column stride 1,
    // with c < width = d - start and k < rows.
    unsafe {
        crate::cpu::matmul(
            (height, width, rows),
            out.as_mut_ptr(),
            (width, 1),
            false,
            x.as_ptr().add(start),
            (1, d),
            x.as_ptr().add(start),
            (d, 1),
            1.0,
        );
    }
    out
}
