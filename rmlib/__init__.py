"""rmlib: the small library the course builds, lesson by lesson.

The top level is what the lessons teach, one concept per module; read it next to the lesson that
introduces it. Machinery a learner uses but need not read lives in two subpackages.

======  ========================  ===================================================================
lesson  module                    names it introduces
======  ========================  ===================================================================
01      ``rmlib.model``           TinyRewardModel, RewardModelConfig (``model.score``, ``config.hidden_size``)
01      ``rmlib.seeding``         make_generator, seed_everything
02      ``rmlib.theory``          predicted_reward_variance, conditional_reward_variance, variance_with_stderr,
                                  train_head_on_preferences (04: sample_prompt_response_pairs;
                                  06: clustered_mean_with_stderr)
03      ``rmlib.init``            layer_init, score_head_std, init_score_head, INITIALISERS
04      ``rmlib.losses``          bradley_terry_loss, preference_accuracy, reward_margin
05      ``rmlib.data``            make_preference_data, PreferenceData (synthetic data with a known true reward)
06      ``rmlib.normalisation``   RewardNormalizer, normalize_rewards, centring_penalty
06      ``rmlib.policy``          optimal_policy, kl_divergence, policy_gradient, whiten
======  ========================  ===================================================================

``rmlib.lab``     the lab: the batched sweep engine (``rmlib.lab.sweep``: run_sweep, SweepConfig), the
                  interactive explorers, plot helpers, the real backbone (``rmlib.lab.real``, lesson 07),
                  DeepSpeed ZeRO-3 (``rmlib.lab.zero3``, 07) and TRL's trainer (``rmlib.lab.trainer``, 08).
``rmlib.checks``  the worksheets' self-checks, one module per worksheet.
``rmlib.utils``   argument validation (``rmlib.utils.validation``), shared by everything above. The one rule
                  for statistics over runs (diverged runs left out and counted) is ``rmlib.lab.sweep.over_runs``.
"""

from rmlib.data import PreferenceData, make_preference_data
from rmlib.lab.sweep import SweepConfig, SweepResult, run_sweep, sweep_grid
from rmlib.init import INITIALISERS, Initialiser, get_initialiser, init_score_head, layer_init, score_head_std
from rmlib.losses import bradley_terry_loss, preference_accuracy, reward_margin
from rmlib.model import RewardModelConfig, TinyRewardModel
from rmlib.normalisation import (RewardNormalizer, centering_penalty, centred_bt_loss, centring_penalty,  # noqa: F401
                                 normalize_rewards)
from rmlib.seeding import make_generator, seed_everything

__all__ = [
    "INITIALISERS",
    "Initialiser",
    "PreferenceData",
    "RewardModelConfig",
    "RewardNormalizer",
    "SweepConfig",
    "SweepResult",
    "TinyRewardModel",
    "bradley_terry_loss",
    "centred_bt_loss",
    "centring_penalty",
    "get_initialiser",
    "init_score_head",
    "layer_init",
    "make_generator",
    "make_preference_data",
    "normalize_rewards",
    "preference_accuracy",
    "reward_margin",
    "run_sweep",
    "score_head_std",
    "seed_everything",
    "sweep_grid",
]
