"""The API guide's Python example, run as written against a hub: documentation that cannot rot silently."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api-guide.md"


def blocks(language: str) -> list[str]:
    """The fenced code blocks of the guide in ``language`` ("" for plain ones)."""
    found, current, kind = [], None, ""
    for line in GUIDE.read_text().splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, kind = [], line[3:].strip()
            else:
                if kind == language:
                    found.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return found


async def test_the_python_example_runs_and_prints_what_the_guide_says(ops_hub, suffix, tmp_path):
    (script,) = [block for block in blocks("python") if "async def main" in block]
    expected = next(block for block in blocks("") if "SKUs:" in block)
    tenant = await ops_hub.tenant(f"guide-{suffix}")
    path = tmp_path / "example.py"
    path.write_text(script)
    env = os.environ | {"LOTPULSE_URL": ops_hub.url, "LOTPULSE_TOKEN": ops_hub.token(tenant, "admin")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert out.decode() == expected
