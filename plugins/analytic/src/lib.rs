//! Analytic plugin.
fn register(r: &mut boot_sdk::plugin::Registrar) { r.teacher("analytic", "x"); }
boot_sdk::declare_plugin!("analytic", register);
