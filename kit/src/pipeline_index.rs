//! A diffusers pipeline folder's `model_index.json`: each component the teacher loads is named with a class it
//! can load (`[library, class]`), and components of pipelines the teacher does not take are refused. Other
//! entries (optional components such as IF's `safety_checker`, `feature_extractor`, `watermarker`, null or
//! present) are ignored. Errors are one line naming the file and the component.

use std::path::Path;

use boot_sdk::serde_json::{self, Value};
use boot_sdk::InputError;

/// What a family's teacher reads from `model_index.json`.
#[derive(Debug, Clone, Copy)]
pub struct PipelineIndex<'a> {
    /// The pipeline, for messages ("a Stable Diffusion pipeline").
    pub pipeline: &'a str,
    /// Each required component and the classes accepted for it.
    pub components: &'a [(&'a str, &'a [&'a str])],
    /// Components that must be absent or null, with the reason.
    pub refused: &'a [(&'a str, &'a str)],
}

impl PipelineIndex<'_> {
    /// Checks `path` (a `model_index.json`).
    pub fn check(&self, path: &Path) -> boot_sdk::Result<()> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| InputError::new(&shown, "", format!("cannot read: {e} (a diffusers pipeline folder has one)")))?;
        let index: Value = serde_json::from_str(&text).map_err(|e| InputError::new(&shown, "", format!("not JSON: {e}")))?;
        let names: Vec<&str> = self.components.iter().map(|(n, _)| *n).collect();
        for (name, classes) in self.components {
            let class = match index.get(*name) {
                Some(Value::Array(v)) if v.len() == 2 => v[1].as_str().unwrap_or_default().to_string(),
                Some(other) => return Err(InputError::new(&shown, *name, format!("{other}: expected [library, class]")).into()),
                None => return Err(InputError::new(&shown, *name, format!("missing: {} needs {}", self.pipeline, names.join(", "))).into()),
            };
            if !classes.contains(&class.as_str()) {
                return Err(InputError::new(&shown, *name, format!("class \"{class}\" is not supported (expected {})", classes.join(" or "))).into());
            }
        }
        for (name, why) in self.refused {
            if index.get(*name).is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| a.iter().any(|x| !x.is_null()))) {
                return Err(InputError::new(&shown, *name, *why).into());
            }
        }
        Ok(())
    }
}
