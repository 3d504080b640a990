"""Saving and sharing: a saved folder that loads with every Auto class of its package, and `push_to_hub` that uploads
the model, its code, the tokenizer and a model card in one commit.

Shared by GPT-1 and GPT-2: GPT-2's copy is the original, and GPT-1's is generated from it, byte for byte, by
`make fix-copies` (utils/check_copies.py). What differs between them is declared by the model class (`_auto_map`,
`_model_card_description`) and read here.
"""

import tempfile
from pathlib import Path

import torch
import transformers
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

from .loading import swap_projection_layout

# The Hub's pipeline tag of each Auto class a model card can name (multiple choice has none).
PIPELINE_TAGS = {
    "AutoModel": "feature-extraction",
    "AutoModelForCausalLM": "text-generation",
    "AutoModelForSequenceClassification": "text-classification",
}


class HubMixin:
    """The save / push API of gpt-origins for a `PreTrainedModel` subclass (listed before `PreTrainedModel` among its
    bases). The class declares `_auto_map`, every Auto class a saved folder loads with and the name of the class it
    gives (classes of the model file), and `_model_card_description`, the model card's first words."""

    _auto_map: dict[str, str] = {}
    _model_card_description: str = "A language model"
    # The class of transformers itself with this architecture and these parameter names (`save_transformers_format`).
    _transformers_class: str | None = None

    def post_init(self):
        super().post_init()
        # A tied copy (the LM head) is never saved: transformers leaves it out. Naming it among the keys not saved also
        # tells Trainer, when it reloads its best or a resumed checkpoint, that the missing key is the tie (it ties the
        # weights again) and not a lost weight ("There were missing keys in the checkpoint model loaded").
        self._keys_not_saved = set(self._keys_to_ignore_on_save or ())
        self._keys_to_ignore_on_save = self._keys_not_saved | self._tied_copies()

    def _tied_copies(self) -> set[str]:
        """The tied copies that are still the same tensor as their source (a head untied after the model was built is
        its own weight, and saved)."""
        parameters = dict(self.named_parameters(remove_duplicate=False))
        return {
            copy
            for copy, source in self.all_tied_weights_keys.items()
            if copy in parameters and source in parameters and parameters[copy] is parameters[source]
        }

    @property
    def hub_auto_class(self) -> str:
        """The Auto class the model card loads this model with: the one its class is registered for."""
        return self._auto_class or "AutoModel"

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`; a class registered for an Auto class (the package's `__init__.py` does
        it) also writes every Auto class of `_auto_map` into config.json's `auto_map`: transformers'
        `register_for_auto_class` records one Auto class per model class, but one class can serve two (GPT-1's
        double-heads model), and every class lives in the one model file that is saved with the weights."""
        if self._auto_class is not None:
            module = type(self).__module__.rsplit(".", 1)[-1]  # the model file, also under transformers_modules
            auto_map = {auto_class: f"{module}.{name}" for auto_class, name in self._auto_map.items()}
            self.config.auto_map = {**auto_map, **(getattr(self.config, "auto_map", None) or {})}
        self._keys_to_ignore_on_save = self._keys_not_saved | self._tied_copies()  # as tied as it is now
        return super().save_pretrained(save_directory, *args, **kwargs)

    def save_transformers_format(self, save_directory, **kwargs):
        """Write a folder in transformers' own format: its config class (`model_type` "gpt2" / "openai-gpt", the
        fields it has), the projections in its Conv1D layout, no code. transformers' `GPT2LMHeadModel` /
        `OpenAIGPTLMHeadModel` (or their base models) and its Auto classes load it without gpt-origins or remote code.
        Weights that transformers' class has no place for (another head, another architecture) are a ValueError
        before anything is written; keyword arguments go to its `save_pretrained`."""
        if self._transformers_class is None:
            raise ValueError(
                f"{type(self).__name__} has no class in transformers with its heads; save its language model or its "
                f"base model (`.transformer`) in transformers' format instead."
            )
        reference_class = getattr(transformers, self._transformers_class)
        config_class = reference_class.config_class
        not_fields = {"model_type", "architectures", "auto_map", "transformers_version"}
        own_fields = set(config_class().to_dict()) - not_fields
        config = config_class(**{key: value for key, value in self.config.to_dict().items() if key in own_fields})
        state_dict = {key: value.contiguous() for key, value in swap_projection_layout(self.state_dict()).items()}
        with torch.device("meta"):
            reference = reference_class(config)
        try:
            reference.load_state_dict(state_dict, strict=True, assign=True)
        except RuntimeError as error:
            raise ValueError(
                f"{type(self).__name__} does not fit transformers' {self._transformers_class} built from the same "
                f"config ({error}): it cannot be written in transformers' format."
            ) from error
        reference.tie_weights()
        reference.save_pretrained(save_directory, **kwargs)

    def push_to_hub(
        self,
        repo_id: str,
        tokenizer=None,
        commit_message: str = "Upload model",
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        tags: list[str] | None = None,
    ):
        """Upload config (with `auto_map`), code, safetensors weights, the tokenizer if given, and a model card (only
        where the repository has none yet) to the Hub in one commit; the repository is created if needed. Returns
        the commit's information (`huggingface_hub.CommitInfo`)."""
        api = HfApi()
        repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder)
            try:
                ModelCard.load(repo_id, token=token)  # the user's card stays as it is
            except (EntryNotFoundError, RepositoryNotFoundError):
                self.model_card(repo_id, tags).save(Path(folder) / "README.md")
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                commit_message=commit_message,
                token=token,
                revision=revision,
                create_pr=create_pr,
            )

    def model_card(self, repo_id: str, tags: list[str] | None = None) -> ModelCard:
        """A model card naming the architecture, its size and how to load it without gpt-origins installed."""
        config = self.config
        auto_class = self.hub_auto_class
        pipeline_tag = PIPELINE_TAGS.get(auto_class)
        family = config.model_type.removesuffix("-origins")  # gpt1, gpt2
        package = type(self).__module__.rsplit(".", 1)[-1]  # the package and its model file share the name
        all_tags = ["gpt-origins", family, *([pipeline_tag] if pipeline_tag else []), *(tags or [])]
        tag_lines = "".join(f"- {tag}\n" for tag in all_tags)
        pipeline_line = f"pipeline_tag: {pipeline_tag}\n" if pipeline_tag else ""
        return ModelCard(
            f"""---
library_name: transformers
{pipeline_line}tags:
{tag_lines}---

# {repo_id.split("/")[-1]}

{self._model_card_description} built with [gpt-origins](https://pypi.org/project/gpt-origins/):
{self.num_parameters():,} parameters, {config.n_layer} blocks of width {config.n_embd} with {config.n_head} heads,
a context of {config.n_positions} tokens and a vocabulary of {config.vocab_size:,}.

```python
from transformers import {auto_class}, AutoTokenizer

model = {auto_class}.from_pretrained("{repo_id}", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
```

With gpt-origins installed (`import {package}`), `trust_remote_code` is not needed.
"""
        )


__all__ = ["HubMixin", "PIPELINE_TAGS"]
