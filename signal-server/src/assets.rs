//! The player's code as the browser sees it: content-hashed names, how long
//! each file may be cached, and the entry points that name them.
//!
//! `scripts/build-web` copies the wasm, its glue and the player's modules
//! into `web/pkg` under content-hashed names (`pkg/player-<16 hex>.js`, each
//! module's imports rewritten to the hashed names) and writes
//! `web/pkg/manifest.json`: source name → hashed name, the entry module, the
//! modules it loads and the wasm. The server reads the manifest once, at
//! startup ([`WebAssets::load`]). Then:
//!
//! - hashed files are sent `Cache-Control: public, max-age=31536000,
//!   immutable`: a second visit, or a second track, downloads no code, and a
//!   new build has new names, so nothing stale is ever kept;
//! - everything else of `web/` (`/`, `/sw.js`, the unhashed sources) is sent
//!   `no-cache` (revalidated each time: `/sw.js` must stay at its URL and
//!   never be stale), as are the entry points made here: `/embed/<hex>`
//!   ([`crate::embed`]) and `/embed.js` ([`crate::web::embed_js`]), which name the hashed
//!   files;
//! - files with a `.br` or `.gz` copy beside them go out brotli- or
//!   gzip-encoded to browsers that take it, with the type of the original
//!   (`application/wasm` stays `application/wasm`, which streaming
//!   compilation needs), and `Vary: accept-encoding`.
//!
//! Without a manifest (a `web/` that was never built, or built by an older
//! build-web) the server serves the unhashed source names, `no-cache`, and
//! says so in the log; a manifest it cannot use (unreadable, not the
//! expected shape, naming a file that is not there) is logged as an error
//! and treated the same way. Either way every page still works, only without
//! the long caching: a manifest is all or nothing, since hashed modules
//! import each other by their hashed names.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where build-web writes the manifest, under the web directory.
pub const MANIFEST: &str = "pkg/manifest.json";

/// `Cache-Control` of a content-hashed file.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of every file whose URL must stay fixed.
pub const REVALIDATE: &str = "no-cache";

/// The player's module and wasm names, hashed or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAssets {
    /// The stream worker's built copy (`pkg/sw.js`: minified, with its
    /// precompressed copies), sent at `/sw.js`; `None`: `web/sw.js` itself.
    sw: Option<String>,
    /// Source name (path under `web/`) → the path it is served at (no `/`).
    files: HashMap<String, String>,
    /// The module a page loads (`player.js`), by source name.
    entry: String,
    /// Every module the entry loads, entry first, by source name.
    modules: Vec<String>,
    /// The wasm, by source name.
    wasm: String,
    /// URL paths (`/pkg/…`) sent immutable.
    immutable: HashSet<String>,
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// It is not the JSON build-web writes.
    #[error("{path} is not a build-web manifest: {source}")]
    Json {
        /// The manifest's path.
        path: PathBuf,
        /// What serde_json found.
        source: serde_json::Error,
    },
    /// A name is not a plain relative path of safe characters (it goes into
    /// HTML and JavaScript as is).
    #[error("manifest name {0:?} is not a plain relative path")]
    UnsafeName(String),
    /// The entry, a module or the wasm is not among the manifest's files.
    #[error("manifest names {0:?} but maps no file for it")]
    Unmapped(String),
    /// A hashed file it names is not in the web directory.
    #[error("manifest names {0}, which is missing: run scripts/build-web again")]
    Missing(PathBuf),
}

/// What build-web writes (see its manifest section).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    files: HashMap<String, String>,
    entry: String,
    modules: Vec<String>,
    wasm: String,
    /// Absent from an older build-web's manifest.
    #[serde(default)]
    sw: Option<String>,
}

impl WebAssets {
    /// The unhashed source names: a `web/` without a build manifest.
    pub fn unhashed() -> WebAssets {
        WebAssets {
            files: HashMap::new(),
            entry: "player.js".into(),
            // Unknown without a manifest: the page loads them as it imports.
            modules: Vec::new(),
            wasm: "pkg/client_wasm_bg.wasm".into(),
            immutable: HashSet::new(),
            sw: None,
        }
    }

