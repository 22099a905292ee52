"""rmlib: the small library behind the course on reward-model score-head initialisation."""

from rmlib.data import PreferenceData, make_preference_data
from rmlib.engine import SweepConfig, SweepResult, run_sweep, run_sweep_loop, sweep_grid
from rmlib.init import INITIALISERS, Initialiser, get_initialiser, init_score_head, layer_init, score_head_std
from rmlib.losses import bradley_terry_loss, preference_accuracy, reward_margin
from rmlib.model import RewardModelConfig, TinyRewardModel
from rmlib.normalize import RewardNormalizer, centering_penalty, centred_bt_loss, normalize_rewards
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
    "centering_penalty",
    "centred_bt_loss",
    "get_initialiser",
    "init_score_head",
    "layer_init",
    "make_generator",
    "make_preference_data",
    "normalize_rewards",
    "preference_accuracy",
    "reward_margin",
    "run_sweep",
    "run_sweep_loop",
    "score_head_std",
    "seed_everything",
    "sweep_grid",
]
