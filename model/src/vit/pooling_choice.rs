//! Which [`Pooling`] a timm model's features use: its own `global_pool` by default, or the one
//! asked for, refused where the model lacks what it needs.

use ldae_pipeline::names::name_of;
use ldae_pipeline::{Error, Result};

use super::folder::TimmFolder;
use crate::pooling::Pooling;

const STAGE: &str = "encoder";

impl TimmFolder {
    /// The pooling of features read after `blocks`: `asked`, or the model's own (`token`,
    /// `avg` as `mean`, `map`, or none). Refused: `token` without a class token, `map` without
    /// attention pooling, `head` without a head or a pooled token for it, and `map` or `head`
    /// after an inner block (both read the last block's tokens).
    pub fn pooling(&self, asked: Option<Pooling>, blocks: &[usize]) -> Result<Pooling> {
        let args = &self.args;
        let pooling = asked.unwrap_or(match args.global_pool.as_str() {
            "token" => Pooling::Token,
            "avg" => Pooling::Mean,
            "map" => Pooling::Map,
            _ => Pooling::None,
        });
        let refuse = |why: String| {
            Err(Error::plan(
                STAGE,
                format!("pooling {}: {} {why}", name_of(&pooling), self.architecture),
            ))
        };
        match pooling {
            Pooling::Token | Pooling::TokenMean if !args.class_token => {
                return refuse("has no class token".into())
            }
            Pooling::Map if args.global_pool != "map" => {
                return refuse(format!(
                    "has no attention pooling (its global_pool is '{}')",
                    args.global_pool
                ))
            }
            Pooling::Head if args.num_classes == 0 => {
                return refuse("has no head (num_classes 0)".into())
            }
            Pooling::Head if !matches!(args.global_pool.as_str(), "token" | "avg" | "map") => {
                return refuse("pools no tokens (global_pool none) for its head".into())
            }
            _ => {}
        }
        if matches!(pooling, Pooling::Map | Pooling::Head) {
            if let Some(&inner) = blocks.iter().find(|&&b| b != args.depth) {
                return refuse(format!(
                    "reads the last block's tokens ({}), not block {inner}: choose another \
                     --pooling for inner blocks",
                    args.depth
                ));
            }
        }
        Ok(pooling)
    }
}