    /// Reads `web_dir`'s manifest. Never fails: a missing one means the
    /// unhashed names (a warning), an unusable one too (an error in the log).
    pub fn load(web_dir: &Path) -> WebAssets {
        let path = web_dir.join(MANIFEST);
        match Self::read(web_dir) {
            Ok(Some(assets)) => {
                tracing::debug!(manifest = %path.display(), entry = %assets.entry_url(), "hashed web assets");
                assets
            }
            Ok(None) => {
                if web_dir.is_dir() {
                    tracing::warn!(
                        manifest = %path.display(),
                        "no build manifest: serving the player's unhashed files, not cached \
                         long (run scripts/build-web)"
                    );
                }
                Self::unhashed()
            }
            Err(e) => {
                tracing::error!("{e}; serving the player's unhashed files, not cached long");
                Self::unhashed()
            }
        }
    }

    /// The manifest of `web_dir`, checked; `None` when there is none.
    pub fn read(web_dir: &Path) -> Result<Option<WebAssets>, ManifestError> {
        let path = web_dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ManifestError::Read { path, source }),
        };
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| ManifestError::Json { path, source })?;
        let names = manifest.files.keys().chain(manifest.files.values());
        for name in names.chain(&manifest.sw) {
            if !is_plain_path(name) {
                return Err(ManifestError::UnsafeName(name.clone()));
            }
        }
        for name in manifest
            .modules
            .iter()
            .chain([&manifest.entry, &manifest.wasm])
        {
            if !manifest.files.contains_key(name) {
                return Err(ManifestError::Unmapped(name.clone()));
            }
        }
        for served in manifest.files.values().chain(&manifest.sw) {
            let file = web_dir.join(served);
            if !file.is_file() {
                return Err(ManifestError::Missing(file));
            }
        }
        Ok(Some(WebAssets {
            immutable: manifest.files.values().map(|p| format!("/{p}")).collect(),
            files: manifest.files,
            entry: manifest.entry,
            modules: manifest.modules,
            wasm: manifest.wasm,
            sw: manifest.sw,
        }))
    }

    /// Whether the names are content-hashed (a build manifest was read).
    pub fn is_hashed(&self) -> bool {
        !self.immutable.is_empty()
    }

    /// The URL path a source name (path under `web/`) is served at.
    pub fn url(&self, source: &str) -> String {
        format!("/{}", self.files.get(source).map_or(source, String::as_str))
    }

    /// The module a page loads to get `<fanswarm-player>`.
    pub fn entry_url(&self) -> String {
        self.url(&self.entry)
    }

    /// Every module the entry loads, entry first (empty without a manifest).
    pub fn module_urls(&self) -> impl Iterator<Item = String> + '_ {
        self.modules.iter().map(|m| self.url(m))
    }

    /// The wasm peer.
    pub fn wasm_url(&self) -> String {
        self.url(&self.wasm)
    }

    /// The stream worker's built copy under `web/` (`pkg/sw.js`), which
    /// answers `/sw.js` (its URL stays `/sw.js`: a worker's script URL is
    /// its identity); `None`: `web/sw.js` itself does.
    pub fn worker_copy(&self) -> Option<&str> {
        self.sw.as_deref()
    }

    /// The `Cache-Control` for a successful response at URL path `path`.
    pub fn cache_control(&self, path: &str) -> &'static str {
        if self.immutable.contains(path) {
            IMMUTABLE
        } else {
            REVALIDATE
        }
    }
}

/// `pkg/player-0123.js`: relative, no `..`, only characters that need no
/// escaping in HTML attributes and JavaScript strings.
fn is_plain_path(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_only() {
        for ok in [
            "player.js",
            "pkg/player-0123456789abcdef.js",
            "pkg/client_wasm_bg.wasm",
        ] {
            assert!(is_plain_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/abs.js",
            "../up.js",
            "pkg/../x.js",
            "a//b.js",
            "./x.js",
            "x'.js",
            "x\".js",
            "x<.js",
            "x y.js",
            "pkg/",
        ] {
            assert!(!is_plain_path(bad), "{bad}");
        }
    }

    #[test]
    fn unhashed_names_are_the_sources_and_revalidated() {
        let assets = WebAssets::unhashed();
        assert!(!assets.is_hashed());
        assert_eq!(assets.entry_url(), "/player.js");
        assert_eq!(assets.wasm_url(), "/pkg/client_wasm_bg.wasm");
        assert_eq!(assets.module_urls().count(), 0);
        assert_eq!(assets.cache_control("/pkg/client_wasm_bg.wasm"), REVALIDATE);
    }
}
