//! The plugin kit: what every teacher family would otherwise write again (docs/architecture.md, "where a
//! new family goes"). An ordinary crate over the sdk's one copy of candle; plugins link it statically.
//!
//! | file | what |
//! |---|---|
//! | [`teacher_init`] | the BOOT student initialised from the teacher: [`Backbone`] (what a family provides), [`TeacherInitStudent`] (copies the weights, adds zero-initialised target-time and `w` embeddings, fixes the teacher's time at the run's `t_max`) |
//! | [`discrete`] | [`DiscreteDenoiser`]: a network trained on a beta schedule seen as a signal predictor (timestep of `lambda`, eps / v / x0 prediction, learned-variance channels split off) |
//! | [`scheduler`] | [`SchedulerConfig`]: a diffusers `scheduler/scheduler_config.json` read as the training schedule and prediction target |
//! | [`labels`] | [`Labels`]: the class labels a class-conditional teacher draws for its context dataset (`teacher.labels`) |
//! | [`prompts`] | [`PromptDataset`]: a prompts file ([`Prompts`]) as the context dataset, its text embeddings ([`PromptEmbeddings`]) computed once by a [`PromptEncoder`]; [`text_states`] of a batch |
//! | [`pipeline_index`] | [`PipelineIndex`]: a diffusers pipeline's `model_index.json` checked for the components (and classes) a teacher loads |
//! | [`weights`] | a component folder's weight files: one safetensors file or shards, with a variant |
//! | [`text_unet`] | [`TextUNetTeacher`]: a text-conditional `UNet2DConditionModel` teacher (SD, IF stage I: loading, denoising, its prompt dataset, an optional latent decoder) and its student's [`TextUNetBackbone`] |
//! | [`testing`] | a test kit: building a student as the host does, "a fresh student equals the teacher at `t_max`", parity errors |

pub mod discrete;
pub mod labels;
pub mod pipeline_index;
pub mod prompts;
pub mod scheduler;
pub mod teacher_init;
pub mod testing;
pub mod text_unet;
pub mod weights;

pub use discrete::{DiscreteDenoiser, Prediction};
pub use labels::{LabelMode, Labels};
pub use pipeline_index::PipelineIndex;
pub use prompts::{text_states, PromptDataset, PromptEmbeddings, PromptEncoder, Prompts};
pub use scheduler::SchedulerConfig;
pub use teacher_init::{teacher_of, Backbone, TeacherInit, TeacherInitStudent};
pub use text_unet::{LatentDecoder, TextUNetBackbone, TextUNetTeacher};
