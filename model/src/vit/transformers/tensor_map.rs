//! Where each tensor of the timm form comes from in a transformers checkpoint ([`TensorMap`]):
//! renamed, stacked, split or reshaped, worked out on the header's shapes first and then on the
//! tensors.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use candle_core::{DType, Device, Tensor};

use crate::vit::args::NormKind;

/// Where a tensor of the timm form comes from in the checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    /// A tensor as it is, or reshaped to `shape` (the same elements).
    Take(String, Option<Vec<usize>>),
    /// Sources concatenated along the first dimension.
    Cat(Vec<Source>),
    /// `len` rows of a 2-D tensor (or entries of a 1-D one) from `start` on.
    Rows(String, usize, usize),
    /// A `[1, 1, W]` class token plus the first position of a `[1, L, W]` table (a
    /// DINOv2-with-registers table covers the class token but not the registers; timm's
    /// `no_embed_class` form holds the class token's position inside the token).
    ClassWithPosition(String, String),
    /// Positions 1.. of a `[1, L, W]` table.
    PatchPositions(String),
    /// Zeros of this shape (CLIP's projection has no bias; timm's head does).
    Zeros(Vec<usize>),
    /// The `n` x `n` identity: a projection timm's form has and the checkpoint does not
    /// (AIMv2's pooling query is used as it is).
    Identity(usize),
}

impl Source {
    /// The tensor `name` when the checkpoint holds it (`has`), else zeros of `shape` (a layer
    /// saved without its bias).
    pub(crate) fn or_zeros(name: String, has: bool, shape: Vec<usize>) -> Source {
        match has {
            true => Source::Take(name, None),
            false => Source::Zeros(shape),
        }
    }

    /// The checkpoint's tensors it reads.
    fn reads(&self) -> Vec<&str> {
        match self {
            Source::Take(n, _) | Source::Rows(n, _, _) | Source::PatchPositions(n) => vec![n],
            Source::Cat(parts) => parts.iter().flat_map(Source::reads).collect(),
            Source::ClassWithPosition(a, b) => vec![a, b],
            Source::Zeros(_) | Source::Identity(_) => vec![],
        }
    }

    /// The names of `sources`, for messages.
    fn names(sources: &[Source]) -> Vec<&str> {
        sources.iter().flat_map(Source::reads).collect()
    }

    /// The shape it gives, from the checkpoint's shapes.
    fn shape(&self, shapes: &BTreeMap<String, Vec<usize>>) -> Result<Vec<usize>, String> {
        let of = |name: &str| {
            shapes
                .get(name)
                .cloned()
                .ok_or_else(|| format!("tensor '{name}' is missing"))
        };
        Ok(match self {
            Source::Take(name, None) => of(name)?,
            Source::Take(name, Some(shape)) => {
                let s = of(name)?;
                if s.iter().product::<usize>() != shape.iter().product::<usize>() {
                    return Err(format!(
                        "tensor '{name}' has shape {s:?}, not {shape:?}'s size"
                    ));
                }
                shape.clone()
            }
            Source::Cat(sources) => {
                let parts = sources
                    .iter()
                    .map(|s| s.shape(shapes))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut shape = parts[0].clone();
                if parts
                    .iter()
                    .any(|p| p.len() != shape.len() || p[1..] != shape[1..])
                {
                    return Err(format!(
                        "tensors {:?} have shapes {parts:?}: not stackable",
                        Source::names(sources)
                    ));
                }
                shape[0] = parts.iter().map(|p| p[0]).sum();
                shape
            }
            Source::Rows(name, start, len) => {
                let mut s = of(name)?;
                if s.is_empty() || s[0] < start + len {
                    return Err(format!(
                        "tensor '{name}' has shape {s:?}: no rows {start}..{}",
                        start + len
                    ));
                }
                s[0] = *len;
                s
            }
            Source::ClassWithPosition(cls, _) => of(cls)?,
            Source::PatchPositions(pos) => match of(pos)?.as_slice() {
                [1, l, w] if *l > 1 => vec![1, l - 1, *w],
                other => {
                    return Err(format!(
                        "tensor '{pos}' has shape {other:?}, expected [1, L, W]"
                    ))
                }
            },
            Source::Zeros(shape) => shape.clone(),
            Source::Identity(n) => vec![*n, *n],
        })
    }

    /// The tensor, from the checkpoint's.
    fn tensor(
        &self,
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let of = |name: &str| {
            tensors
                .get(name)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("tensor '{name}' is missing")))
        };
        match self {
            Source::Take(name, None) => of(name),
            Source::Take(name, Some(shape)) => of(name)?.reshape(shape.as_slice()),
            Source::Cat(sources) => {
                let parts = sources
                    .iter()
                    .map(|s| s.tensor(tensors, device))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Tensor::cat(&parts, 0)
            }
            Source::Rows(name, start, len) => of(name)?.narrow(0, *start, *len),
            Source::ClassWithPosition(cls, pos) => of(cls)? + of(pos)?.narrow(1, 0, 1)?,
            Source::PatchPositions(pos) => {
                let pos = of(pos)?;
                pos.narrow(1, 1, pos.dim(1)? - 1)
            }
            Source::Zeros(shape) => Tensor::zeros(shape.as_slice(), DType::F32, device),
            Source::Identity(n) => Tensor::eye(*n, DType::F32, device),
        }
    }
}

/// The tensors of the timm form, each with its source in the checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorMap {
    sources: BTreeMap<String, Source>,
}

impl TensorMap {
    pub(super) fn put(&mut self, timm: impl Into<String>, source: Source) {
        self.sources.insert(timm.into(), source);
    }

    /// A tensor taken as it is.
    pub(super) fn take(&mut self, timm: impl Into<String>, name: impl Into<String>) {
        self.put(timm, Source::Take(name.into(), None));
    }

    /// A LayerNorm or linear layer: its `weight` and `bias`.
    pub(super) fn layer(&mut self, timm: &str, name: &str) {
        self.take(format!("{timm}.weight"), format!("{name}.weight"));
        self.take(format!("{timm}.bias"), format!("{name}.bias"));
    }

    /// A norm of kind `kind`: its `weight`, and its `bias` if it is a LayerNorm.
    pub(super) fn norm(&mut self, timm: &str, name: &str, kind: NormKind) {
        match kind {
            NormKind::Layer => self.layer(timm, name),
            NormKind::Rms => self.take(format!("{timm}.weight"), format!("{name}.weight")),
        }
    }

    /// The shapes of the timm form, from the checkpoint's.
    pub(crate) fn shapes(
        &self,
        shapes: &BTreeMap<String, Vec<usize>>,
    ) -> Result<BTreeMap<String, Vec<usize>>, String> {
        self.sources
            .iter()
            .map(|(timm, source)| Ok((timm.clone(), source.shape(shapes)?)))
            .collect()
    }

    /// The tensors of the timm form, from the checkpoint's.
    pub(crate) fn tensors(
        &self,
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> candle_core::Result<HashMap<String, Tensor>> {
        self.sources
            .iter()
            .map(|(timm, source)| Ok((timm.clone(), source.tensor(tensors, device)?)))
            .collect()
    }

    /// The checkpoint's tensors it reads.
    pub(crate) fn read(&self) -> BTreeSet<&str> {
        self.sources.values().flat_map(Source::reads).collect()
    }
}
