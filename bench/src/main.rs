//! `boot-bench`: times core's BOOT training step (Algorithm 1: `boot_core::boot::boot_loss`, backward,
//! AdamW, EMA, with per-sample noise) and the samplers (one-step student, teacher DDIM-N) on the paper's
//! configurations, with random weights loaded through the plugins like a user's checkpoint. Writes one JSON.
//!
//! ```sh
//! boot-bench --device cuda:0 --config imagenet64 --batch 1024 --min-batch 64 --dtype bf16 \
//!     --steps 20 --warmup 8 --peak-tflops 790 --out bench/results/imagenet64.json
//! boot-bench --device cpu --config tiny --steps 4 --warmup 1      # CPU check, seconds
//! ```
//! `bench/README.md` says what is measured and how FLOPs are counted.

mod arch;
mod memory;
mod micro;
mod presets;
mod weights;

use std::path::PathBuf;
use std::time::Instant;

use boot_core::boot::{boot_loss, BootBatch, BootOptions, BootParts};
use boot_core::components::Components;
use boot_core::ema::Ema;
use boot_core::generate::sample_inputs;
use boot_core::optim::AdamW;
use boot_core::precision::Precision;
use boot_core::samplers::{student_sample, TeacherSampling};
use boot_core::train::{adamw_config, boot_options};
use boot_sdk::candle::{DType, Device};
use boot_sdk::rng::{normal, sample_seeds, uniform, Stream};
use clap::Parser;
use serde_json::{json, Value};

use crate::memory::{mib, MemWatch};
use crate::presets::Preset;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DTypeArg {
    F32,
    Bf16,
    /// The bf16 path's plumbing in f16, for CPU checks (candle's CPU backend has no bf16 matmul).
    F16,
}

impl DTypeArg {
    fn name(self) -> &'static str {
        match self {
            DTypeArg::F32 => "f32",
            DTypeArg::Bf16 => "bf16",
            DTypeArg::F16 => "f16",
        }
    }

    fn dtype(self) -> DType {
        self.precision().half().unwrap_or(DType::F32)
    }

    fn precision(self) -> Precision {
        match self {
            DTypeArg::F32 => Precision::F32,
            DTypeArg::Bf16 => Precision::Bf16,
            DTypeArg::F16 => Precision::F16,
        }
    }
}

/// Benchmark of the BOOT training step and samplers on the paper's configurations (random weights).
#[derive(Debug, Parser)]
#[command(name = "boot-bench", version)]
struct Cli {
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// `imagenet64` (examples/imagenet64.toml: Table 3 ADM, CFG), `cifar10` (examples/edm-cifar10.toml: EDM
    /// DDPM++), `tiny` (examples/imagenet-tiny.toml), `tiny-edm` (examples/edm-tiny.toml).
    #[arg(long)]
    config: String,
    /// Training batch (default: the example's `train.batch_size`, the paper's: imagenet64 1024, cifar10 128).
    #[arg(long)]
    batch: Option<usize>,
    /// On out-of-memory, halve the batch down to this size (default: no retry).
    #[arg(long)]
    min_batch: Option<usize>,
    /// Timed training steps (rounded up to a multiple of the boundary-loss period, 4).
    #[arg(long, default_value_t = 20)]
    steps: u64,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 8)]
    warmup: u64,
    /// Compute dtype: `f32`, or `bf16` (teacher in bf16; student bf16 compute, f32 master weights, AdamW and EMA).
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DTypeArg,
    /// Let f32 matrix products use TF32 (cuBLAS; CUDA only).
    #[arg(long)]
    tf32: bool,
    /// Peak TFLOP/s of the device for MFU (e.g. the bf16 8192^3 matmul rate `bench/torch/boot_step.py --peak` measured).
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Batch of the inference timings (default: the training batch reached).
    #[arg(long)]
    infer_batch: Option<usize>,
    /// Steps of the teacher's DDIM sampler.
    #[arg(long, default_value_t = 50)]
    ddim_steps: usize,
    /// Timed repetitions of the one-step student.
    #[arg(long, default_value_t = 5)]
    infer_reps: usize,
    /// Skip the inference timings.
    #[arg(long)]
    no_infer: bool,
    /// Wall-clock budget in seconds for everything after setup (0: none): warm-up and timed windows stop
    /// early (keeping at least one window), DDIM is timed over fewer steps and extrapolated.
    #[arg(long, default_value_t = 0.0)]
    time_budget: f64,
    /// Run seed (weights, noise, times, labels, w).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output JSON (default: bench/results/<config>-<dtype>-<device>.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Extra folders to search for the plugin library.
    #[arg(long)]
    plugin_dir: Vec<PathBuf>,
    /// Free text stored in the JSON (e.g. the card or the build).
    #[arg(long)]
    label: Option<String>,
    /// Print the configuration's parameter counts and FLOPs (no device work) and exit.
    #[arg(long)]
    describe: bool,
    /// Write the random checkpoint, the inputs of training step 0 at `--batch` and core's loss on them into
    /// this folder, and exit (no timing): `bench/torch/boot_step.py --check DIR` recomputes the loss there.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// Time the UNets' building blocks one at a time (bench/src/micro.rs) into `--out` and exit.
    #[arg(long)]
    micro: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // candle errors carry a backtrace; the first lines say what went wrong.
            let text = format!("{e:#}");
            let short = text.split("\n   0:").next().unwrap_or(&text);
            eprintln!("boot-bench: {short}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn sync(device: &Device) -> boot_sdk::Result<()> {
    Ok(device.synchronize()?)
}

