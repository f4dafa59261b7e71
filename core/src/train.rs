//! The training driver: Algorithm 1 in a loop, with AdamW, EMA, checkpoints, the metrics log, sample grids
//! and a progress bar.

use std::path::Path;
use std::time::Instant;

use boot_sdk::rng::{normal, sample_seeds, uniform, Stream};
use boot_sdk::serde_json::json;

use crate::boot::{boot_loss, BootBatch, BootOptions, BootParts};
use crate::checkpoint::{self, Checkpoint};
use crate::components::Components;
use crate::config::RunConfig;
use crate::ema::Ema;
use crate::generate::{generate, sample_inputs};
use crate::grid::save_grid;
use crate::metrics_log::MetricsLog;
use crate::optim::{AdamW, AdamWConfig};
use crate::samplers::SamplerKind;

/// What a finished training run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Step the run started from (non-zero when resumed).
    pub start_step: u64,
    /// Completed steps.
    pub steps: u64,
    /// Total loss of each step run in this call.
    pub losses: Vec<f32>,
}

/// Algorithm 1's options from the config.
pub fn boot_options(cfg: &RunConfig) -> BootOptions {
    let t = &cfg.train;
    BootOptions {
        delta: t.delta,
        t_min: t.t_min,
        t_max: t.t_max,
        weighting: t.loss_weighting,
        boundary_every: t.boundary_every,
        boundary_weight: t.boundary_weight,
    }
}

fn check(cfg: &RunConfig) -> boot_sdk::Result<()> {
    let t = &cfg.train;
    let bad = |key: &str, msg: &str| Err(boot_sdk::InputError::config(format!("train.{key}"), msg.to_string()).into());
    if !(0.0 <= t.t_min && t.t_min < t.t_max && t.t_max <= 1.0) {
        return bad("t_max", "need 0 <= t_min < t_max <= 1");
    }
    if !(t.delta > 0.0) {
        return bad("delta", "must be positive");
    }
    if t.batch_size == 0 {
        return bad("batch_size", "must be positive");
    }
    if !(0.0..1.0).contains(&t.ema_decay) {
        return bad("ema_decay", "must lie in [0, 1)");
    }
    Ok(())
}

