//! A plugin that registers `[teacher] kind = "analytic"`, a name the analytic plugin already has: loaded
//! beside it, boot-host must refuse it with one line naming both providers (`tests/tests/bad_input.rs`).

use std::sync::Arc;

use boot_sdk::{Teacher, TeacherConfig, TeacherContext};

/// A teacher config under a taken kind name.
#[derive(Debug, serde::Deserialize)]
pub struct SecondAnalyticConfig {}

boot_sdk::register! {
    teacher "analytic" => "a second teacher kind named analytic";
    impl TeacherConfig for SecondAnalyticConfig {
        fn build(&self, _: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> {
            boot_sdk::anyhow::bail!("a duplicate kind is refused before it is built")
        }
    }
}

boot_sdk::declare_plugin!("duplicate");