/// `BOOT_BENCH_PROFILE=1`: the first timed window is bracketed by `cuProfilerStart` / `cuProfilerStop`, so
/// `ncu --profile-from-start off` (bench/profile_kernels.sh) records exactly its kernels; `ddim1`: one DDIM
/// step of the inference timing instead.
fn profiling() -> bool {
    std::env::var("BOOT_BENCH_PROFILE").is_ok_and(|v| v == "1")
}

/// Starts (`on`) or stops the CUDA profiler's collection after a device sync; nothing on the CPU.
#[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
fn profiler(device: &Device, on: bool) -> boot_sdk::Result<()> {
    sync(device)?;
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        use boot_sdk::candle::cuda_backend::cudarc::driver::{profiler_start, profiler_stop};
        let r = if on { profiler_start() } else { profiler_stop() };
        r.map_err(|e| boot_sdk::candle::Error::Msg(format!("CUDA profiler: {e:?}")))?;
    }
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

fn is_oom(e: &anyhow::Error) -> bool {
    let s = format!("{e:#}").to_lowercase();
    s.contains("out of memory") || s.contains("out_of_memory") || s.contains("alloc_failed")
}

fn device_name(device: &Device) -> String {
    #[cfg(feature = "cuda")]
    if let Ok(d) = device.as_cuda_device() {
        if let Ok(n) = d.cuda_stream().context().name() {
            return n;
        }
    }
    if device.is_cpu() {
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
            .unwrap_or_else(|| "unknown CPU".into());
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        return format!("{model} ({threads} threads)");
    }
    "unknown".into()
}

/// The run's components, built by core from the preset's config (as boot-host builds them), and the loop's
/// optimiser and EMA.
struct Built {
    c: Components,
    opts: BootOptions,
    optim: AdamW,
    ema: Ema,
    net: arch::Net,
    params_student: usize,
    w_conditioned: bool,
}

fn build(p: &Preset) -> boot_sdk::Result<Built> {
    let c = Components::build(&p.run, &p.ctx)?;
    let params_student = c.student.vars.all_vars().iter().map(|v| v.elem_count()).sum();
    let optim = AdamW::new(&c.student.vars, adamw_config(&p.run))?;
    let ema = Ema::new(&c.student.vars, &c.ema.vars, p.run.train.ema_decay)?;
    let w_conditioned = c.guidance.w_conditioned();
    Ok(Built { c, opts: boot_options(&p.run), optim, ema, net: p.arch.net(), params_student, w_conditioned })
}

/// Wall-clock seconds of one step's phases (synchronised at each boundary).
#[derive(Debug, Clone, Copy, Default)]
struct Phases {
    inputs: f64,
    loss: f64,
    backward: f64,
    adamw: f64,
    ema: f64,
}

