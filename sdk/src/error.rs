//! Errors caused by what the user gave us (a config key, a file, a tensor), as opposed to bugs.
//! The host prints these on one line and exits with code 2.
//!
//! One way to report a bad config value from a plugin: [`InputError::config`] with the key as the run
//! config spells it (`teacher.checkpoint`); the host names the run's file ([`name_config_source`]). Problems
//! inside another file (a checkpoint, a JSON config) use [`InputError::new`] with that file's path.

/// A problem with user input. `source_name` names the file (empty: the run config, which the host names),
/// `key` the config key or tensor name.
#[derive(Debug, thiserror::Error)]
#[error("{}: {key}{sep}{message}", if source_name.is_empty() { "run config" } else { source_name }, sep = if key.is_empty() { "" } else { ": " })]
pub struct InputError {
    /// The file (or other source, such as an environment variable) the bad value came from.
    pub source_name: String,
    /// The config key or tensor name, empty when the whole source is bad.
    pub key: String,
    /// What is wrong, with the expected and found values where there are any.
    pub message: String,
}

impl InputError {
    /// An error in the run config at `key`; the host fills in the config file's name.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new("", key, message)
    }

    /// Builds an input error for `source_name`, `key` and `message`.
    pub fn new(source_name: impl Into<String>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { source_name: source_name.into(), key: key.into(), message: message.into() }
    }
}

/// Shorthand: `Err(InputError::new(..).into())`; an empty `source_name` stands for the run config.
pub fn input_error<T>(source_name: impl Into<String>, key: impl Into<String>, message: impl Into<String>) -> crate::Result<T> {
    Err(InputError::new(source_name, key, message).into())
}

/// Gives an input error about the run config (an empty `source_name`) the config file's name; any other
/// error is returned unchanged.
pub fn name_config_source(err: anyhow::Error, config_name: &str) -> anyhow::Error {
    match err.chain().find_map(|e| e.downcast_ref::<InputError>()) {
        Some(ie) if ie.source_name.is_empty() => InputError::new(config_name, ie.key.clone(), ie.message.clone()).into(),
        _ => err,
    }
}
