"""Issue 9: every ```python block of docs/custom_groups.md and docs/testing.md runs, in order, in
one namespace (as a reader would run them), including the schematic snippets of testing.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("page", ["custom_groups.md", "testing.md"])
def test_kit_page_snippets_run(page, tmp_path, monkeypatch):
    pytest.importorskip("sympy")
    text = (DOCS / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3, f"{page} lost its python snippets"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_snippet_{page}"}
    ran_tests = 0
    for i, block in enumerate(blocks):
        exec(compile(block, f"{page}[{i}]", "exec"), namespace)
        if block.lstrip().startswith("def test_"):  # a pytest example: call it with the fixtures
            import groupconv.testing as kit

            fn = next(v for k, v in namespace.items() if k.startswith("test_") and callable(v))
            fn(device="cpu", assert_equivariant=kit.assert_equivariant)
            ran_tests += 1
    assert ran_tests == (1 if page == "testing.md" else 0)
