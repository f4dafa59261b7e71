//! Exponential moving average of the student's weights, kept in a second variable map of the same shape.

use boot_sdk::candle_nn::VarMap;

use crate::optim::sorted_vars;

/// `ema = decay * ema + (1 - decay) * live` after every update.
pub struct Ema {
    decay: f64,
    live: Vec<boot_sdk::candle::Var>,
    shadow: Vec<boot_sdk::candle::Var>,
}

impl Ema {
    /// Pairs the variables of `live` and `shadow` by name and copies the live values into the shadow.
    pub fn new(live: &VarMap, shadow: &VarMap, decay: f64) -> boot_sdk::Result<Self> {
        let (l, s) = (sorted_vars(live), sorted_vars(shadow));
        anyhow::ensure!(l.len() == s.len(), "EMA student has {} variables, live student {}", s.len(), l.len());
        for ((ln, lv), (sn, sv)) in l.iter().zip(&s) {
            anyhow::ensure!(ln == sn && lv.dims() == sv.dims(), "EMA variable `{sn}` does not match live `{ln}`");
            sv.set(lv.as_tensor())?;
        }
        Ok(Self { decay, live: l.into_iter().map(|(_, v)| v).collect(), shadow: s.into_iter().map(|(_, v)| v).collect() })
    }

    /// One EMA update.
    pub fn update(&self) -> boot_sdk::Result<()> {
        for (l, s) in self.live.iter().zip(&self.shadow) {
            boot_sdk::ops::fused_update::ema_step(s.as_tensor(), l.as_tensor(), self.decay)?;
        }
        Ok(())
    }
}
