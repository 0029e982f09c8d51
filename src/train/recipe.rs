//! A fine-tuning recipe as data: the surgery on the backbone, how the new
//! layers start and how fast they learn, the solver, the seed. Its defaults
//! are the paper's, written here and in `SolverSettings::default` only.
//! Command-line flags and experiment files are `RecipeOverrides` of it, a
//! search point sets some of its keys, and a run's `config.json` holds the
//! recipe it ran.

use super::SolverSettings;
use crate::model::surgery::{self, Op, NEW_LAYER_LR_MULT};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How new layers start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadInit {
    /// Gaussian weights (std 0.01), zero bias: the paper's.
    #[default]
    Random,
    /// The logistic regression on the new head's input features, fitted on
    /// the training images (see `eval/probe_init.rs`).
    Probe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// A surgery preset of the backbone (`ft`, `fc7-2`, …) or ops; a run
    /// records the ops it resolved to.
    pub surgery: String,
    pub solver: SolverSettings,
    /// How new layers start.
    pub head_init: HeadInit,
    /// Learning-rate multiplier of new layers (the paper's 10).
    pub new_lr_mult: f32,
    /// Seed of every random choice (shuffles, crops, dropout, new weights).
    pub seed: u64,
    /// Where between its start and its trained weights the network ends:
    /// start + α·(trained − start). 1 (the paper's): the trained weights;
    /// between 0 and 1, weight-space ensembling with the start (WiSE-FT,
    /// Wortsman et al. 2022), which keeps some of what the probe-initialised
    /// start got right while the fine-tuned one gets other images right.
    #[serde(default = "one")]
    pub wise_alpha: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe { surgery: "ft".into(), solver: SolverSettings::default(), head_init: HeadInit::Random, new_lr_mult: NEW_LAYER_LR_MULT, seed: 0, wise_alpha: 1.0 }
    }
}

impl Recipe {
    /// `self` with `values` set, each by the name config files use
    /// (`base_lr`, `head_init`, …; a solver setting or one of the recipe's
    /// own); null values are not set. Checked as a whole afterwards.
    pub fn with(&self, values: &Map<String, Value>) -> Result<Recipe, String> {
        let mut v = serde_json::to_value(self).map_err(|e| e.to_string())?;
        for (key, value) in values.iter().filter(|(_, v)| !v.is_null()) {
            if v["solver"].get(key).is_some() {
                v["solver"][key] = value.clone();
            } else if key != "solver" && v.get(key).is_some() {
                v[key] = value.clone();
            } else {
                return Err(format!("{key} is not a recipe setting; settings: {}", Recipe::keys().join(", ")));
            }
        }
        let recipe: Recipe = serde_json::from_value(v).map_err(|e| format!("{}: {e}", Value::Object(values.clone())))?;
        recipe.check().map_err(|e| format!("{}: {e}", Value::Object(values.clone())))?;
        Ok(recipe)
    }

    /// The solver's settings and the recipe's own, checked.
    pub fn check(&self) -> Result<(), String> {
        self.solver.check()?;
        if !(0.0..=1.0).contains(&self.wise_alpha) {
            return Err(format!("wise_alpha {} must be in [0, 1]", self.wise_alpha));
        }
        Ok(())
    }

    /// The keys applied after training, which do not change how the network
    /// trains: points of a search that differ only in them share one training.
    pub const AFTER_TRAINING: [&'static str; 1] = ["wise_alpha"];

    /// This recipe as it trains: what is applied after training left at its
    /// identity (the trained weights as they are).
    pub fn as_trained(&self) -> Recipe {
        Recipe { wise_alpha: 1.0, ..self.clone() }
    }

    /// Every key `with` sets.
    pub fn keys() -> Vec<String> {
        let v = serde_json::to_value(Recipe::default()).unwrap_or_default();
        let own = v.as_object().into_iter().flatten().map(|(k, _)| k.clone()).filter(|k| k != "solver");
        let solver = v["solver"].as_object().into_iter().flatten().map(|(k, _)| k.clone());
        own.chain(solver).collect()
    }

    /// The surgery's ops on `backbone`, and the recipe with its surgery
    /// written as those ops (what a run records: a preset's name could come
    /// to mean other ops).
    pub fn resolved(mut self, backbone: &str) -> Result<(Recipe, Vec<Op>), surgery::SurgeryError> {
        let ops = surgery::resolve(backbone, &self.surgery)?;
        self.surgery = surgery::ops_text(&ops);
        Ok((self, ops))
    }
}

/// What a command line or an experiment file changes in the paper's recipe:
/// unset fields keep it, and a surgery preset's own base rate (the paper's
/// fc6-2) applies where `base_lr` is unset. Also how the recipe is chosen
/// per fold (`search`, `holdout`, `inner_folds`), which is not part of the recipe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeOverrides {
    /// A surgery preset of the backbone or ops [default: ft].
    pub surgery: Option<String>,
    pub base_lr: Option<f64>,
    pub step_epochs: Option<f64>,
    pub gamma: Option<f64>,
    pub momentum: Option<f64>,
    pub weight_decay: Option<f64>,
    pub epochs: Option<f64>,
    pub batch: Option<usize>,
    pub micro_batch: Option<usize>,
    pub head_init: Option<HeadInit>,
    pub new_lr_mult: Option<f32>,
    pub seed: Option<u64>,
    pub schedule: Option<super::solver::Schedule>,
    pub warmup_epochs: Option<f64>,
    pub layer_decay: Option<f64>,
    pub freeze_layers: Option<usize>,
    pub decay_to: Option<super::solver::DecayTarget>,
    pub swa_epochs: Option<f64>,
    pub augment: Option<super::solver::Augment>,
    pub batchnorm: Option<super::solver::BatchNormMode>,
    pub label_smoothing: Option<f64>,
    pub wise_alpha: Option<f64>,
    /// Settings chosen per fold by nested search, as `KEY=V1,V2` (see `deepsent crossval --search`).
    pub search: Option<Vec<String>>,
    /// Fraction of each fold's training part held out to score the search [default: 0.2].
    pub holdout: Option<f64>,
    /// Inner folds that score the search instead of the held-out slice [default: 0, the slice].
    pub inner_folds: Option<usize>,
}

