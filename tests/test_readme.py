"""The README's two set-up commands are exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    commands = [b.strip() for b in blocks[:2]]
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    for n, command in enumerate(commands, start=1):
        # each runs verbatim, and a failure anywhere in its `&&` chain stops CI
        assert f'{command} || fail "README command {n}"' in ci_lines
