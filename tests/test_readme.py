"""The README's examples stay true: the GPT-1 fine-tuning block runs as written (it needs no network)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python_block_of(section: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)
    assert len(blocks) == 1, f"README section {section!r} should hold one python block, found {len(blocks)}"
    return blocks[0]


def test_gpt1_fine_tuning_inputs_block_runs(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the block trains its tokenizer on a repository fixture
    namespace: dict = {}
    exec(compile(_python_block_of("GPT-1"), "README.md:GPT-1", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "_start_the play is good _delimiter_it is _classify_" in printed  # the comment under the print is true
    out, batch = namespace["out"], namespace["batch"]
    assert namespace["family"] == "multiple_choice" and batch["input_ids"].shape[:2] == (1, 3)
    assert out.logits.shape == (1, 3)
    assert abs(out.loss.item() - (out.task_loss + 0.5 * out.lm_loss).item()) < 1e-5