/// The fields of `RecipeOverrides` that say how a recipe is chosen, not what it is.
const SELECTION_KEYS: [&str; 3] = ["search", "holdout", "inner_folds"];

impl RecipeOverrides {
    /// `self` with the fields of `over` that are set.
    pub fn overridden_by(&self, over: &RecipeOverrides) -> RecipeOverrides {
        let mut merged = fields(self);
        merged.extend(fields(over));
        serde_json::from_value(Value::Object(merged)).expect("fields of one type read back as it")
    }

    pub fn surgery(&self) -> &str {
        self.surgery.as_deref().unwrap_or("ft")
    }

    /// The paper's recipe with these fields set; where `base_lr` is unset, a
    /// surgery preset of `backbone` that has its own base rate gives it.
    pub fn recipe(&self, backbone: &str) -> Result<Recipe, String> {
        let mut set = fields(self);
        set.retain(|k, _| !SELECTION_KEYS.contains(&k.as_str()));
        if self.base_lr.is_none() {
            if let Some(lr) = surgery::find_preset(backbone, self.surgery()).and_then(|p| p.base_lr) {
                set.insert("base_lr".into(), lr.into());
            }
        }
        Recipe::default().with(&set)
    }
}

/// The fields that are set, by name.
fn fields(o: &RecipeOverrides) -> Map<String, Value> {
    match serde_json::to_value(o) {
        Ok(Value::Object(map)) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_fields_are_the_papers_and_a_preset_keeps_its_rate() {
        let r = RecipeOverrides::default().recipe("caffenet").unwrap();
        assert_eq!(r, Recipe::default());
        let s = &r.solver;
        assert_eq!((s.base_lr, s.step_epochs, s.gamma, s.epochs, s.batch, s.momentum, s.weight_decay), (0.001, 6.0, 0.1, 65.0, 256, 0.9, 5e-4));
        assert_eq!((r.surgery.as_str(), r.head_init, r.new_lr_mult, r.seed), ("ft", HeadInit::Random, 10.0, 0));
        let fc6 = RecipeOverrides { surgery: Some("fc6-2".into()), ..Default::default() };
        assert_eq!(fc6.recipe("caffenet").unwrap().solver.base_lr, 1e-4);
        let given = RecipeOverrides { base_lr: Some(0.01), ..fc6 };
        assert_eq!(given.recipe("caffenet").unwrap().solver.base_lr, 0.01);
    }

    #[test]
    fn overrides_compose_and_every_field_reaches_the_recipe() {
        let base = RecipeOverrides { epochs: Some(8.0), head_init: Some(HeadInit::Probe), ..Default::default() };
        let over = RecipeOverrides { epochs: Some(2.0), freeze_layers: Some(3), ..Default::default() };
        let r = base.overridden_by(&over).recipe("squeezenet1.0").unwrap();
        assert_eq!((r.solver.epochs, r.solver.freeze_layers, r.head_init), (2.0, 3, HeadInit::Probe));
        // Each override field is a recipe key, so none is dropped on the way.
        let names: Vec<String> = serde_json::to_value(RecipeOverrides::default()).unwrap().as_object().unwrap().keys().cloned().collect();
        let keys = Recipe::keys();
        for name in names.iter().filter(|n| !SELECTION_KEYS.contains(&n.as_str())) {
            assert!(keys.contains(name), "{name} is not a recipe key");
        }
        assert_eq!(names.len(), keys.len() + SELECTION_KEYS.len());
    }

    #[test]
    fn with_refuses_unknown_keys_and_invalid_recipes() {
        let set = |k: &str, v: Value| Recipe::default().with(&Map::from_iter([(k.to_string(), v)]));
        assert_eq!(set("seed", 7.into()).unwrap().seed, 7);
        assert!(set("stepsize", 6.into()).unwrap_err().contains("not a recipe setting"));
        assert!(set("solver", Value::Null).is_ok(), "a null value sets nothing");
        assert!(set("micro_batch", 3.into()).unwrap_err().contains("multiple"));
        assert!(set("schedule", "sawtooth".into()).is_err());
        assert_eq!(set("wise_alpha", 0.5.into()).unwrap().wise_alpha, 0.5);
        assert!(set("wise_alpha", 1.5.into()).unwrap_err().contains("[0, 1]"));
    }
}
