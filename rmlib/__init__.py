"""rmlib: the small library behind the course on reward-model score-head initialisation."""

from rmlib.init import INITIALISERS, Initialiser, get_initialiser, init_score_head, layer_init, score_head_std
from rmlib.model import RewardModelConfig, TinyRewardModel
from rmlib.seeding import make_generator, seed_everything

__all__ = [
    "INITIALISERS",
    "Initialiser",
    "RewardModelConfig",
    "TinyRewardModel",
    "get_initialiser",
    "init_score_head",
    "layer_init",
    "make_generator",
    "score_head_std",
    "seed_everything",
]
