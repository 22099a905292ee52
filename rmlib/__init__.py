"""rmlib: the small library behind the course on reward-model score-head initialisation."""

from rmlib.init import INITIALISERS, Initialiser, get_initialiser, init_score_head, layer_init, score_head_std
from rmlib.model import RewardModelConfig, TinyRewardModel
from rmlib.normalize import RewardNormalizer, centering_penalty, centred_bt_loss, normalize_rewards
from rmlib.seeding import make_generator, seed_everything

__all__ = [
    "INITIALISERS",
    "Initialiser",
    "RewardModelConfig",
    "RewardNormalizer",
    "TinyRewardModel",
    "centering_penalty",
    "centred_bt_loss",
    "get_initialiser",
    "init_score_head",
    "layer_init",
    "make_generator",
    "normalize_rewards",
    "score_head_std",
    "seed_everything",
]
