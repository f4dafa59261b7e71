//! The plugin contract.
//!
//! A plugin is a dynamic library that exports one [`PluginDeclaration`] under the symbol
//! [`DECLARATION_SYMBOL`], made with [`declare_plugin!`](crate::declare_plugin). The host reads the
//! declaration's C-layout header first (layout version, sdk version, rustc version, build id, features) and
//! refuses the plugin on any mismatch before calling any of its code. A component kind is registered once,
//! with [`register!`](crate::register): that one macro names the typetag config type selected by
//! `kind = "..."` and lists the kind (with a line on what it is) in an `inventory` of [`Kind`]s. Host and
//! plugins share one copy of the sdk (`libboot_sdk.so`), so both registries see the plugin's entries as soon
//! as the library is loaded; the host attributes the [`Kind`]s that appeared to the plugin it just loaded.

use std::ffi::{c_char, CStr};

/// Symbol name of the declaration in a plugin library.
pub const DECLARATION_SYMBOL: &[u8] = b"BOOT_PLUGIN_DECLARATION\0";

/// Layout version of [`PluginDeclaration`]; bumped whenever its fields change. Layout 1 had a trailing
/// `register` function; every layout starts with the same header (layout, name, versions, build id,
/// features), so the host can name an old plugin's sdk before refusing it.
pub const DECLARATION_LAYOUT: u32 = 2;

const fn c_str(bytes: &'static [u8]) -> &'static CStr {
    match CStr::from_bytes_with_nul(bytes) {
        Ok(c) => c,
        Err(_) => panic!("not a NUL-terminated string"),
    }
}

/// Version of the sdk crate, baked into a plugin when it is compiled.
pub const SDK_VERSION: &CStr = c_str(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes());
/// `rustc --version` of the compiler that built the sdk, baked into a plugin when it is compiled.
pub const RUSTC_VERSION: &CStr = c_str(concat!(env!("BOOT_RUSTC_VERSION"), "\0").as_bytes());
/// Hash of the sdk sources, compiler, profile and features, baked into a plugin when it is compiled.
pub const BUILD_ID: &CStr = c_str(concat!(env!("BOOT_SDK_BUILD_ID"), "\0").as_bytes());
/// Enabled sdk features (comma separated), baked into a plugin when it is compiled.
pub const FEATURES: &CStr = c_str(concat!(env!("BOOT_SDK_FEATURES"), "\0").as_bytes());

/// The exported declaration of a plugin. Its header is `repr(C)` and made of C strings, so the host can
/// read it even from a plugin built by another compiler.
#[repr(C)]
pub struct PluginDeclaration {
    /// [`DECLARATION_LAYOUT`] of the sdk the plugin was built against.
    pub layout: u32,
    /// Plugin name (NUL-terminated).
    pub name: *const c_char,
    /// [`SDK_VERSION`] the plugin was built against.
    pub sdk_version: *const c_char,
    /// [`RUSTC_VERSION`] the plugin was built with.
    pub rustc_version: *const c_char,
    /// [`BUILD_ID`] of the sdk the plugin was built against.
    pub build_id: *const c_char,
    /// [`FEATURES`] of the sdk the plugin was built against.
    pub features: *const c_char,
}

// SAFETY: the pointers refer to immutable 'static C strings.
unsafe impl Sync for PluginDeclaration {}

/// The identity of the loaded sdk, to compare with a plugin's declaration. These functions live in
/// `libboot_sdk.so`, so they report the library actually loaded, not the one a plugin was compiled against.
#[inline(never)]
pub fn host_identity() -> Identity {
    Identity {
        sdk_version: SDK_VERSION.to_string_lossy().into_owned(),
        rustc_version: RUSTC_VERSION.to_string_lossy().into_owned(),
        build_id: BUILD_ID.to_string_lossy().into_owned(),
        features: FEATURES.to_string_lossy().into_owned(),
    }
}

/// Versions and build id on one side of the plugin boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Sdk crate version.
    pub sdk_version: String,
    /// Compiler version.
    pub rustc_version: String,
    /// Sdk build id.
    pub build_id: String,
    /// Sdk features.
    pub features: String,
}

impl PluginDeclaration {
    /// Reads the identity a plugin was built with.
    ///
    /// # Safety
    /// The pointers must be valid NUL-terminated strings, as [`declare_plugin!`](crate::declare_plugin) makes them.
    pub unsafe fn identity(&self) -> Identity {
        let s = |p: *const c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        Identity {
            sdk_version: s(self.sdk_version),
            rustc_version: s(self.rustc_version),
            build_id: s(self.build_id),
            features: s(self.features),
        }
    }

