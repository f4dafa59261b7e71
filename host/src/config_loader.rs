//! Layered run config: the TOML file, then `BOOT__SECTION__KEY` environment overrides.
//!
//! Loading happens in two phases because component kinds come from plugins: first the untyped config is
//! read and `run.plugins` loaded (typetag's registry must be complete before its first use), then the whole
//! config is deserialized into [`RunConfig`], with errors naming the key.

use std::path::{Path, PathBuf};

use boot_core::components::RunContext;
use boot_core::config::RunConfig;
use boot_sdk::InputError;
use config::{Config, Environment, File, FileFormat};

use crate::plugin_loader::{builtins, load, resolve, search_dirs, Catalogue};

/// Loads the plugins `raw` names (searching `extra_plugin_dirs` first), then types it.
pub fn load_run(raw: RawConfig, extra_plugin_dirs: &[PathBuf]) -> anyhow::Result<(RunConfig, RunContext, Catalogue)> {
    let mut catalogue = builtins();
    let dirs = search_dirs(&[extra_plugin_dirs.to_vec(), raw.plugin_dirs()?].concat());
    for spec in raw.plugins()? {
        let file = resolve(&spec, &raw.context.base_dir, &dirs, &raw.context.config_name)?;
        load(&file, &mut catalogue)?;
    }
    let (cfg, ctx) = raw.into_typed()?;
    Ok((cfg, ctx, catalogue))
}

/// A config file read but not yet typed.
pub struct RawConfig {
    raw: Config,
    /// Name and folder of the file.
    pub context: RunContext,
}

impl RawConfig {
    /// Reads `path` and the environment overrides.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        Self::read_with(path, &[])
    }

    /// Reads `path`, the environment overrides, then `overrides` (dotted key and string value, e.g.
    /// `("teacher.checkpoint", "/tmp/x/teacher.safetensors")`), which win over both.
    pub fn read_with(path: &Path, overrides: &[(&str, String)]) -> anyhow::Result<Self> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| InputError::new(&name, "", format!("cannot read config: {e}")))?;
        let mut builder = Config::builder()
            .add_source(File::from_str(&text, FileFormat::Toml))
            .add_source(Environment::with_prefix("BOOT").prefix_separator("__").separator("__").try_parsing(true));
        for (key, value) in overrides {
            builder = builder.set_override(*key, value.clone()).map_err(|e| InputError::new(&name, *key, e.to_string()))?;
        }
        let raw = builder.build().map_err(|e| InputError::new(&name, "", e.to_string()))?;
        let base_dir = path.parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."));
        Ok(Self { raw, context: RunContext { config_name: name, base_dir } })
    }

    /// `run.plugins`, read without touching any component type.
    pub fn plugins(&self) -> anyhow::Result<Vec<String>> {
        self.list("run.plugins")
    }

    /// `run.plugin_dirs`, resolved against the config's folder.
    pub fn plugin_dirs(&self) -> anyhow::Result<Vec<PathBuf>> {
        Ok(self.list("run.plugin_dirs")?.into_iter().map(|d| self.context.base_dir.join(d)).collect())
    }

    /// The value at dotted `key`, typed (an input error naming the key if it is missing or mistyped).
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> anyhow::Result<T> {
        self.raw.get::<T>(key).map_err(|e| InputError::new(&self.context.config_name, key, e.to_string()).into())
    }

    fn list(&self, key: &str) -> anyhow::Result<Vec<String>> {
        match self.raw.get::<Vec<String>>(key) {
            Ok(v) => Ok(v),
            Err(config::ConfigError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(InputError::new(&self.context.config_name, key, e.to_string()).into()),
        }
    }

    /// Deserializes the whole config; call after the plugins are loaded.
    pub fn into_typed(self) -> anyhow::Result<(RunConfig, RunContext)> {
        let name = self.context.config_name.clone();
        match serde_path_to_error::deserialize::<_, RunConfig>(self.raw) {
            Ok(cfg) => Ok((cfg, self.context)),
            Err(e) => {
                let key = e.path().to_string();
                let key = if key == "." { String::new() } else { key };
                Err(InputError::new(name, key, e.into_inner().to_string()).into())
            }
        }
    }
}

/// Gives an input error about "the run config" (empty source) the config file's name.
pub fn name_source(err: anyhow::Error, config_name: &str) -> anyhow::Error {
    boot_sdk::error::name_config_source(err, config_name)
}
