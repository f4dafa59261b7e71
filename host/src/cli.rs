//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Data-free distillation of diffusion models into one-step generators (BOOT).
#[derive(Debug, Parser)]
#[command(name = "boot-host", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Train (the default command).
    #[command(flatten)]
    pub train: Option<TrainArgs>,
    /// A subcommand other than training.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train the student (same as giving `--config` alone).
    Train(TrainArgs),
    /// Draw samples from the student or a teacher sampler; writes safetensors and a PNG grid.
    Sample(SampleArgs),
    /// Write eval.json: metrics of teacher DDIM-N and the student on the same noise.
    Eval(EvalArgs),
    /// Compute a real dataset's reference statistics for the Fréchet distance (`[eval] fd_stats`).
    FdStats(FdStatsArgs),
    /// List built-in and plugin-provided components.
    Plugins(PluginsArgs),
    /// List the tensors of a checkpoint (safetensors or PyTorch .pt/.pth).
    Inspect(InspectArgs),
}

/// `boot-host [train] --config run.toml [--resume | --overwrite]`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run config (TOML). `BOOT__SECTION__KEY` environment variables override its values.
    #[arg(long)]
    pub config: PathBuf,
    /// Continue from the newest checkpoint in `run.out_dir`.
    #[arg(long)]
    pub resume: bool,
    /// Start afresh in a `run.out_dir` that holds an earlier run, deleting its checkpoints, metrics log,
    /// grids and eval.json (without it such a start is refused).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
}

/// `boot-host sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The run config.
    #[arg(long)]
    pub config: PathBuf,
    /// `student`, `ddim-N` or `signal-ode-N`.
    #[arg(long, default_value = "student")]
    pub sampler: String,
    /// Number of samples (ignored with --noise, which sets it); with --prompt or --prompts, per prompt.
    #[arg(long, default_value_t = 16)]
    pub count: usize,
    /// A text prompt (text-to-image teachers; repeatable): `count` samples of each, one PNG per sample too.
    #[arg(long, conflicts_with = "prompts")]
    pub prompt: Vec<String>,
    /// A prompts file (`.txt`, one per line, or `.jsonl` with a `prompt` field), as --prompt for each line.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Noise file: safetensors with one tensor [N, C, H, W] (named `noise` if there are several).
    #[arg(long)]
    pub noise: Option<PathBuf>,
    /// Checkpoint to load (default: the newest in `run.out_dir`).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Use the live student instead of its EMA.
    #[arg(long)]
    pub live: bool,
    /// Output path (`.safetensors`; a `.png` grid is written beside it). Default: `run.out_dir/samples/<sampler>.safetensors`.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `boot-host eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run config.
    #[arg(long)]
    pub config: PathBuf,
    /// Checkpoint to load (default: the newest in `run.out_dir`).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Evaluate the live student instead of its EMA.
    #[arg(long)]
    pub live: bool,
    /// Only the teacher's samplers (a baseline before training; no checkpoint needed).
    #[arg(long, conflicts_with_all = ["checkpoint", "live"])]
    pub teacher_only: bool,
    /// Where to write the report (default: `run.out_dir/eval.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `boot-host fd-stats`.
#[derive(Debug, Args)]
pub struct FdStatsArgs {
    /// The run config (its teacher's pixel size, `eval.fd_network`, `eval.batch_size`, `run.device`).
    #[arg(long)]
    pub config: PathBuf,
    /// The real images: uint8 [N, H, W] or [N, H, W, C] in a .npz or .safetensors file.
    #[arg(long)]
    pub data: PathBuf,
    /// The array to read (needed when the file holds several, e.g. `x_train`).
    #[arg(long)]
    pub key: Option<String>,
    /// Output statistics file (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

/// `boot-host plugins`.
#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Load the plugins this config names (default: every plugin beside the binary).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `boot-host inspect FILE`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A safetensors or PyTorch checkpoint file.
    pub file: PathBuf,
}
