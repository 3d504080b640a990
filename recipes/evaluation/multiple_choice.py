"""Zero-shot multiple choice by likelihood: questions with their choices, entailment rows and classification rows.

Rows `{context, choices, label}` (label = index of the right choice), entailment rows `{premise, hypothesis, label}`
(a choice among the label names through `--template` and `--label_choices`) or classification rows `{text, label}` (a
choice among the class names: GPT-1's zero-shot heuristic, section 5). Each choice is scored by its log-likelihood
given the prompt, summed over its tokens (`none`), divided by its token count (`tokens`) or by its length in
characters (`chars`); the highest scoring choice is the prediction.
"""

import json
import string
from typing import NamedTuple

from datasets import Dataset

from ..core.errors import RecipeError
from .scoring import continuation_request, encode, start_token_id
from .zero_shot_data import data_source, unescape

PREDICTIONS = "predictions"  # multiple choice: results.json's row-by-row predictions, beside the metrics
NORMALIZATIONS = ("none", "tokens", "chars")
MULTIPLE_CHOICE_TEMPLATE = "{context}"
ENTAILMENT_TEMPLATE = "{premise}\\nQuestion: {hypothesis} True, False or Neither?\\nAnswer:"
# GPT-1's zero-shot sentiment heuristic (Radford et al. 2018, section 5): "append the token very to each example and
# restrict the language model's output distribution to only the words positive and negative".
CLASSIFICATION_TEMPLATE = "{text} very"
# Label names in the order of their ids in MNLI, SNLI and RTE-style data (0 = entailment), each with its answer.
ENTAILMENT_CHOICES = '{"entailment": " True", "neutral": " Neither", "contradiction": " False"}'


