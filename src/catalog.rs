//! Model names: catalogue names, local folders and Hub repo ids, and where
//! the catalogue's folders are found on this machine.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::usage;
use crate::model::ModelDir;
pub use crate::model::TaskKind;

/// The shipped catalogue: every name `--model` knows without a folder, and
/// the Hub repo each is published in (fetched when no local copy exists).
pub const CATALOGUE: &[(&str, &str)] = &[
    ("sentiment-lstm", "rnn-zoo/sentiment-lstm"),
    ("sentiment-gru", "rnn-zoo/sentiment-gru"),
    ("sentiment-rnn", "rnn-zoo/sentiment-rnn"),
    ("ner-bilstm-crf", "rnn-zoo/ner-bilstm-crf"),
    ("translate-en-de", "rnn-zoo/translate-en-de"),
    ("translate-en-fr", "rnn-zoo/translate-en-fr"),
    (
        "translate-en-de-multi30k",
        "rnn-zoo/translate-en-de-multi30k",
    ),
    (
        "translate-en-fr-multi30k",
        "rnn-zoo/translate-en-fr-multi30k",
    ),
    ("char-lstm", "rnn-zoo/char-lstm"),
];

/// The Hub repo a catalogue name is published in.
pub fn hub_repo(name: &str) -> Option<&'static str> {
    CATALOGUE.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// Folders that hold catalogue models, in the order they are searched:
/// `$ZOO_MODELS` (a path list), the user data folder
/// (`$XDG_DATA_HOME/zoo/models`, else `~/.local/share/zoo/models`),
/// `../share/zoo/models` beside the executable (a release archive), and the
/// `models/` folder of the zoo checkout the command runs in.
pub fn search_path() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("ZOO_MODELS").filter(|p| !p.is_empty()) {
        v.extend(std::env::split_paths(&p));
    }
    v.push(user_models());
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
    {
        if let Some(prefix) = bin.parent().and_then(Path::parent) {
            v.push(prefix.join("share").join("zoo").join("models"));
        }
    }
    if let Some(c) = checkout() {
        v.push(c.join("models"));
    }
    v.dedup();
    v
}

/// Where `zoo pull` puts models: the user data folder.
pub fn user_models() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    data.join("zoo").join("models")
}

/// The zoo source checkout the command runs in: the one that holds the
/// current folder, else the one whose `target/` holds the executable.
pub fn checkout() -> Option<PathBuf> {
    let is_checkout = |d: &Path| {
        d.join("models").is_dir()
            && std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "name = \"zoo\""))
    };
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok());
    cwd.iter()
        .chain(exe.iter())
        .flat_map(|p| p.ancestors())
        .find(|d| is_checkout(d))
        .map(Path::to_path_buf)
}

/// Every model folder found on the search path, sorted by name; where two
/// folders hold the same name, the first on the path wins.
pub fn list() -> Result<Vec<ModelDir>> {
    let mut dirs: Vec<ModelDir> = Vec::new();
    for root in search_path() {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        let mut here: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("config.json").exists())
            .collect();
        here.sort();
        for p in here {
            let d = ModelDir::open(&p)?;
            if !dirs.iter().any(|x| x.header.name == d.header.name) {
                dirs.push(d);
            }
        }
    }
    dirs.sort_by(|a, b| a.header.name.cmp(&b.header.name));
    Ok(dirs)
}

/// The local folder of a catalogue name, searched along [`search_path`].
pub fn find(name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return None;
    }
    search_path()
        .into_iter()
        .map(|root| root.join(name))
        .find(|d| d.join("config.json").is_file())
}

/// Resolves `--model` locally: a folder path or a catalogue name found on
/// this machine.
pub fn resolve_local(spec: &str) -> Result<Option<ModelDir>> {
    let p = Path::new(spec);
    if p.is_dir() {
        return Ok(Some(ModelDir::open(p)?));
    }
    match find(spec) {
        Some(d) => Ok(Some(ModelDir::open(&d)?)),
        None => Ok(None),
    }
}