    /// Plugin name.
    ///
    /// # Safety
    /// As for [`PluginDeclaration::identity`].
    pub unsafe fn plugin_name(&self) -> String {
        unsafe { CStr::from_ptr(self.name) }.to_string_lossy().into_owned()
    }
}

/// Which of the five traits a registration provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// [`crate::Teacher`] via [`crate::TeacherConfig`].
    Teacher,
    /// [`crate::Student`] via [`crate::StudentConfig`].
    Student,
    /// [`crate::NoiseSchedule`] via [`crate::ScheduleConfig`].
    Schedule,
    /// [`crate::Solver`] via [`crate::SolverConfig`].
    Solver,
    /// [`crate::Guidance`] via [`crate::GuidanceConfig`].
    Guidance,
}

impl Component {
    /// The config section that selects this component (`[solver]`, ...).
    pub fn section(self) -> &'static str {
        match self {
            Component::Teacher => "teacher",
            Component::Student => "student",
            Component::Schedule => "schedule",
            Component::Solver => "solver",
            Component::Guidance => "guidance",
        }
    }
}

/// One component kind, as [`register!`](crate::register) submits it.
#[derive(Debug)]
pub struct Kind {
    /// Which trait it provides.
    pub component: Component,
    /// The `kind = "..."` name that selects it (the same literal typetag registers).
    pub kind: &'static str,
    /// One line on what it is.
    pub about: &'static str,
}
inventory::collect!(Kind);

/// Every kind registered by the code loaded so far (the host's built-ins and the plugins loaded).
pub fn registered_kinds() -> impl Iterator<Item = &'static Kind> {
    inventory::iter::<Kind>.into_iter()
}

/// One named component and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Which trait it provides.
    pub component: Component,
    /// The `kind = "..."` name that selects it.
    pub kind: String,
    /// One line on what it is.
    pub about: String,
    /// `core` for built-ins, else the plugin name.
    pub provider: String,
}

impl Registration {
    /// The registration of `kind`, provided by `provider`.
    pub fn of(kind: &Kind, provider: &str) -> Self {
        Self { component: kind.component, kind: kind.kind.into(), about: kind.about.into(), provider: provider.into() }
    }
}

/// Registers a component kind, once: the typetag name that `kind = "..."` selects and the entry that
/// `boot-host plugins` lists are the same literal.
///
/// ```ignore
/// boot_sdk::register! {
///     teacher "my-teacher" => "what it is, in one line";
///     impl TeacherConfig for MyTeacherConfig {
///         fn build(&self, ctx: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> { .. }
///     }
/// }
/// ```
/// The component is one of `teacher`, `student`, `schedule`, `solver`, `guidance`; the crate using the
/// macro depends on `typetag` (the attribute expands to paths into it).
#[macro_export]
macro_rules! register {
    ($component:ident $kind:literal => $about:literal; impl $($item:tt)*) => {
        #[$crate::typetag::deserialize(name = $kind)]
        impl $($item)*
        $crate::inventory::submit! {
            $crate::plugin::Kind { component: $crate::register!(@component $component), kind: $kind, about: $about }
        }
    };
    (@component teacher) => { $crate::plugin::Component::Teacher };
    (@component student) => { $crate::plugin::Component::Student };
    (@component schedule) => { $crate::plugin::Component::Schedule };
    (@component solver) => { $crate::plugin::Component::Solver };
    (@component guidance) => { $crate::plugin::Component::Guidance };
}

/// Exports the plugin declaration: `declare_plugin!("analytic")`. The plugin's components are the kinds
/// its [`register!`](crate::register) calls submit.
#[macro_export]
macro_rules! declare_plugin {
    ($name:expr) => {
        #[no_mangle]
        #[used]
        pub static BOOT_PLUGIN_DECLARATION: $crate::plugin::PluginDeclaration = $crate::plugin::PluginDeclaration {
            layout: $crate::plugin::DECLARATION_LAYOUT,
            name: concat!($name, "\0").as_ptr() as *const ::std::ffi::c_char,
            sdk_version: $crate::plugin::SDK_VERSION.as_ptr(),
            rustc_version: $crate::plugin::RUSTC_VERSION.as_ptr(),
            build_id: $crate::plugin::BUILD_ID.as_ptr(),
            features: $crate::plugin::FEATURES.as_ptr(),
        };
    };
}
