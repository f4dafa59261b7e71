//! `teacher.labels`: which class labels a class-conditional teacher draws for the "context dataset" of
//! Algorithm 1 (one draw per sample seed, so labels do not change with the batch size).

use boot_sdk::rand::Rng;
use boot_sdk::{Cond, InputError};
use serde::Deserialize;

/// Named label policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelMode {
    /// Every class equally likely.
    Uniform,
    /// Always the null (unconditional) label.
    Null,
}

/// `labels = "uniform"` (default), `"null"`, or a list of classes drawn uniformly (`[88, 207, 279]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Labels {
    /// `"uniform"` or `"null"`.
    Mode(LabelMode),
    /// A fixed list: each sample's class is drawn uniformly from it.
    List(Vec<u32>),
}

impl Default for Labels {
    fn default() -> Self {
        Labels::Mode(LabelMode::Uniform)
    }
}

impl Labels {
    /// Checks the policy against a teacher with `num_classes` classes (`None`: unconditional); errors name
    /// `teacher.labels`.
    pub fn check(&self, num_classes: Option<usize>) -> boot_sdk::Result<()> {
        let err = |m: String| Err(InputError::config("teacher.labels", m).into());
        match (self, num_classes) {
            (Labels::List(_), None) => err("the teacher is unconditional, so it takes no labels".into()),
            (Labels::List(list), Some(_)) if list.is_empty() => err("the list is empty; leave it out to draw from every class".into()),
            (Labels::List(list), Some(k)) => match list.iter().find(|&&c| c as usize >= k) {
                Some(bad) => err(format!("class {bad} out of range (the teacher has {k} classes)")),
                None => Ok(()),
            },
            (Labels::Mode(_), _) => Ok(()),
        }
    }

    /// The labels of the samples with the given seeds, for a teacher with `num_classes` classes; an
    /// unconditional teacher (`None`) gets [`Cond::none`].
    pub fn draw(&self, seeds: &[u64], num_classes: Option<usize>) -> Cond {
        let Some(k) = num_classes else { return Cond::none() };
        let labels = seeds
            .iter()
            .map(|&s| {
                let mut rng = boot_sdk::rng::rng_for(s);
                match self {
                    Labels::Mode(LabelMode::Uniform) => Some(rng.random_range(0..k as u32)),
                    Labels::Mode(LabelMode::Null) => None,
                    Labels::List(list) => Some(list[rng.random_range(0..list.len())]),
                }
            })
            .collect();
        Cond::classes(labels)
    }
}
