//! Grids show what the teacher's `decode` hook returns (a latent teacher's samples are latents): a test
//! teacher that decodes a 1x4x4 sample into a 3x8x8 image gives an 8x8-cell grid.

use std::path::Path;
use std::sync::Arc;

use boot_core::components::{Components, RunContext};
use boot_core::config::RunConfig;
use boot_sdk::candle::Tensor;
use boot_sdk::candle_nn::Init;
use boot_sdk::{Cond, Student, StudentConfig, StudentContext, Teacher, TeacherConfig, TeacherContext, Times};
use serde::Deserialize;

/// Data at zero; "decodes" a `[B, 1, 4, 4]` sample to `[B, 3, 8, 8]` pixels (nearest 2x, three channels).
#[derive(Debug)]
struct LatentTeacher;

impl Teacher for LatentTeacher {
    fn sample_shape(&self) -> [usize; 3] {
        [1, 4, 4]
    }
    fn denoise(&self, x_t: &Tensor, _: &Times, _: &Cond) -> boot_sdk::Result<Tensor> {
        Ok(x_t.zeros_like()?)
    }
    fn decode(&self, x0: &Tensor) -> boot_sdk::Result<Tensor> {
        let up = x0.upsample_nearest2d(8, 8)?;
        Ok(Tensor::cat(&[&up, &up, &up], 1)?)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[derive(Debug, Deserialize)]
struct LatentTeacherConfig {}

boot_sdk::register! {
    teacher "test-latent" => "a teacher whose samples decode to larger RGB images";
    impl TeacherConfig for LatentTeacherConfig {
        fn build(&self, _: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> {
            Ok(Arc::new(LatentTeacher))
        }
    }
}

/// `y = scale * eps` with one trainable scale.
struct ScaleStudent(Tensor);

impl Student for ScaleStudent {
    fn forward(&self, eps: &Tensor, _: &Times, _: &Cond, _: Option<&[f64]>) -> boot_sdk::Result<Tensor> {
        Ok(eps.broadcast_mul(&self.0)?)
    }
}

#[derive(Debug, Deserialize)]
struct ScaleStudentConfig {}

boot_sdk::register! {
    student "test-scale" => "y = scale * eps";
    impl StudentConfig for ScaleStudentConfig {
        fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
            Ok(Box::new(ScaleStudent(ctx.vb.get_with_hints(1, "scale", Init::Const(0.5))?)))
        }
    }
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    // PNG: 8-byte signature, IHDR length and type, then width and height (big-endian).
    (u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap()))
}

#[test]
fn grids_show_the_decoded_samples() {
    let dir = tempfile::tempdir().unwrap();
    let cfg: RunConfig = boot_sdk::serde_json::from_value(boot_sdk::serde_json::json!({
        "run": { "out_dir": dir.path() },
        "teacher": { "kind": "test-latent" },
        "student": { "kind": "test-scale" },
        "train": { "grid_samples": 4 },
    }))
    .unwrap();
    let ctx = RunContext { config_name: "run.toml".into(), base_dir: dir.path().to_path_buf() };
    let c = Components::build(&cfg, &ctx).unwrap();
    boot_core::train::write_grid(&cfg, &c, 7).unwrap();
    // 2 x 2 cells of the decoded 8 x 8 images, 1-pixel borders: 2 * (8 + 1) + 1 = 19 (latents would give 11).
    assert_eq!(png_size(&dir.path().join("grids").join("step-00000007.png")), (19, 19));
}
