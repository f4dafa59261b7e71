//! Loading plugin libraries: find the file, check the declaration against this binary's sdk, register.
//!
//! Libraries are never unloaded (their registrations live in shared registries for the whole process).

use std::path::{Path, PathBuf};

use boot_sdk::plugin::{host_identity, registered_kinds, Kind, PluginDeclaration, Registration, DECLARATION_LAYOUT, DECLARATION_SYMBOL};
use boot_sdk::InputError;

/// Everything registered: built-ins first, then each plugin's components.
#[derive(Debug, Default)]
pub struct Catalogue {
    /// All registrations.
    pub entries: Vec<Registration>,
    /// Loaded plugin files.
    pub loaded: Vec<(String, PathBuf)>,
    /// The registry entries already attributed to a provider.
    seen: Vec<*const Kind>,
}

impl Catalogue {
    /// Attributes the kinds that appeared in the registry since the last call to `provider`; a kind name
    /// already taken by another provider is an error naming both.
    fn claim_new(&mut self, provider: &str) -> Result<(), String> {
        let fresh: Vec<&'static Kind> = registered_kinds().filter(|k| !self.seen.contains(&(*k as *const Kind))).collect();
        for kind in fresh {
            self.seen.push(kind as *const Kind);
            if let Some(prev) = self.entries.iter().find(|e| e.component == kind.component && e.kind == kind.kind) {
                return Err(format!("{} kind `{}` is already provided by `{}`", kind.component.section(), kind.kind, prev.provider));
            }
            self.entries.push(Registration::of(kind, provider));
        }
        Ok(())
    }
}

/// The built-in registrations (`boot-core`'s `register!` calls, through `inventory`).
pub fn builtins() -> Catalogue {
    let mut catalogue = Catalogue::default();
    // Built-in names are unique by construction (one crate); a clash would be a bug, reported as one.
    if let Err(e) = catalogue.claim_new("core") {
        panic!("built-in components: {e}");
    }
    catalogue
}

/// The library file name of plugin `name`: `libboot_plugin_<name>.so` (`-` becomes `_`).
pub fn library_name(name: &str) -> String {
    format!("{}boot_plugin_{}{}", std::env::consts::DLL_PREFIX, name.replace('-', "_"), std::env::consts::DLL_SUFFIX)
}

/// Folders searched for plugins by name: the configured ones, then the binary's folder and its `plugins/`.
pub fn search_dirs(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = extra.to_vec();
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
        dirs.push(exe_dir.join("plugins"));
        dirs.push(exe_dir);
    }
    dirs
}

/// Resolves a `run.plugins` entry: a path (contains `/` or ends in the library suffix, relative to
/// `base_dir`) or a name looked up in `dirs`.
pub fn resolve(spec: &str, base_dir: &Path, dirs: &[PathBuf], config_name: &str) -> anyhow::Result<PathBuf> {
    if spec.contains('/') || spec.ends_with(std::env::consts::DLL_SUFFIX) {
        let p = base_dir.join(spec);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(InputError::new(config_name, "run.plugins", format!("plugin file `{}` does not exist", p.display())).into())
        };
    }
    let file = library_name(spec);
    dirs.iter().map(|d| d.join(&file)).find(|p| p.is_file()).ok_or_else(|| {
        let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        InputError::new(config_name, "run.plugins", format!("plugin `{spec}`: no file {file} in {}", searched.join(", "))).into()
    })
}

/// Loads one plugin library, checks its declaration and registers its components into `catalogue`.
pub fn load(path: &Path, catalogue: &mut Catalogue) -> anyhow::Result<()> {
    let shown = path.display().to_string();
    // SAFETY: loading a library runs its initialisers; plugins are trusted code the user asked for.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| InputError::new(&shown, "", format!("cannot load plugin library: {e}")))?;
    // SAFETY: the symbol, if present, is the static made by `declare_plugin!`.
    let decl: &PluginDeclaration = unsafe {
        let sym = lib
            .get::<*const PluginDeclaration>(DECLARATION_SYMBOL)
            .map_err(|_| InputError::new(&shown, "BOOT_PLUGIN_DECLARATION", "not a boot plugin (symbol missing)"))?;
        &**sym
    };
    // SAFETY: every layout starts with the same header of C strings that `declare_plugin!` writes, so the
    // identity can be read (and an old plugin's sdk named) before the layout is checked.
    let (theirs, name) = unsafe { (decl.identity(), decl.plugin_name()) };
    let ours = host_identity();
    if theirs != ours {
        let msg = format!(
            "plugin `{name}` was built against sdk {} (build {}, {}, features [{}]) but this boot-host has sdk {} (build {}, {}, features [{}]); rebuild the plugin in this workspace",
            theirs.sdk_version, theirs.build_id, theirs.rustc_version, theirs.features, ours.sdk_version, ours.build_id, ours.rustc_version, ours.features
        );
        return Err(InputError::new(&shown, "plugin declaration", msg).into());
    }
    if decl.layout != DECLARATION_LAYOUT {
        let msg = format!("declaration layout {} but this boot-host reads layout {DECLARATION_LAYOUT}; rebuild the plugin", decl.layout);
        return Err(InputError::new(&shown, "plugin declaration", msg).into());
    }
    // The library's `register!` entries joined the registry when it was loaded.
    catalogue.claim_new(&name).map_err(|msg| InputError::new(&shown, "plugin declaration", msg))?;
    catalogue.loaded.push((name, path.to_path_buf()));
    std::mem::forget(lib);
    Ok(())
}

/// Every plugin library in `dirs` (for `boot-host plugins` without a config).
pub fn discover(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let prefix = format!("{}boot_plugin_", std::env::consts::DLL_PREFIX);
    let mut found: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().map(|n| n.to_string_lossy().to_string()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(std::env::consts::DLL_SUFFIX))
        })
        .collect();
    found.sort();
    found.dedup_by(|a, b| a.file_name() == b.file_name());
    found
}
