//! Strict checkpoint loading: a model is built from a map of named tensors through a `VarBuilder`, and every
//! tensor must be asked for exactly with the shape the model expects. A missing, extra or mis-shaped tensor
//! is one [`InputError`](boot_sdk::InputError) naming the file, the tensor and both shapes, never a panic.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::candle::{DType, Device, Shape, Tensor};
use crate::candle_nn::var_builder::SimpleBackend;
use crate::candle_nn::{Init, VarBuilder};
use boot_sdk::InputError;

#[derive(Default)]
struct State {
    used: HashSet<String>,
    first_error: Option<InputError>,
}

struct StrictBackend {
    source: String,
    tensors: HashMap<String, Tensor>,
    state: Arc<Mutex<State>>,
}

impl StrictBackend {
    fn fail(&self, name: &str, message: String) -> crate::candle::Error {
        let err = InputError::new(self.source.clone(), format!("tensor `{name}`"), message);
        let text = err.to_string();
        if let Ok(mut st) = self.state.lock() {
            if st.first_error.is_none() {
                st.first_error = Some(err);
            }
        }
        crate::candle::Error::Msg(text)
    }
}

impl SimpleBackend for StrictBackend {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> crate::candle::Result<Tensor> {
        let t = match self.tensors.get(name) {
            None => return Err(self.fail(name, format!("missing (expected shape {:?})", s.dims()))),
            Some(t) if t.shape() != &s => {
                return Err(self.fail(name, format!("expected shape {:?}, found {:?}", s.dims(), t.dims())))
            }
            Some(t) => t,
        };
        if let Ok(mut st) = self.state.lock() {
            st.used.insert(name.to_string());
        }
        t.to_device(dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> crate::candle::Result<Tensor> {
        match self.tensors.get(name) {
            None => Err(self.fail(name, "missing".to_string())),
            Some(t) => {
                if let Ok(mut st) = self.state.lock() {
                    st.used.insert(name.to_string());
                }
                t.to_device(dev)?.to_dtype(dtype)
            }
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// Builds a model from `tensors` (read from `source`, e.g. with [`boot_sdk::io::load_safetensors`]) in `dtype`
/// on `device`, strictly: `build` receives a `VarBuilder` over the tensors; afterwards every tensor of the
/// file must have been used. Errors, all one line:
/// - `source: tensor `enc.conv.weight`: missing (expected shape [16, 3, 3, 3])`;
/// - `source: tensor `enc.conv.weight`: expected shape [16, 3, 3, 3], found [16, 3, 1, 1]`;
/// - `source: tensor `extra.weight`: unexpected tensor (shape [4]) that the model does not use (2 unexpected in all)`.
pub fn load_strict<T>(
    source: &str,
    tensors: HashMap<String, Tensor>,
    dtype: DType,
    device: &Device,
    build: impl FnOnce(VarBuilder) -> crate::Result<T>,
) -> crate::Result<T> {
    let state = Arc::new(Mutex::new(State::default()));
    let names: Vec<(String, Vec<usize>)> = tensors.iter().map(|(k, v)| (k.clone(), v.dims().to_vec())).collect();
    let backend = StrictBackend { source: source.to_string(), tensors, state: state.clone() };
    let vb = VarBuilder::from_backend(Box::new(backend), dtype, device.clone());
    let built = build(vb);
    let mut st = state.lock().map_err(|_| anyhow::anyhow!("strict loader state poisoned"))?;
    if let Some(err) = st.first_error.take() {
        return Err(err.into());
    }
    let model = built?;
    let mut extra: Vec<&(String, Vec<usize>)> = names.iter().filter(|(n, _)| !st.used.contains(n)).collect();
    extra.sort();
    if let Some((name, dims)) = extra.first() {
        let more = if extra.len() > 1 { format!(" ({} unexpected in all)", extra.len()) } else { String::new() };
        return Err(InputError::new(source, format!("tensor `{name}`"), format!("unexpected tensor (shape {dims:?}) that the model does not use{more}")).into());
    }
    Ok(model)
}
