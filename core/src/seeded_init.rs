//! Deterministic parameter initialisation: a variable-builder backend over a [`VarMap`] that draws each new
//! variable from a generator seeded by the run seed and the variable's name (candle's own initialisers use an
//! unseedable generator), so two runs with one seed start from the same student.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use boot_sdk::candle::{self, DType, Device, Shape, Tensor, Var};
use boot_sdk::candle_nn::init::{Init, NormalOrUniform};
use boot_sdk::candle_nn::var_builder::SimpleBackend;
use boot_sdk::candle_nn::{VarBuilder, VarMap};
use boot_sdk::rand::Rng;
use boot_sdk::rand_distr::StandardNormal;
use boot_sdk::rng::{rng_for, sample_seed, Stream};

/// A [`VarMap`] whose new variables are initialised from `(seed, name)`.
pub struct SeededVarMap {
    map: VarMap,
    seed: u64,
}

impl SeededVarMap {
    /// A builder over `map` that creates missing variables deterministically from `seed`.
    pub fn builder(map: &VarMap, seed: u64, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(SeededVarMap { map: map.clone(), seed }), dtype, device.clone())
    }

    fn draw(&self, shape: &Shape, name: &str, init: Init) -> Vec<f32> {
        let n = shape.elem_count();
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        let mut rng = rng_for(sample_seed(self.seed, Stream::Init, 0, h.finish()));
        let normal = |rng: &mut boot_sdk::rand_chacha::ChaCha8Rng, mean: f64, std: f64| mean + std * rng.sample::<f64, _>(StandardNormal);
        match init {
            Init::Const(c) => vec![c as f32; n],
            Init::Randn { mean, stdev } => (0..n).map(|_| normal(&mut rng, mean, stdev) as f32).collect(),
            Init::Uniform { lo, up } => (0..n).map(|_| (lo + (up - lo) * rng.random::<f64>()) as f32).collect(),
            Init::Kaiming { dist, fan, non_linearity } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    NormalOrUniform::Normal => (0..n).map(|_| normal(&mut rng, 0.0, std) as f32).collect(),
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        (0..n).map(|_| (bound * (2.0 * rng.random::<f64>() - 1.0)) as f32).collect()
                    }
                }
            }
        }
    }
}

impl SimpleBackend for SeededVarMap {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> candle::Result<Tensor> {
        let mut data = self.map.data().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(var) = data.get(name) {
            if var.shape() != &s {
                candle::bail!("variable `{name}` requested with shape {s:?}, exists with {:?}", var.shape())
            }
            return Ok(var.as_tensor().clone());
        }
        let values = self.draw(&s, name, h);
        let var = Var::from_tensor(&Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?)?;
        let tensor = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> candle::Result<Tensor> {
        let data = self.map.data().lock().unwrap_or_else(|e| e.into_inner());
        match data.get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => candle::bail!("variable `{name}` does not exist and has no shape to create it with"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.map.data().lock().map(|d| d.contains_key(name)).unwrap_or(false)
    }
}
