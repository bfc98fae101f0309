//! A model named by its Hugging Face hub id (`facebook/dinov2-small`, or `ID@REVISION`), found
//! in the local hub cache where `hf download ID` and transformers'
//! `from_pretrained` leave it. Nothing is downloaded.
//!
//! The cache is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`,
//! else `~/.cache/huggingface/hub`; a model is the folder `models--ORG--NAME/snapshots/COMMIT`,
//! its COMMIT read from `refs/REVISION` (`main` unless the id names another revision, which may
//! also be a commit hash).

use std::path::{Path, PathBuf};

use ldae_pipeline::{Error, Result};

/// The hub cache folder the environment names.
pub fn cache_root() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("HF_HUB_CACHE")
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("huggingface").join("hub")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("huggingface").join("hub")))
}

/// `ORG/NAME[@REVISION]` split into the repository and the revision (`main` by default), when
/// `text` has that form: one `/`, no leading `.`, `/` or `~`, names of letters, digits, `-`,
/// `_` and `.`.
fn hub_id(text: &str) -> Option<(&str, &str)> {
    let (repo, revision) = match text.split_once('@') {
        Some((repo, revision)) if !revision.is_empty() && !revision.contains('/') => {
            (repo, revision)
        }
        Some(_) => return None,
        None => (text, "main"),
    };
    let (org, name) = repo.split_once('/')?;
    let part = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (part(org) && part(name)).then_some((repo, revision))
}

/// `path` itself when it exists (or does not look like a hub id); else the snapshot folder of
/// the hub id it spells in the local cache, or an error that says how to get it there.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let text = path.to_string_lossy();
    let id = hub_id(&text);
    let (Some((repo, revision)), false) = (id, path.exists()) else {
        return Ok(path.to_path_buf());
    };
    let root = cache_root().ok_or_else(|| {
        Error::invalid(format!(
            "{text}: no such folder, and no Hugging Face cache to look in (set HF_HUB_CACHE)"
        ))
    })?;
    let model = root.join(format!("models--{}", repo.replace('/', "--")));
    if !model.is_dir() {
        return Err(Error::invalid(format!(
            "{text}: no such folder, nor a model in the Hugging Face cache ({} is missing): \
             download it with `hf download {repo}`, or pass its folder",
            model.display()
        )));
    }
    let snapshots = model.join("snapshots");
    let commit = match std::fs::read_to_string(model.join("refs").join(revision)) {
        Ok(commit) => commit.trim().to_string(),
        // A commit hash names its snapshot directly.
        Err(_) if snapshots.join(revision).is_dir() => revision.to_string(),
        Err(_) => {
            return Err(Error::invalid(format!(
                "{text}: the Hugging Face cache's {} has no revision '{revision}' (no \
                 refs/{revision}, no snapshot of that name): download it with `hf download \
                 {repo} --revision {revision}`",
                model.display()
            )))
        }
    };
    let snapshot = snapshots.join(&commit);
    if !snapshot.is_dir() {
        return Err(Error::invalid(format!(
            "{text}: revision '{revision}' is commit {commit}, whose snapshot {} is missing from \
             the Hugging Face cache: download it again",
            snapshot.display()
        )));
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_are_told_from_paths() {
        assert_eq!(
            hub_id("facebook/dinov2-small"),
            Some(("facebook/dinov2-small", "main"))
        );
        assert_eq!(
            hub_id("timm/vit_small_patch16_224.augreg_in21k@v1.0"),
            Some(("timm/vit_small_patch16_224.augreg_in21k", "v1.0"))
        );
        for path in [
            "runs/a/b", "./runs/a", "/abs/x", "~/x/y", "run1", "a/", "a/b@", "../a",
        ] {
            assert_eq!(hub_id(path), None, "{path}");
        }
    }
}
