"""Self-checks for the worksheets, one module per worksheet, all sharing one contract (``_contract``).

Every checker takes the learner's function; it prints one ✓ line and returns ``True`` when the answer
is right, raises ``AssertionError`` with a hint naming the likely mistake when it is wrong, and prints
"not implemented yet" and returns ``False`` while the function still raises ``NotImplementedError``.

=========  =========================  ==============================================================
worksheet  module                     checkers
=========  =========================  ==============================================================
02         ``rmlib.checks.variance``       check_predicted_variance, check_mc_variance, check_formula_breaker
03         ``rmlib.checks.layer_init``     check_layer_init, check_score_head_std
04         ``rmlib.checks.bt_loss``        check_bradley_terry_loss, check_bt_gradient, check_relative_error
05         ``rmlib.checks.sweep``          check_loglog_slope, check_adam_first_step
06         ``rmlib.checks.normalisation``  check_reward_gain_bias, check_normalise_on_reference
=========  =========================  ==============================================================
"""

from rmlib.checks._contract import CHECK_SEED, relative_error
from rmlib.checks.bt_loss import check_bradley_terry_loss, check_bt_gradient, check_relative_error
from rmlib.checks.layer_init import check_layer_init, check_score_head_std
from rmlib.checks.normalisation import check_normalise_on_reference, check_reward_gain_bias
from rmlib.checks.sweep import check_adam_first_step, check_loglog_slope
from rmlib.checks.variance import check_formula_breaker, check_mc_variance, check_predicted_variance, mc_variance_stderr

__all__ = [
    "CHECK_SEED",
    "check_adam_first_step",
    "check_bradley_terry_loss",
    "check_bt_gradient",
    "check_formula_breaker",
    "check_layer_init",
    "check_loglog_slope",
    "check_mc_variance",
    "check_normalise_on_reference",
    "check_predicted_variance",
    "check_relative_error",
    "check_reward_gain_bias",
    "check_score_head_std",
    "mc_variance_stderr",
    "relative_error",
]
