"""The American spelling of :mod:`rmlib.normalisation`, kept so that ``from rmlib.normalize import ...`` still works.

Every name below is the same object as in :mod:`rmlib.normalisation`.
"""

from rmlib.normalisation import (NormalisedHeads, RewardNormalizer, centering_penalty, centred_bt_loss, centring_penalty,
                                 normalize_before, normalize_rewards, train_normalised_heads)

__all__ = [
    "NormalisedHeads",
    "RewardNormalizer",
    "centering_penalty",
    "centred_bt_loss",
    "centring_penalty",
    "normalize_before",
    "normalize_rewards",
    "train_normalised_heads",
]