impl Phases {
    fn total(&self) -> f64 {
        self.inputs + self.loss + self.backward + self.adamw + self.ema
    }
    fn add(&mut self, o: &Phases) {
        self.inputs += o.inputs;
        self.loss += o.loss;
        self.backward += o.backward;
        self.adamw += o.adamw;
        self.ema += o.ema;
    }
    fn json(&self, scale: f64) -> Value {
        json!({ "inputs": self.inputs * scale, "loss_forward": self.loss * scale, "backward": self.backward * scale,
                "adamw": self.adamw * scale, "ema": self.ema * scale })
    }
}

/// One training step exactly as `boot_core::train::train` runs it (without logging and checkpoints), with
/// a device synchronisation after each phase. core's step already synchronises inside `boot_loss` (loss
/// values), at the loss check, and in AdamW (the gradient norm), so the added ones cost little.
fn train_step(b: &mut Built, seed: u64, step: u64, batch: usize) -> boot_sdk::Result<(Phases, f32)> {
    let c = &b.c;
    let dev = &c.device;
    let shape = c.sample_shape();
    let t0 = Instant::now();
    let inputs = BootBatch {
        eps: normal(&sample_seeds(seed, Stream::Noise, step, 0, batch), &shape, dev)?,
        u: uniform(&sample_seeds(seed, Stream::Time, step, 0, batch), 0.0, 1.0),
        cond: c.teacher.sample_cond(&sample_seeds(seed, Stream::Cond, step, 0, batch))?,
        w: c.guidance.sample_w(&sample_seeds(seed, Stream::Guidance, step, 0, batch)),
    };
    sync(dev)?;
    let t1 = Instant::now();
    let parts = BootParts {
        student: c.student.net.as_ref(),
        teacher: c.teacher.as_ref(),
        guidance: c.guidance.as_ref(),
        solver: c.solver.as_ref(),
        schedule: c.schedule.as_ref(),
    };
    let loss = boot_loss(&b.opts, &parts, &inputs, step)?;
    let total = loss.total.to_dtype(DType::F32)?.to_scalar::<f32>()?;
    let t2 = Instant::now();
    let grads = loss.total.backward()?;
    sync(dev)?;
    let t3 = Instant::now();
    b.optim.step(&grads)?;
    sync(dev)?;
    let t4 = Instant::now();
    b.ema.update()?;
    sync(dev)?;
    let t5 = Instant::now();
    let s = |a: Instant, z: Instant| (z - a).as_secs_f64();
    Ok((Phases { inputs: s(t0, t1), loss: s(t1, t2), backward: s(t2, t3), adamw: s(t3, t4), ema: s(t4, t5) }, total))
}

/// The error text that marks a batch as too slow for the time budget.
const TOO_SLOW: &str = "boot-bench: a step at this batch is too slow for the time budget";

/// What one attempt at a batch size measured.
#[derive(Default)]
struct Measured {
    warmup: u64,
    first_step_s: Option<f64>,
    /// `(step index, seconds)` of every step after the warm-up that is not part of a window.
    steps: Vec<(u64, f64)>,
    /// Seconds per step of each timed window of k steps.
    windows: Vec<f64>,
    phase_sum: Phases,
    losses: Vec<f32>,
    stopped_early: bool,
    /// With [`TOO_SLOW`]: the batch whose steps fit the budget.
    smaller_batch: Option<usize>,
}

