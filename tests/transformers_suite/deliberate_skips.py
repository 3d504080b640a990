"""The one list of transformers' common tests that do not run on our models, each with its reason: a deliberate
design difference, or a test that needs what transformers' sdist does not ship. Everything else must pass."""

import unittest

# test name -> reason; applied to every tester class of tests/transformers_suite.
DELIBERATE_SKIPS: dict[str, str] = {
    "test_generation_tester_mixin_inheritance": (
        "transformers' GenerationTesterMixin (tests/generation) is not in its sdist; our generate tests stand in"
    ),
}


def apply_deliberate_skips(test_class: type) -> type:
    for name, reason in DELIBERATE_SKIPS.items():
        if hasattr(test_class, name):
            setattr(test_class, name, unittest.skip(reason)(getattr(test_class, name)))
    return test_class
