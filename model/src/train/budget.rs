//! A time budget for a training run (`ldae train --time-budget 60m`): the number of epochs is
//! chosen from the speed of the run's own first steps, so that the run fits its budget on the
//! machine it runs on, whatever that machine's speed.
//!
//! The clock starts when the trainer is made (the budget covers the training passes, not
//! the PCA fit or a pixel cache before them). After [`WARM_STEPS`] steps (allocations, cold
//! caches) it measures [`MEASURED_STEPS`] more, then chooses the most whole epochs whose steps
//! fit the time left at that speed, never more than the run's `epochs`. The choice is made once
//! and recorded in the run's `config.json`, so a resumed run keeps it.

use std::time::Instant;

/// Steps before the speed is measured.
pub const WARM_STEPS: u64 = 3;
/// Steps the speed is measured over.
pub const MEASURED_STEPS: u64 = 20;

/// The budget as a run records it (`config.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimeBudget {
    /// Seconds the training passes may take.
    pub seconds: f64,
    /// What was measured and chosen; `None` until the speed is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<BudgetPlan>,
}

/// The choice a budget made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BudgetPlan {
    /// The step after which the choice was made.
    pub at_step: u64,
    /// Seconds of the budget left then.
    pub seconds_left: f64,
    /// Measured seconds per step (over [`MEASURED_STEPS`] steps).
    pub seconds_per_step: f64,
    /// The epochs chosen.
    pub epochs: u64,
}

/// The most whole epochs that fit: `step` steps taken, `seconds_left` of the budget at
/// `seconds_per_step`, epochs of `steps_per_epoch` steps, at most `max_epochs` and at least
/// the epochs already begun (and 1).
///
/// ```
/// use ldae_model::train::budget::choose_epochs;
/// // 100 steps per epoch at 0.5 s: 30 steps taken, 1000 s left make 2030 steps, 20 epochs.
/// assert_eq!(choose_epochs(30, 1000.0, 0.5, 100, 50), 20);
/// assert_eq!(choose_epochs(30, 1000.0, 0.5, 100, 8), 8);
/// assert_eq!(choose_epochs(30, 1.0, 0.5, 100, 8), 1);
/// ```
pub fn choose_epochs(
    step: u64,
    seconds_left: f64,
    seconds_per_step: f64,
    steps_per_epoch: u64,
    max_epochs: u64,
) -> u64 {
    let steps_per_epoch = steps_per_epoch.max(1);
    let more = if seconds_per_step > 0.0 {
        (seconds_left.max(0.0) / seconds_per_step).floor() as u64
    } else {
        u64::MAX / 2
    };
    let begun = step.div_ceil(steps_per_epoch).max(1);
    ((step + more) / steps_per_epoch).clamp(begun.min(max_epochs), max_epochs.max(1))
}

/// Times the steps of one session of a run and makes the budget's choice once.
#[derive(Debug)]
pub struct BudgetClock {
    started: Instant,
    steps: u64,
    warm: Option<Instant>,
}

impl Default for BudgetClock {
    fn default() -> Self {
        BudgetClock {
            started: Instant::now(),
            steps: 0,
            warm: None,
        }
    }
}

impl BudgetClock {
    /// Count a step; `step` is the run's step count after it. Returns the plan once the speed is
    /// known (the caller records it); `None` before, and after.
    pub fn after_step(
        &mut self,
        budget: &TimeBudget,
        step: u64,
        steps_per_epoch: u64,
        max_epochs: u64,
    ) -> Option<BudgetPlan> {
        if budget.plan.is_some() {
            return None;
        }
        self.steps += 1;
        if self.steps == WARM_STEPS {
            self.warm = Some(Instant::now());
        }
        let warm = self.warm?;
        if self.steps < WARM_STEPS + MEASURED_STEPS {
            return None;
        }
        let seconds_per_step = warm.elapsed().as_secs_f64() / MEASURED_STEPS as f64;
        let seconds_left = budget.seconds - self.started.elapsed().as_secs_f64();
        Some(BudgetPlan {
            at_step: step,
            seconds_left,
            seconds_per_step,
            epochs: choose_epochs(
                step,
                seconds_left,
                seconds_per_step,
                steps_per_epoch,
                max_epochs,
            ),
        })
    }
}
