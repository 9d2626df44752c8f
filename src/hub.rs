//! Models from the Hugging Face Hub, through `hf-hub`'s blocking client,
//! into the standard cache, following `huggingface_hub`'s environment:
//! `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN`, `HF_HUB_OFFLINE`.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

/// `owner/name` with an optional `@revision` (branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubId {
    pub repo: String,
    pub revision: String,
}

impl HubId {
    /// Parses `owner/name[@revision]`; `None` when `s` is not shaped like one.
    pub fn parse(s: &str) -> Option<Self> {
        let (repo, revision) = match s.split_once('@') {
            Some((r, rev)) => (r, rev),
            None => (s, "main"),
        };
        let mut parts = repo.split('/');
        let (owner, name) = (parts.next()?, parts.next()?);
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if parts.next().is_some() || !ok(owner) || !ok(name) || revision.is_empty() {
            return None;
        }
        Some(Self {
            repo: repo.to_string(),
            revision: revision.to_string(),
        })
    }

    fn hf_repo(&self) -> Repo {
        Repo::with_revision(self.repo.clone(), RepoType::Model, self.revision.clone())
    }
}

impl std::fmt::Display for HubId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.repo, self.revision)
    }
}

/// The hub cache folder, as `huggingface_hub` picks it.
pub fn cache_dir() -> Result<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = var("HF_HUB_CACHE") {
        return Ok(p);
    }
    if let Some(p) = var("HF_HOME") {
        return Ok(p.join("hub"));
    }
    if let Some(p) = var("XDG_CACHE_HOME") {
        return Ok(p.join("huggingface").join("hub"));
    }
    match var("HOME") {
        Some(h) => Ok(h.join(".cache").join("huggingface").join("hub")),
        None => bail!("cannot locate the Hugging Face cache: set HF_HOME"),
    }
}

pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim(),
            "1" | "true" | "TRUE" | "True" | "yes" | "ON" | "on"
        )
    })
}

/// Makes `files` of the repo available locally (download or cache) and
/// returns the snapshot folder that holds them. `optional` files may be
/// absent from the repo.
pub fn fetch(id: &HubId, files: &[&str], optional: &[&str], progress: bool) -> Result<PathBuf> {
    let cache = Cache::new(cache_dir()?);
    let mut folder: Option<PathBuf> = None;
    let mut note = |path: PathBuf| {
        if folder.is_none() {
            folder = path.parent().map(|p| p.to_path_buf());
        }
    };
    if offline() {
        let repo = cache.repo(id.hf_repo());
        for f in files {
            match repo.get(f).or_else(|| snapshot_file(cache.path(), id, f)) {
                Some(p) => note(p),
                None => bail!(
                    "HF_HUB_OFFLINE=1 and {f} of {id} is not in the Hugging Face cache ({}): run once online, or unset HF_HUB_OFFLINE",
                    cache.path().display()
                ),
            }
        }
        return folder.ok_or_else(|| anyhow!("no files requested"));
    }
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| cache.token());
    let api = ApiBuilder::from_cache(cache)
        .with_endpoint(endpoint.trim_end_matches('/').to_string())
        .with_token(token)
        .with_progress(progress)
        .build()
        .map_err(|e| anyhow!("cannot start the Hub client: {e}"))?;
    let repo = api.repo(id.hf_repo());
    for f in files.iter().chain(optional) {
        match repo.get(f) {
            Ok(p) => note(p),
            Err(e) if optional.contains(f) && is_not_found(&e) => {}
            Err(e) => return Err(explain(e, id, f, &endpoint)),
        }
    }
    folder.ok_or_else(|| anyhow!("no files requested"))
}

/// A file pinned by commit in the cache's `snapshots/<sha>/`: the layout
/// Python's huggingface_hub leaves for `revision=<sha>`, with no `refs/`
/// entry naming that commit.
fn snapshot_file(cache: &std::path::Path, id: &HubId, file: &str) -> Option<PathBuf> {
    let rev = &id.revision;
    if rev.len() != 40 || !rev.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let p = cache
        .join(format!("models--{}", id.repo.replace('/', "--")))
        .join("snapshots")
        .join(rev)
        .join(file);
    p.is_file().then_some(p)
}

fn status(e: &ApiError) -> Option<u16> {
    match e {
        ApiError::RequestError(r) => match r.as_ref() {
            ureq::Error::Status(code, _) => Some(*code),
            _ => None,
        },
        ApiError::TooManyRetries(inner) => status(inner),
        _ => None,
    }
}

fn is_not_found(e: &ApiError) -> bool {
    status(e) == Some(404)
}

/// One line saying what went wrong and what to do.
fn explain(e: ApiError, id: &HubId, file: &str, endpoint: &str) -> anyhow::Error {
    match status(&e) {
        Some(404) => anyhow!("{file} not found in Hub repo {id} at {endpoint}: check the repo id and revision"),
        Some(401) | Some(403) => anyhow!("access to Hub repo {id} denied (HTTP {}): set HF_TOKEN to a token that can read it", status(&e).unwrap_or(0)),
        Some(code) if code >= 500 => anyhow!("the Hub at {endpoint} failed with HTTP {code} while fetching {file} of {id}: try again later"),
        Some(code) => anyhow!("the Hub at {endpoint} answered HTTP {code} for {file} of {id}"),
        None => match e {
            ApiError::RequestError(_) => anyhow!(
                "cannot reach the Hub at {endpoint} to fetch {file} of {id} (network down?): retry online, or set HF_HUB_OFFLINE=1 to use the cache"
            ),
            other => anyhow!("fetching {file} of {id} failed: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_commit_pins_find_snapshots_without_refs() {
        let root = std::env::temp_dir().join(format!("zoo-snap-{}", std::process::id()));
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let dir = root.join("models--me--m").join("snapshots").join(sha);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        let id = HubId::parse(&format!("me/m@{sha}")).unwrap();
        assert_eq!(
            snapshot_file(&root, &id, "config.json"),
            Some(dir.join("config.json"))
        );
        assert_eq!(
            snapshot_file(&root, &HubId::parse("me/m@main").unwrap(), "config.json"),
            None
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn parses_repo_ids_with_and_without_revision() {
        assert_eq!(
            HubId::parse("zoo/sentiment-lstm"),
            Some(HubId {
                repo: "zoo/sentiment-lstm".into(),
                revision: "main".into()
            })
        );
        assert_eq!(HubId::parse("a/b@v1.0").unwrap().revision, "v1.0");
        assert_eq!(HubId::parse("sentiment-lstm"), None);
        assert_eq!(HubId::parse("./models/x"), None);
        assert_eq!(HubId::parse("a/b/c"), None);
        assert_eq!(HubId::parse("a/b@"), None);
    }
}