/// Removes the outputs of an earlier run in `out_dir` (checkpoints, log, grids, eval) before a fresh start.
fn clear_outputs(out_dir: &Path) -> boot_sdk::Result<()> {
    for sub in ["checkpoints", "grids"] {
        let p = out_dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p)?;
        }
    }
    for f in ["metrics.jsonl", "eval.json"] {
        let p = out_dir.join(f);
        if p.exists() {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// Trains the student; with `resume`, continues from the newest checkpoint in `run.out_dir`.
pub fn train(cfg: &RunConfig, c: &Components, resume: bool) -> boot_sdk::Result<TrainSummary> {
    check(cfg)?;
    let t = &cfg.train;
    let out = cfg.run.out_dir.as_path();
    let opts = boot_options(cfg);
    let mut optim = AdamW::new(
        &c.student.vars,
        AdamWConfig {
            lr: t.lr,
            beta1: t.adam_betas[0],
            beta2: t.adam_betas[1],
            eps: t.adam_eps,
            weight_decay: t.weight_decay,
            grad_clip: (t.grad_clip > 0.0).then_some(t.grad_clip),
        },
    )?;
    let ema = Ema::new(&c.student.vars, &c.ema.vars, t.ema_decay)?;
    let log = MetricsLog::new(out);
    let mut start = 0;
    match (resume, checkpoint::latest(out)) {
        (true, Some(path)) => {
            let ck = Checkpoint::read(&path, &c.device)?;
            if ck.seed()? != cfg.run.seed {
                let msg = format!("checkpoint {} was written with seed {}, the config has {}", path.display(), ck.seed()?, cfg.run.seed);
                return Err(boot_sdk::InputError::config("run.seed", msg).into());
            }
            ck.restore_vars("student", &c.student.vars)?;
            ck.restore_vars("ema", &c.ema.vars)?;
            ck.restore_optimizer(&mut optim)?;
            start = ck.step()?;
            log.truncate_after(start)?;
            tracing::info!(step = start, checkpoint = %path.display(), "resuming");
        }
        (true, None) => tracing::warn!(out_dir = %out.display(), "--resume: no checkpoint found, starting from scratch"),
        (false, _) => clear_outputs(out)?,
    }
    std::fs::create_dir_all(out)?;
    let parts = BootParts {
        student: c.student.net.as_ref(),
        teacher: c.teacher.as_ref(),
        guidance: c.guidance.as_ref(),
        solver: c.solver.as_ref(),
        schedule: c.schedule.as_ref(),
    };
    let bar = progress_bar(t.progress, start, t.steps);
    let shape = c.sample_shape();
    let seed = cfg.run.seed;
    let began = Instant::now();
    let mut losses = Vec::new();
    for step in start..t.steps {
        let b = t.batch_size;
        let batch = BootBatch {
            eps: normal(&sample_seeds(seed, Stream::Noise, step, 0, b), &shape, &c.device)?,
            u: uniform(&sample_seeds(seed, Stream::Time, step, 0, b), 0.0, 1.0),
            cond: c.teacher.sample_cond(&sample_seeds(seed, Stream::Cond, step, 0, b))?,
            w: c.guidance.sample_w(&sample_seeds(seed, Stream::Guidance, step, 0, b)),
        };
        let loss = boot_loss(&opts, &parts, &batch, step)?;
        let total = loss.total.to_dtype(boot_sdk::candle::DType::F32)?.to_scalar::<f32>()?;
        anyhow::ensure!(total.is_finite(), "loss became {total} at step {step}; lower train.lr or enable train.grad_clip");
        let grads = loss.total.backward()?;
        let grad_norm = optim.step(&grads)?;
        ema.update()?;
        losses.push(total);
        let done = step + 1;
        if t.log_every > 0 && (done % t.log_every == 0 || done == t.steps) {
            log.append(&json!({
                "step": done, "loss": total, "loss_bootstrap": loss.bootstrap, "loss_boundary": loss.boundary,
                "t_mean": loss.t_mean, "grad_norm": grad_norm, "lr": t.lr, "seconds": began.elapsed().as_secs_f64(),
            }))?;
        }
        if (t.grid_every > 0 && done % t.grid_every == 0) || done == t.steps {
            write_grid(cfg, c, done)?;
        }
        if (t.checkpoint_every > 0 && done % t.checkpoint_every == 0) || done == t.steps {
            checkpoint::save(out, done, seed, &c.student.vars, &c.ema.vars, &optim, t.keep_checkpoints)?;
        }
        bar.set_position(done);
        bar.set_message(format!("loss {total:.4e}"));
    }
    bar.finish_and_clear();
    Ok(TrainSummary { start_step: start, steps: t.steps, losses })
}

/// Writes `grids/step-N.png`: EMA-student samples on the fixed evaluation inputs, decoded to pixels by the
/// teacher ([`boot_sdk::Teacher::decode`]).
pub fn write_grid(cfg: &RunConfig, c: &Components, step: u64) -> boot_sdk::Result<()> {
    let n = cfg.train.grid_samples.max(1);
    let inputs = sample_inputs(c, cfg.run.seed, 0, n, None)?;
    let samples = generate(c, c.ema.net.as_ref(), SamplerKind::Student, &inputs, cfg.train.t_max, cfg.train.t_min)?;
    let cols = (n as f64).sqrt().ceil() as usize;
    save_grid(&cfg.run.out_dir.join("grids").join(format!("step-{step:08}.png")), &c.teacher.decode(&samples)?, cols)
}

fn progress_bar(enabled: bool, start: u64, steps: u64) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(steps);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {per_sec} eta {eta} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_position(start);
    bar
}
