//! `boot-host` as a library: what the binary runs, and the parts other tools reuse to build a run the way
//! boot-host does (`boot-bench` loads plugins and configs through [`config_loader`] and [`plugin_loader`]
//! and builds with `boot_core::components::Components::build`).

pub mod cli;
pub mod commands;
pub mod config_loader;
pub mod exit;
pub mod plugin_loader;
pub mod stdout;