/// Warm-up (at least one step), then timed windows of k steps (each holds one boundary step). With a
/// budget: if three steps like the first would not fit in what is left of 75% of it, the attempt stops with
/// [`TOO_SLOW`] and the largest halved batch (not below `min_batch`) whose steps would fit; warm-up stops at
/// 30% of the budget; when a window no longer fits in 75%, one boundary step and one other step are timed
/// instead (enough for an estimate).
#[allow(clippy::too_many_arguments)]
fn measure(b: &mut Built, cli: &Cli, batch: usize, min_batch: usize, k: u64, timed_steps: u64, left: &dyn Fn(f64) -> f64, m: &mut Measured) -> boot_sdk::Result<()> {
    let device = b.c.device.clone();
    let mut step = 0u64;
    while m.warmup < cli.warmup.max(1) {
        let (ph, loss) = train_step(b, cli.seed, step, batch)?;
        m.losses.push(loss);
        step += 1;
        m.warmup += 1;
        if m.first_step_s.is_none() {
            let first = ph.total();
            m.first_step_s = Some(first);
            let rem = left(0.75);
            if 3.0 * first > rem && batch / 2 >= min_batch {
                let mut nb = batch / 2;
                while nb / 2 >= min_batch && 3.0 * first * nb as f64 / batch as f64 > rem {
                    nb /= 2;
                }
                m.smaller_batch = Some(nb);
                anyhow::bail!(TOO_SLOW);
            }
        }
        if left(0.3) < 0.0 {
            break;
        }
    }
    let mut last = m.first_step_s.unwrap_or(0.0);
    while (m.windows.len() as u64) * k < timed_steps {
        if left(0.75) < last * k as f64 {
            // A whole window would overrun the budget: time one boundary step (the step index jumps to the next
            // multiple of k; it only selects seeds and the boundary term) and then one other step.
            m.stopped_early = true;
            step = step.next_multiple_of(k);
            for _ in 0..2 {
                let (ph, loss) = train_step(b, cli.seed, step, batch)?;
                m.losses.push(loss);
                m.phase_sum.add(&ph);
                m.steps.push((step, ph.total()));
                step += 1;
                if left(0.95) < ph.total() {
                    break;
                }
            }
            break;
        }
        let profile = profiling() && m.windows.is_empty();
        if profile {
            profiler(&device, true)?;
        }
        sync(&device)?;
        let w0 = Instant::now();
        let mut ph_w = Phases::default();
        for _ in 0..k {
            let (ph, loss) = train_step(b, cli.seed, step, batch)?;
            ph_w.add(&ph);
            m.losses.push(loss);
            step += 1;
        }
        sync(&device)?;
        if profile {
            profiler(&device, false)?;
        }
        last = w0.elapsed().as_secs_f64() / k as f64;
        m.windows.push(last);
        m.phase_sum.add(&ph_w);
    }
    Ok(())
}

/// `--dump`: the inputs of step 0 (`inputs.safetensors`: eps, u, labels, w) and core's loss on them
/// (`loss.json`), next to the checkpoint.
fn dump_step(b: &Built, cli: &Cli, p: &Preset, dir: &std::path::Path) -> anyhow::Result<()> {
    let c = &b.c;
    let batch = p.run.train.batch_size;
    let seeds = |s: Stream| sample_seeds(cli.seed, s, 0, 0, batch);
    let inputs = BootBatch {
        eps: normal(&seeds(Stream::Noise), &c.sample_shape(), &c.device)?,
        u: uniform(&seeds(Stream::Time), 0.0, 1.0),
        cond: c.teacher.sample_cond(&seeds(Stream::Cond))?,
        w: c.guidance.sample_w(&seeds(Stream::Guidance)),
    };
    let parts = BootParts {
        student: c.student.net.as_ref(),
        teacher: c.teacher.as_ref(),
        guidance: c.guidance.as_ref(),
        solver: c.solver.as_ref(),
        schedule: c.schedule.as_ref(),
    };
    let loss = boot_loss(&b.opts, &parts, &inputs, 0)?;
    let total = loss.total.to_dtype(DType::F32)?.to_scalar::<f32>()?;
    let cpu = Device::Cpu;
    let mut t = std::collections::HashMap::new();
    t.insert("eps".to_string(), inputs.eps.to_device(&cpu)?);
    t.insert("u".to_string(), boot_sdk::candle::Tensor::new(inputs.u.as_slice(), &cpu)?);
    if let Some(labels) = &inputs.cond.class {
        let l: Vec<i64> = labels.iter().map(|l| l.map(i64::from).unwrap_or(-1)).collect();
        t.insert("labels".to_string(), boot_sdk::candle::Tensor::new(l.as_slice(), &cpu)?);
    }
    if let Some(w) = &inputs.w {
        t.insert("w".to_string(), boot_sdk::candle::Tensor::new(w.as_slice(), &cpu)?);
    }
    boot_sdk::io::save_safetensors(&dir.join("inputs.safetensors"), &t, None)?;
    let out = json!({
        "config": p.spec.name, "dtype": cli.dtype.name(), "batch": batch, "seed": cli.seed, "step": 0,
        "loss_total": total, "loss_bootstrap": loss.bootstrap, "loss_boundary": loss.boundary, "t_mean": loss.t_mean,
    });
    std::fs::write(dir.join("loss.json"), serde_json::to_string_pretty(&out)? + "\n")?;
    eprintln!("boot-bench: wrote {} (checkpoint, step-0 inputs, loss {total})", dir.display());
    Ok(())
}