def check_template(template: str):
    """`--template` is a format string whose fields are named (a row's columns), so every row can fill it in."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(unescape(template)) if name is not None]
    except ValueError as error:
        raise ValueError(f"--template {template!r} is not a format string: {error}") from None
    positional = [name for name in names if name == "" or name.isdigit()]
    if positional:
        raise ValueError(
            f"--template {template!r} has the positional field {{{positional[0]}}}: name a column of the rows, "
            f"e.g. {{context}}"
        )


def label_answers(label_choices: str) -> dict:
    """`--label_choices` as {label name: answer}, in the order of the integer labels."""
    try:
        answers = json.loads(label_choices)
    except json.JSONDecodeError as error:
        raise ValueError(f"--label_choices is not JSON ({error}): {label_choices!r}") from None
    if not isinstance(answers, dict) or len(answers) < 2:
        raise ValueError(f"--label_choices must map at least 2 label names to their answers, got {label_choices!r}")
    return answers


class Example(NamedTuple):
    """One multiple-choice question: each of `choices` is scored as the continuation of `prompt`."""

    prompt: str
    choices: list[str]  # as scored, with the space that joins each to the prompt
    label: int  # the index of the right choice
    lengths: list[int]  # each choice's length in characters, the divisor of the `chars` normalisation


def multiple_choice_examples(rows: Dataset, args, source: str) -> tuple[str, str, list[Example]]:
    """The family, the template used and an Example for every row: `multiple_choice` ({context, choices, label}),
    `entailment` ({premise, hypothesis, label}, a choice among `--label_choices`) or `classification` ({text,
    label})."""
    columns = rows.column_names
    if args.choices_column in columns:
        family, used_template, names = "multiple_choice", args.template or MULTIPLE_CHOICE_TEMPLATE, None
    elif {"premise", "hypothesis"} <= set(columns):
        family, used_template = "entailment", args.template or ENTAILMENT_TEMPLATE
        label_choices = label_answers(args.label_choices or ENTAILMENT_CHOICES)
        names, answers = list(label_choices), [str(answer) for answer in label_choices.values()]
    elif "text" in columns:
        family, used_template = "classification", args.template or CLASSIFICATION_TEMPLATE
        if args.label_choices is not None:
            label_choices = label_answers(args.label_choices)
        else:
            classes = sorted({label for label in rows[args.label_column] if isinstance(label, str)})
            if len(classes) < 2:
                raise RecipeError(
                    f"{source}: classification rows need at least 2 class names in {args.label_column!r} to choose "
                    f"among, or --label_choices; found {classes}."
                )
            label_choices = {name: " " + name for name in classes}
        names, answers = list(label_choices), [str(answer) for answer in label_choices.values()]
    else:
        raise RecipeError(
            f"{source} has neither a {args.choices_column!r} column (multiple choice: context, choices, label), "
            f"premise and hypothesis columns (entailment) nor a text column (classification); its columns: "
            f"{', '.join(columns)}."
        )
    template = unescape(used_template)
    fields = [field for _, field, _, _ in string.Formatter().parse(template) if field]
    examples = []
    for index, row in enumerate(rows):
        where = f"{source} row {index + 1}"
        for name in fields:
            if row.get(name) is None:  # a JSON lines file missing a field in one row reads as None there
                raise RecipeError(f"{where} has no field {name!r}, which --template {template!r} asks for.")
        try:
            prompt = template.format_map(row)
        except (KeyError, IndexError, ValueError) as error:
            raise RecipeError(f"{where}: --template {template!r} cannot be filled in: {error!r}.") from error
        if not prompt.strip():
            raise RecipeError(f"{where}: the prompt is empty (template {template!r}).")
        label = row.get(args.label_column)
        if names is not None:
            choices = answers
            if isinstance(label, str):
                if label not in names:
                    raise RecipeError(f"{where}: label {label!r} is none of the --label_choices ({', '.join(names)}).")
                label = names.index(label)
        else:
            choices = row[args.choices_column]
            if choices is None:
                raise RecipeError(f"{where} has no field {args.choices_column!r} (fields: {', '.join(row)}).")
            if not isinstance(choices, list) or len(choices) < 2:
                raise RecipeError(f"{where} has {choices!r} as choices: it needs a list of at least 2.")
            if not all(isinstance(choice, str) and choice.strip() for choice in choices):
                raise RecipeError(f"{where}: every choice must be a non-empty text, got {choices!r}.")
        if label is None:
            raise RecipeError(f"{where} has no field {args.label_column!r} (fields: {', '.join(row)}).")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(choices):
            raise RecipeError(
                f"{where}: label {label!r} is out of range: it must be the index of one of its {len(choices)} choices "
                f"(0 to {len(choices) - 1})."
            )
        # A choice continues the prompt after a space, as GPT-2's BPE writes a word inside a sentence.
        joined = [choice if choice[:1].isspace() or prompt[-1:].isspace() else " " + choice for choice in choices]
        examples.append(Example(prompt, joined, label, [len(choice) for choice in joined]))
    return family, used_template, examples


def prepare_multiple_choice(args, data, tokenizer, window, accuracies=None):
    """Every choice of every example as a request; `finish` reports an accuracy for each of `accuracies` (metric
    name -> normalisation; default: `accuracy_<normalisation>` for each `--normalize`)."""
    source = data_source(args)
    family, _, examples = data
    accuracies = accuracies or {f"accuracy_{normalize}": normalize for normalize in args.normalize}
    start = start_token_id(tokenizer, args.add_start_token)
    prompts = encode(tokenizer, [example.prompt for example in examples])
    requests, spans = [], []  # spans[i]: the requests of example i
    for index, (example, prompt) in enumerate(zip(examples, prompts)):
        answers = encode(tokenizer, example.choices)
        spans.append(range(len(requests), len(requests) + len(example.choices)))
        where = f"{source} row {index + 1}"
        requests.extend(continuation_request(start + prompt, answer, window, where) for answer in answers)

    def finish(scores):
        metrics, predictions = {}, {}
        labels = [example.label for example in examples]
        for name, normalize in accuracies.items():
            predicted = []
            for example, span in zip(examples, spans):
                values = []
                for length, (nll, count, _) in zip(example.lengths, (scores[i] for i in span)):
                    divisor = {"none": 1, "tokens": count, "chars": length}[normalize]
                    values.append(-nll / divisor)
                predicted.append(max(range(len(values)), key=values.__getitem__))
            metrics[name] = sum(p == label for p, label in zip(predicted, labels)) / len(examples)
            predictions[normalize] = predicted
        metrics["chance"] = sum(1 / len(example.choices) for example in examples) / len(examples)
        metrics.update(examples=len(examples), choices=len(requests), family=family)
        # Each row's predicted choice (an index; for entailment and classification rows, of the label names), and
        # the right one: results.json keeps them beside the metrics.
        metrics[PREDICTIONS] = {"labels": labels, **predictions}
        return metrics

    return requests, finish
