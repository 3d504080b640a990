"""The model tester that transformers' `ModelTesterMixin` drives, written here for our configs (GPT-1's and GPT-2's
share the size fields: vocab_size, n_positions, n_embd, n_layer, n_head), and the mixin with transformers' tests.

Sizes follow transformers' GPT2ModelTester / OpenAIGPTModelTester: batch 13, sequence 7, 2 layers, width 32, 4 heads,
vocabulary 99; the inputs include `token_type_ids` (below 16, as transformers' testers draw them), which both of
transformers' models add through the token embedding.
"""

from contextlib import ExitStack, contextmanager
from unittest.mock import patch

from helpers.transformers_common import import_common_tests, register_in_auto_mappings
from transformers_suite.deliberate_skips import apply_deliberate_skips

test_modeling_common, test_configuration_common = import_common_tests()
ModelTesterMixin = test_modeling_common.ModelTesterMixin
ConfigTester = test_configuration_common.ConfigTester
ids_tensor = test_modeling_common.ids_tensor
random_attention_mask = test_modeling_common.random_attention_mask


class OriginsModelTester:
    batch_size = 13
    seq_length = 7
    vocab_size = 99
    hidden_size = 32
    num_hidden_layers = 2
    num_attention_heads = 4
    max_position_embeddings = 512
    type_vocab_size = 16  # segment ids: below any vocabulary size a test resizes the embedding to
    is_training = True
    num_choices = 4  # sequences per example for multiple choice (transformers' testers use 4)

    def __init__(self, parent, config_class, num_sequences: int | None = None, **config_fields):
        self.parent = parent
        self.config_class = config_class
        self.num_sequences = num_sequences  # None: (B, T) inputs; else (B, N, T)
        self.config_fields = config_fields

    def get_config(self):
        return self.config_class(
            vocab_size=self.vocab_size,
            n_embd=self.hidden_size,
            n_layer=self.num_hidden_layers,
            n_head=self.num_attention_heads,
            n_positions=self.max_position_embeddings,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            pad_token_id=self.vocab_size - 1,
            **self.config_fields,
        )

    def prepare_config_and_inputs_for_common(self):
        shape = [self.batch_size, self.seq_length]
        inputs = {
            "input_ids": ids_tensor(shape, self.vocab_size),
            "attention_mask": random_attention_mask(shape),
            "token_type_ids": ids_tensor(shape, self.type_vocab_size),
        }
        if self.num_sequences is not None:
            # Each example's N sequences: (B, T) -> (B, N, T), the layout of the similarity and multiple-choice inputs.
            inputs = {
                name: value.unsqueeze(1).expand(-1, self.num_sequences, -1).contiguous()
                for name, value in inputs.items()
            }
        return self.get_config(), inputs


@contextmanager
def transformers_loading(model_classes):
    """transformers' own lenient `from_pretrained` (missing weights initialised, unexpected ones dropped) instead of
    our strict one, for the tests that check what transformers does with weights a checkpoint lacks: `_init_weights`
    must cover every parameter, tied weights must be reported right."""
    mixins = {base for cls in model_classes for base in cls.__mro__ if base.__name__ == "StrictLoadingMixin"}
    with ExitStack() as stack:
        for mixin in mixins:
            lenient = classmethod(
                lambda cls, *args, _mixin=mixin, **kwargs: super(_mixin, cls).from_pretrained(*args, **kwargs)
            )
            stack.enter_context(patch.object(mixin, "from_pretrained", lenient))
        yield


def common_test_case(config_class, model_classes, mappings: dict[str, dict[str, str]], **tester_options):
    """A mixin with transformers' common model tests and config tests for `model_classes`, known to the tests
    through the Auto mapping tables in `mappings` (see `register_in_auto_mappings`). Combine with unittest.TestCase."""

    class CommonTests(ModelTesterMixin):
        all_model_classes = tuple(model_classes)
        # transformers skips this `_init_weights` test for models added before 2023 unless asked; we ask.
        test_can_init_all_missing_weights_before_2023 = True

        def setUp(self):
            self.model_tester = OriginsModelTester(self, config_class, **tester_options)
            # transformers' testers use n_embd=37, which our configs refuse with n_head=12 (not divisible).
            self.config_tester = ConfigTester(self, config_class=config_class, n_embd=36)
            register_in_auto_mappings(self, mappings)

        def test_config(self):
            self.config_tester.run_common_tests()

        def test_can_init_all_missing_weights(self):
            with transformers_loading(self.all_model_classes):
                super().test_can_init_all_missing_weights()

        def test_model_weights_reload_no_missing_tied_weights(self):
            with transformers_loading(self.all_model_classes):
                super().test_model_weights_reload_no_missing_tied_weights()

        def test_reverse_loading_mapping(self):
            # Our conversion transposes the Conv1D projections of released checkpoints and renames no key: the
            # setting transformers' own models with a transposing conversion test with.
            super().test_reverse_loading_mapping(check_keys_were_modified=False)

    return apply_deliberate_skips(CommonTests)


__all__ = ["OriginsModelTester", "common_test_case"]