/// Per-sample FLOPs of `k` consecutive steps (one boundary step among them), and their parts.
fn window_flops(f_s: f64, f_t: f64, guidance_passes: f64, k: f64) -> (f64, Value) {
    // Student: y_t forward, y_s forward + backward (3x), every k steps y_tmax forward + backward.
    let student = k * (1.0 + 3.0) * f_s + 3.0 * f_s;
    // Teacher: Heun's 2 guided evaluations per step, 1 more for the boundary term, each `guidance_passes`
    // network passes (CFG: conditional + null, batched).
    let teacher = guidance_passes * (2.0 * k + 1.0) * f_t;
    (student + teacher, json!({ "student_per_step": student / k, "teacher_per_step": teacher / k }))
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let spec = presets::spec(&cli.config).ok_or_else(|| anyhow::anyhow!("unknown --config `{}` (one of {})", cli.config, presets::NAMES.join(", ")))?;
    if cli.micro {
        let device = boot_core::device::parse_device(&cli.device)?;
        let rows = micro::run(&device, cli.dtype.dtype(), cli.steps.max(3) as usize)?;
        let out = cli.out.clone().unwrap_or_else(|| PathBuf::from("bench/results/micro.json"));
        let r = json!({ "device": device_name(&device), "dtype": cli.dtype.name(), "rows": rows });
        std::fs::write(&out, serde_json::to_string_pretty(&r)? + "\n")?;
        eprintln!("boot-bench: wrote {}", out.display());
        return Ok(());
    }
    // The checkpoint folder: the example's teacher paths point into it.
    let tmp = tempfile::tempdir()?;
    let dir = cli.dump.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let mut p = Preset::read(spec, &dir, &cli.plugin_dir)?;
    let paper_batch = p.run.train.batch_size;
    p.run.run.device = cli.device.clone();
    p.run.run.seed = cli.seed;
    p.run.run.dtype = cli.dtype.precision();
    p.run.run.out_dir = dir.join("run");
    if let Some(b) = cli.batch {
        p.run.train.batch_size = b;
    }
    if cli.describe {
        let net = p.arch.net();
        let (f_t, f_s) = (net.forward_flops(), net.forward_flops() + p.arch.student_extra_flops(p.classifier_free()));
        let g = if p.classifier_free() { 2.0 } else { 1.0 };
        let k = p.run.train.boundary_every.max(1) as f64;
        let (win, parts) = window_flops(f_s, f_t, g, k);
        let d = json!({
            "config": p.spec.name, "about": p.spec.about, "example": p.spec.example, "arch": p.arch, "teacher_values": net.numel(), "teacher_trainable": net.trainable(),
            "forward_gflop_per_sample": { "teacher": f_t / 1e9, "student": f_s / 1e9, "by_kind": net.flops.iter().map(|(k, v)| (k.to_string(), v / 1e9)).collect::<std::collections::BTreeMap<_, _>>() },
            "train_step_gflop_per_sample": win / k / 1e9, "train_step_parts_flop": parts,
            "paper_batch": paper_batch, "train_step_tflop_at_paper_batch": win / k * paper_batch as f64 / 1e12,
        });
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    if cli.tf32 {
        boot_sdk::candle::cuda::set_gemm_reduced_precision_f32(true);
    }
    let watch = MemWatch::start(&boot_core::device::parse_device(&cli.device)?);
    let baseline = watch.current();
    let t_ck = Instant::now();
    let values = weights::write_checkpoint(&p.arch, &dir, cli.seed)?;
    let checkpoint_s = t_ck.elapsed().as_secs_f64();
    let t_build = Instant::now();
    let mut b = build(&p)?;
    // Everything after this runs on the components' device (its stream).
    let device = b.c.device.clone();
    sync(&device)?;
    let build_s = t_build.elapsed().as_secs_f64();
    drop(tmp);
    if cli.dump.is_some() {
        return dump_step(&b, cli, &p, &dir);
    }
    let after_build = watch.current();
    anyhow::ensure!(
        b.c.sample_shape() == p.arch.sample_shape(),
        "the teacher's sample shape {:?} differs from the benchmarked architecture's {:?}",
        b.c.sample_shape(),
        p.arch.sample_shape()
    );
    eprintln!(
        "boot-bench: {} on {} ({}), {}: teacher {:.2}M values, student {:.2}M parameters; checkpoint {checkpoint_s:.1} s, build {build_s:.1} s",
        p.spec.name,
        cli.device,
        device_name(&device),
        cli.dtype.name(),
        values as f64 / 1e6,
        b.params_student as f64 / 1e6
    );

    // Budget: `time_budget` seconds from here; training gets up to 75% of it.
    let budget_start = Instant::now();
    let budget = (cli.time_budget > 0.0).then_some(cli.time_budget);
    let left = |frac: f64| budget.map(|t| t * frac - budget_start.elapsed().as_secs_f64()).unwrap_or(f64::INFINITY);

    let k = p.run.train.boundary_every.max(1);
    let timed_steps = cli.steps.max(1).div_ceil(k) * k;
    let mut batch = p.run.train.batch_size;
    let min_batch = cli.min_batch.unwrap_or(batch).min(batch).max(1);

    // CUDA: one step at a batch of 2 first, so kernel modules load (and JIT) here, not in the first measured step.
    let t_pre = Instant::now();
    if !device.is_cpu() {
        train_step(&mut b, cli.seed, u64::MAX - 1, 2.min(batch))?;
    }
    let prewarm_s = t_pre.elapsed().as_secs_f64();

    let mut tried = Vec::new();
    let mut run;
    watch.reset_peak();
    loop {
        tried.push(json!({ "batch": batch }));
        run = Measured::default();
        // A panic inside the engine (rather than an error) ends this attempt like an error does.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| measure(&mut b, cli, batch, min_batch, k, timed_steps, &left, &mut run)))
            .unwrap_or_else(|panic| {
                let msg = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                Err(anyhow::anyhow!("panic in a training step: {msg}"))
            });
        let step = run.steps.len() as u64 + run.warmup;
        let too_slow = matches!(&outcome, Err(e) if e.to_string() == TOO_SLOW);
        match outcome {
            Ok(()) => break,
            Err(e) if (too_slow || is_oom(&e)) && batch / 2 >= min_batch => {
                let next = run.smaller_batch.unwrap_or(batch / 2);
                let why = if too_slow { "too slow for the time budget" } else { "out of memory" };
                eprintln!("boot-bench: batch {batch}: {why} at step {step}; trying {next}");
                if let Some(t) = tried.last_mut() {
                    t[if too_slow { "too_slow_at_step" } else { "oom_at_step" }] = json!(step);
                    t["first_step_s"] = json!(run.first_step_s);
                }
                batch = next;
            }
            Err(e) => return Err(e.context(format!("training step at batch {batch}"))),
        }
    }
    let Measured { warmup: warmup_done, first_step_s, steps, windows, phase_sum, losses, stopped_early, .. } = run;
    let train_peak = watch.peak();
    // Headline: the median over windows of k steps; without a whole window (a budget cut), the mean of the
    // boundary and the other steps measured after the first, weighted 1 : k-1.
    let (step_s, timed, estimated) = if !windows.is_empty() {
        (median(&windows), windows.len() as u64 * k, false)
    } else {
        let later: Vec<&(u64, f64)> = steps.iter().collect();
        let pick = |boundary: bool| -> Vec<f64> { later.iter().filter(|(s, _)| (s % k == 0) == boundary).map(|(_, t)| *t).collect() };
        let mean = |v: Vec<f64>| if v.is_empty() { None } else { Some(v.iter().sum::<f64>() / v.len() as f64) };
        let (bnd, other) = (mean(pick(true)), mean(pick(false)));
        let all = steps.iter().map(|(_, t)| *t).collect::<Vec<_>>();
        let est = match (bnd, other) {
            (Some(b1), Some(o)) => (b1 + (k - 1) as f64 * o) / k as f64,
            _ if !all.is_empty() => all.iter().sum::<f64>() / all.len() as f64,
            // Only the first (boundary) step ran: an upper bound.
            _ => first_step_s.unwrap_or(f64::NAN),
        };
        (est, 0, true)
    };
    let steps_per_s = 1.0 / step_s;
    let f_t = b.net.forward_flops();
    let f_s = f_t + p.arch.student_extra_flops(b.w_conditioned);
    let g = if p.classifier_free() { 2.0 } else { 1.0 };
    let (win_flops, flop_parts) = window_flops(f_s, f_t, g, k as f64);
    let step_flops = batch as f64 * win_flops / k as f64;
    let achieved = step_flops / step_s / 1e12;
    let mfu = cli.peak_tflops.map(|pk| achieved / pk);
    eprintln!(
        "boot-bench: batch {batch}: {:.3} s/step ({}), {:.2} samples/s, {:.1} TFLOP/s{}, peak memory {:.0} MiB",
        step_s,
        if estimated { "estimated from single steps".to_string() } else { format!("median of {} windows of {k}", windows.len()) },
        steps_per_s * batch as f64,
        achieved,
        mfu.map(|m| format!(" (MFU {:.1}%)", 100.0 * m)).unwrap_or_default(),
        mib(train_peak)
    );

    let finite = losses.iter().all(|l| l.is_finite());
    let mut result = json!({
        "schema": "boot-bench/1",
        "engine": "boot",
        "engine_detail": "candle 0.11.1 through libboot_sdk.so; core's boot_loss + backward + AdamW + EMA",
        "label": cli.label,
        "device": { "spec": cli.device, "name": device_name(&device), "total_memory_mib": watch.total.map(mib) },
        "config": p.spec.name,
        "example": p.spec.example,
        "about": p.spec.about,
        "plugin": p.plugin.display().to_string(),
        "arch": p.arch,
        "train_settings": p.train_settings(),
        "guidance": p.guidance,
        "solver": p.solver,
        "dtype": cli.dtype.name(),
        "precision": match cli.dtype {
            DTypeArg::F32 => if cli.tf32 { "f32 weights and compute, TF32 matrix products".to_string() } else { "f32 weights and compute".to_string() },
            d => format!("teacher {0} weights and compute; student {0} compute with f32 master weights, AdamW and EMA; embeddings and loss f32", d.name()),
        },
        "tf32": cli.tf32,
        "seed": cli.seed,
        "params": { "teacher_values": values, "teacher_trainable": b.net.trainable(), "student": b.params_student },
        "batch": batch,
        "paper_batch": paper_batch,
        "batches_tried": tried,
        "warmup_steps": warmup_done,
        "prewarm_s": prewarm_s,
        "first_step_s": first_step_s,
        "timed_steps": timed,
        "steps_requested": timed_steps,
        "stopped_early_by_budget": stopped_early,
        "boundary_every": k,
        "train": {
            "step_s_median": step_s,
            "window_step_s": windows,
            "steps_per_s": steps_per_s,
            "samples_per_s": steps_per_s * batch as f64,
            "phases_mean_s": phase_sum.json(1.0 / (timed + steps.len() as u64).max(1) as f64),
            "estimated_from_single_steps": estimated,
            "single_steps_s": steps,
            "losses": losses,
            "losses_finite": finite,
        },
        "flops": {
            "counting": "conv 2*Cin*Cout*k^2*Hout*Wout, linear 2*in*out, attention 4*N^2*C (QK^T and AV); backward = 2x forward",
            "forward_per_sample_teacher": f_t,
            "forward_per_sample_student": f_s,
            "forward_by_kind": b.net.flops,
            "per_sample_step": win_flops / k as f64,
            "per_sample_step_parts": flop_parts,
            "per_step": step_flops,
            "achieved_tflops": achieved,
            "peak_tflops": cli.peak_tflops,
            "mfu": mfu,
        },
        "memory": {
            "method": watch.method,
            "baseline_mib": mib(baseline),
            "after_build_mib": mib(after_build),
            "train_peak_mib": mib(train_peak),
            "train_peak_above_baseline_mib": mib(train_peak.saturating_sub(baseline)),
            "total_mib": watch.total.map(mib),
        },
        "inference": if cli.no_infer { json!("skipped") } else { json!("pending") },
        "setup_s": { "checkpoint": checkpoint_s, "build": build_s },
        "wall_s": started.elapsed().as_secs_f64(),
    });
    let out = cli.out.clone().unwrap_or_else(|| {
        let dev = cli.device.replace(':', "");
        PathBuf::from(format!("bench/results/{}-{}-{dev}.json", p.spec.name, cli.dtype.name()))
    });
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // Written now and again after inference, so a run cut short keeps its training numbers.
    let write = |r: &Value| -> anyhow::Result<()> { Ok(std::fs::write(&out, serde_json::to_string_pretty(r)? + "\n")?) };
    write(&result)?;

    // Inference: the EMA student in one step, the teacher's DDIM-N with the run's guidance.
    if !cli.no_infer {
        let n = cli.infer_batch.unwrap_or(batch);
        let c = &b.c;
        watch.reset_peak();
        let inputs = sample_inputs(c, cli.seed, 0, n, None)?;
        let t_min = p.run.train.t_min;
        let run_student = || -> boot_sdk::Result<f64> {
            sync(&device)?;
            let t0 = Instant::now();
            let y = student_sample(c.ema.net.as_ref(), c.schedule.as_ref(), &inputs.eps, &inputs.cond, inputs.w.as_deref(), t_min)?;
            sync(&device)?;
            drop(y);
            Ok(t0.elapsed().as_secs_f64())
        };
        run_student()?;
        let mut reps = Vec::new();
        for _ in 0..cli.infer_reps.max(1) {
            reps.push(run_student()?);
            if left(0.85) < 0.0 {
                break;
            }
        }
        let student_s = median(&reps);
        let sampling = TeacherSampling {
            teacher: c.teacher.as_ref(),
            guidance: c.guidance.as_ref(),
            schedule: c.schedule.as_ref(),
            cond: &inputs.cond,
            w: inputs.w.as_deref(),
            t_max: p.run.train.t_max,
            t_min,
        };
        let run_ddim = |steps: usize| -> boot_sdk::Result<f64> {
            sync(&device)?;
            let t0 = Instant::now();
            let x = sampling.ddim(&inputs.eps, steps)?;
            sync(&device)?;
            drop(x);
            Ok(t0.elapsed().as_secs_f64())
        };
        let one = run_ddim(1)?; // warm-up, and the cost of one step
        if std::env::var("BOOT_BENCH_PROFILE").as_deref() == Ok("ddim1") {
            // One more DDIM step (one guided teacher evaluation) for `ncu --profile-from-start off`.
            profiler(&device, true)?;
            run_ddim(1)?;
            profiler(&device, false)?;
        }
        let fit = if left(1.0).is_finite() { ((left(1.0) / one.max(1e-9)) as usize).clamp(2, cli.ddim_steps) } else { cli.ddim_steps };
        let ddim_run = fit.min(cli.ddim_steps);
        let ddim_s = run_ddim(ddim_run)?;
        let ddim_full_s = ddim_s * cli.ddim_steps as f64 / ddim_run as f64;
        let infer_peak = watch.peak();
        let student_flops = n as f64 * f_s;
        let ddim_flops = n as f64 * cli.ddim_steps as f64 * g * f_t;
        result["inference"] = json!({
            "batch": n,
            "student_one_step": {
                "median_s": student_s, "reps": reps, "images_per_s": n as f64 / student_s,
                "tflops": student_flops / student_s / 1e12,
            },
            "teacher_ddim": {
                "steps": cli.ddim_steps, "steps_timed": ddim_run, "extrapolated": ddim_run != cli.ddim_steps,
                "seconds": ddim_full_s, "images_per_s": n as f64 / ddim_full_s,
                "network_passes_per_step": g, "tflops": ddim_flops / ddim_full_s / 1e12,
            },
            "peak_memory_mib": mib(infer_peak),
            "peak_memory_above_baseline_mib": mib(infer_peak.saturating_sub(baseline)),
        });
        eprintln!(
            "boot-bench: inference batch {n}: student {:.1} images/s, teacher DDIM-{} {:.2} images/s{}",
            n as f64 / student_s,
            cli.ddim_steps,
            n as f64 / ddim_full_s,
            if ddim_run != cli.ddim_steps { format!(" (timed over {ddim_run} steps)") } else { String::new() }
        );
    }

    result["wall_s"] = json!(started.elapsed().as_secs_f64());
    write(&result)?;
    eprintln!("boot-bench: wrote {}", out.display());
    if !finite {
        eprintln!("boot-bench: warning: a loss was not finite (random weights); the timings stand");
    }
    Ok(())
}
