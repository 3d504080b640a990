"""One file, or one split of a Hub dataset, read as rows on its way into a split of a task's `DatasetDict`."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from datasets import Dataset

from ...core.errors import RecipeError


@dataclass
class Part:
    """One file, or one split of a Hub dataset, on its way into a split of the DatasetDict."""

    split: str
    where: str
    rows: Dataset
    lines: list[int] | None = None  # the 1-based line of each row of a .jsonl / .csv / .tsv file

    def at(self, index: int) -> str:
        """Where row `index` is, for a message: its line in the file, or its row index."""
        return f"{self.where}, line {self.lines[index]}" if self.lines else f"{self.where}, row {index}"


def rename_columns(rows: Dataset, renames: Mapping[str, str], where: str) -> Dataset:
    """The columns renamed old -> new where the rows have them; a new name that is already a column is an error."""
    renames = {old: new for old, new in renames.items() if old in rows.column_names and old != new}
    clashes = [new for old, new in renames.items() if new in rows.column_names and new not in renames]
    if clashes:
        raise RecipeError(f"{where}: renaming columns onto {clashes} would overwrite columns it already has.")
    return rows.rename_columns(renames) if renames else rows


def iter_rows(part: Part, columns: Sequence[str], batch_size: int = 1000):
    """(row index, {column: value}) over a part, read a batch of columns at a time."""
    index = 0
    for batch in part.rows.select_columns(list(columns)).iter(batch_size=batch_size):
        for values in zip(*(batch[column] for column in columns)):
            yield index, dict(zip(columns, values))
            index += 1