pub fn unknown_model(spec: &str) -> anyhow::Error {
    let names: Vec<&str> = CATALOGUE.iter().map(|(n, _)| *n).collect();
    usage(format!(
        "unknown model `{spec}`: give a catalogue name ({}), a model folder, or a Hub repo id owner/name",
        names.join(", ")
    ))
}

/// Files a model folder may have: its card, and the words it read in
/// training (see `tasks::seen`).
#[cfg(feature = "hub")]
const OPTIONAL_FILES: [&str; 2] = ["README.md", crate::tasks::seen::FILE];

/// Files a model folder needs besides `config.json`.
pub fn task_files(dir: &ModelDir) -> Vec<String> {
    let mut v: Vec<String> = dir
        .header
        .task
        .files()
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(dir.header.weights_files());
    v
}

/// Resolves `--model`: a folder, a catalogue name (found locally, else
/// fetched from its Hub repo), or a Hub repo id (downloaded into the
/// Hugging Face cache, or read from it offline).
#[cfg(feature = "hub")]
pub fn resolve(spec: &str, progress: bool) -> Result<ModelDir> {
    if let Some(d) = resolve_local(spec)? {
        return Ok(d);
    }
    let id = match (crate::hub::HubId::parse(spec), hub_repo(spec)) {
        (Some(id), _) => id,
        (None, Some(repo)) => crate::hub::HubId::parse(repo).expect("catalogue repo ids parse"),
        (None, None) => return Err(unknown_model(spec)),
    };
    fetch(&id, progress)
}

/// Resolves `--model` in a build without the `hub` feature: a folder or a
/// catalogue name found on this machine.
#[cfg(not(feature = "hub"))]
pub fn resolve(spec: &str, _progress: bool) -> Result<ModelDir> {
    match resolve_local(spec)? {
        Some(d) => Ok(d),
        None if hub_repo(spec).is_some() || spec.contains('/') => Err(usage(format!(
            "model `{spec}` is not on this machine and this build has no Hub support: set ZOO_MODELS to a folder that holds it, or rebuild with the `hub` feature"
        ))),
        None => Err(unknown_model(spec)),
    }
}

/// Downloads (or finds in the cache) a Hub model and every file it needs.
#[cfg(feature = "hub")]
pub fn fetch(id: &crate::hub::HubId, progress: bool) -> Result<ModelDir> {
    let folder = crate::hub::fetch(id, &["config.json"], &[], progress)?;
    let dir = ModelDir::open(&folder)?;
    let files = task_files(&dir);
    let files: Vec<&str> = files.iter().map(|s| s.as_str()).collect();
    crate::hub::fetch(id, &files, &OPTIONAL_FILES, progress)?;
    Ok(dir)
}

/// `zoo pull NAME`: a catalogue model copied from its Hub repo into the
/// user data folder, so that it is found offline from anywhere.
#[cfg(feature = "hub")]
pub fn pull(name: &str, progress: bool) -> Result<PathBuf> {
    let repo = hub_repo(name).ok_or_else(|| unknown_model(name))?;
    let id = crate::hub::HubId::parse(repo).expect("catalogue repo ids parse");
    let src = fetch(&id, progress)?;
    let dest = user_models().join(name);
    let tmp = user_models().join(format!(".{name}.partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let mut files = vec!["config.json".to_string()];
    files.extend(task_files(&src));
    for f in OPTIONAL_FILES {
        if src.path.join(f).exists() {
            files.push(f.into());
        }
    }
    for f in &files {
        // Hub snapshots are links into the blob store: copy the contents.
        std::fs::copy(src.path.join(f), tmp.join(f))
            .map_err(|e| anyhow::anyhow!("cannot copy {f} into {}: {e}", tmp.display()))?;
    }
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest)?;
    Ok(dest)
}
