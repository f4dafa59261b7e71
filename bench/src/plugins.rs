//! Loading a plugin library the way boot-host does: `libboot_plugin_<name>.so` from the given folders, the
//! binary's `plugins/` and its own folder; the declaration's identity must equal this binary's sdk's. The
//! library is never unloaded (its typetag registrations live for the whole process).

use std::path::{Path, PathBuf};

use boot_sdk::plugin::{host_identity, PluginDeclaration, DECLARATION_LAYOUT, DECLARATION_SYMBOL};

/// Loads plugin `name`, searching `extra` first; returns the file loaded.
pub fn load(name: &str, extra: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let file = format!("{}boot_plugin_{}{}", std::env::consts::DLL_PREFIX, name.replace('-', "_"), std::env::consts::DLL_SUFFIX);
    let mut dirs = extra.to_vec();
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
        dirs.push(exe_dir.join("plugins"));
        dirs.push(exe_dir);
    }
    let path = dirs.iter().map(|d| d.join(&file)).find(|p| p.is_file()).ok_or_else(|| {
        let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        anyhow::anyhow!("plugin `{name}`: no {file} in {} (build the workspace: cargo build --release --workspace)", searched.join(", "))
    })?;
    // SAFETY: loading runs the library's initialisers; it is this workspace's own plugin.
    let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| anyhow::anyhow!("{}: cannot load: {e}", path.display()))?;
    // SAFETY: the symbol is the static `declare_plugin!` makes; its header is checked before any call.
    let decl: &PluginDeclaration = unsafe {
        let sym = lib.get::<*const PluginDeclaration>(DECLARATION_SYMBOL).map_err(|_| anyhow::anyhow!("{}: not a boot plugin", path.display()))?;
        &**sym
    };
    anyhow::ensure!(decl.layout == DECLARATION_LAYOUT, "{}: declaration layout {} (this binary reads {DECLARATION_LAYOUT})", path.display(), decl.layout);
    // SAFETY: the layout matches, so the header holds the C strings `declare_plugin!` wrote.
    let (theirs, plugin) = unsafe { (decl.identity(), decl.plugin_name()) };
    let ours = host_identity();
    anyhow::ensure!(
        theirs == ours,
        "{}: plugin `{plugin}` was built against sdk build {} ({}), this binary has {} ({}): rebuild the workspace",
        path.display(),
        theirs.build_id,
        theirs.features,
        ours.build_id,
        ours.features
    );
    let _ = plugin;
    std::mem::forget(lib);
    Ok(path)
}
