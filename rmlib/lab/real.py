"""Lesson 07's real pretrained backbone, in one namespace: ``from rmlib.lab import real``.

The code lives in modules of one concern each; every name below is the same object:

``rmlib.lab.backbone``       is the ``real`` extra installed, is the hub reachable, load the backbone
``rmlib.lab.head_input``     what each architecture's score head reads; hidden states of sentences
``rmlib.lab.hidden_stats``   statistics of hidden states, of a layer's weights, of initial rewards
``rmlib.lab.requires_real``  the ``%%requires_real`` cell magic (``%load_ext rmlib.lab.real`` loads it)
"""

from __future__ import annotations

from rmlib.lab.backbone import (DEFAULT_MODEL_ID, EXTRA, HUB_HOST, INSTALL_HINT, PACKAGED_CHECKPOINT, LoadedBackbone,
                                hub_offline, hub_reachable, load_backbone, missing_real_dependencies,
                                packaged_checkpoint_path, real_extra_message)
from rmlib.lab.head_input import (HEAD_INPUTS, SENTENCES, head_input_kind, head_input_states, head_module,
                                  last_non_pad_index, sentence_hidden_states)
from rmlib.lab.hidden_stats import (HiddenStateStats, WeightStats, hidden_state_stats, initial_rewards_over_heads,
                                    predicted_initial_reward_std, weight_stats)
from rmlib.lab.requires_real import load_ipython_extension

__all__ = [
    "DEFAULT_MODEL_ID",
    "EXTRA",
    "HEAD_INPUTS",
    "HUB_HOST",
    "HiddenStateStats",
    "INSTALL_HINT",
    "LoadedBackbone",
    "PACKAGED_CHECKPOINT",
    "SENTENCES",
    "WeightStats",
    "head_input_kind",
    "head_input_states",
    "head_module",
    "hidden_state_stats",
    "hub_offline",
    "hub_reachable",
    "initial_rewards_over_heads",
    "last_non_pad_index",
    "load_backbone",
    "load_ipython_extension",
    "missing_real_dependencies",
    "packaged_checkpoint_path",
    "predicted_initial_reward_std",
    "real_extra_message",
    "sentence_hidden_states",
    "weight_stats",
]
