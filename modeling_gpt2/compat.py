"""What differs between the transformers 5.x releases this package supports, in one place: the minimum release,
checked at import with an error naming it, and the shims the model files use instead of the version-dependent names.

Shared by GPT-1 and GPT-2 and byte-identical in both packages (tests/check_copies.py): a saved folder's remote code
imports it, so the check also runs where gpt-origins is not installed.
"""

import transformers
from packaging import version
from transformers.utils.deprecation import deprecate_kwarg

MINIMUM_TRANSFORMERS = "5.24.0"
TRANSFORMERS_VERSION = version.parse(transformers.__version__)

if TRANSFORMERS_VERSION < version.parse(MINIMUM_TRANSFORMERS):
    raise ImportError(
        f"gpt-origins models need transformers >= {MINIMUM_TRANSFORMERS}, <6; this environment has transformers "
        f"{transformers.__version__}. Upgrade it: pip install -U 'transformers>={MINIMUM_TRANSFORMERS},<6'."
    )


def accepts_past_key_values(forward):
    """`past_key_values=` read as `cache=`, the cache's name before transformers 5.24: with transformers' own
    FutureWarning, as its GPT-2 gives it; both names at once are a ValueError (one would be ignored)."""
    return deprecate_kwarg("past_key_values", version="5.40.0", new_name="cache", raise_if_both_names=True)(forward)


__all__ = ["MINIMUM_TRANSFORMERS", "TRANSFORMERS_VERSION", "accepts_past_key_values"]
