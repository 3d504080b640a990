"""utils/check_copies.py: GPT-1's copies of GPT-2's code equal it, and the check finds drift on either side and fixes
it."""

import shutil
import subprocess
import sys
from pathlib import Path

from utils import check_copies

REPO = Path(__file__).resolve().parents[2]


def test_copies_of_gpt2_are_equal():
    """Every file and `# Copied from` block that GPT-1 shares with GPT-2 equals GPT-2's, and no copy is unmarked
    (utils/check_copies.py; `make fix-copies` rewrites GPT-1's copies from GPT-2's)."""
    problems, copied = check_copies.check()
    assert not problems, "\n".join(problems)
    for name in check_copies.SHARED_FILES:
        assert (REPO / "modeling_gpt1" / name).read_bytes() == (REPO / "modeling_gpt2" / name).read_bytes()
    assert copied >= {
        "eager_attention_forward",
        "GPT2OriginsAttention",
        "GPT2OriginsMLP",
        "GPT2OriginsPreTrainedModel.config_class",
        "GPT2OriginsModel.forward",
        "GPT2OriginsLMHeadModel.forward",
        "GPT2OriginsConfig.from_dict",
        "preset_fields",
    }


def test_check_copies_command_passes():
    result = subprocess.run(
        [sys.executable, str(REPO / "utils" / "check_copies.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_copies_finds_drift_either_way_and_fixes_it(tmp_path):
    """Drift on either side (GPT-1's copy edited, or GPT-2's original edited and the copy not), in a shared file, a
    copied definition or a copied class-attribute paragraph, and a copy that lost its marker are each reported;
    `fix` makes GPT-1 equal to GPT-2 again, GPT-2's edit included."""
    for package in ("modeling_gpt1", "modeling_gpt2"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    gpt1, gpt2 = tmp_path / "modeling_gpt1", tmp_path / "modeling_gpt2"

    def edit(path: Path, old: str, new: str):
        text = path.read_text()
        assert text.count(old) >= 1, old
        path.write_text(text.replace(old, new, 1))

    edit(
        gpt1 / "modeling_gpt1.py", "        return self.tokens_embed\n", "        return self.tokens_embed  # edited\n"
    )
    edit(gpt1 / "modeling_gpt1.py", "    _supports_sdpa = True\n", "    _supports_sdpa = False\n")
    edit(
        gpt2 / "modeling_gpt2.py",
        "    attn_output = attn_output.transpose(1, 2).contiguous()",
        "    attn_output = attn_output.transpose(1, 2)",
    )
    edit(gpt1 / "hub.py", '"text-generation"', '"text2text-generation"')
    edit(gpt2 / "loading.py", "Download or save it again.", "Save it again.")
    edit(
        gpt1 / "modeling_gpt1.py",
        "    # Copied from modeling_gpt2.modeling_gpt2.GPT2OriginsModel.set_input_embeddings with GPT2->GPT1, "
        "wte->tokens_embed\n",
        "",
    )
    problems, _ = check_copies.check(tmp_path)
    expected = [
        "modeling_gpt1/hub.py differs",
        "modeling_gpt1/loading.py differs",
        "eager_attention_forward differs",
        "GPT2OriginsPreTrainedModel.config_class differs",
        "GPT2OriginsModel.get_input_embeddings differs",
        "GPT1OriginsModel.set_input_embeddings is a copy of GPT-2's GPT2OriginsModel.set_input_embeddings without",
    ]
    assert len(problems) == len(expected), problems
    for fragment, problem in zip(expected, problems):
        assert fragment in problem, (fragment, problem)

    check_copies.check(tmp_path, fix=True)
    problems, _ = check_copies.check(tmp_path)
    assert len(problems) == 1 and "without a `# Copied from` marker" in problems[0]  # a fix cannot add a marker
    for name in check_copies.SHARED_FILES:
        assert (gpt1 / name).read_bytes() == (gpt2 / name).read_bytes()
    model_file = (gpt1 / "modeling_gpt1.py").read_text()
    assert "    attn_output = attn_output.transpose(1, 2)  # (B, T, nh, hs)" in model_file  # GPT-2's edit, copied
    assert "# edited" not in model_file and "_supports_sdpa = True" in model_file


def test_check_copies_command_exits_1_on_drift_and_fix_mends_it(tmp_path):
    """The command line, as `make repo-consistency` and `make fix-copies` run it: exit status 1 naming each drifted
    copy, then `--fix` rewrites GPT-1's copy from GPT-2's and exits 0."""
    for package in ("modeling_gpt1", "modeling_gpt2"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    copy = tmp_path / "modeling_gpt1" / "compat.py"
    copy.write_text(copy.read_text() + "# edited\n")
    command = [sys.executable, str(REPO / "utils" / "check_copies.py"), "--repo", str(tmp_path)]

    found = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "modeling_gpt1/compat.py differs from modeling_gpt2/compat.py" in found.stdout
    assert "1 copies differ; `make fix-copies`" in found.stdout

    fixed = subprocess.run([*command, "--fix"], capture_output=True, text=True, timeout=120)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "Every copy now equals GPT-2's code." in fixed.stdout
    assert copy.read_bytes() == (tmp_path / "modeling_gpt2" / "compat.py").read_bytes()
    assert subprocess.run(command, capture_output=True, timeout=120).returncode == 0
