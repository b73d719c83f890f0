"""Where the running hubs of this user are: one small record per ``lotpulse serve`` in a per-user runtime folder.

A shell command run from another folder would otherwise look for ``./lotpulse-data``, start a second embedded
database there and mint tokens from a second key ring that the running hub rejects. With these records the CLI
finds the running hub's data folder, issuer URL and key file, or says exactly which ones it looked for.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


def runtime_dir(configured: Path | None) -> Path:
    """``LOTPULSE_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/lotpulse``, else a per-user folder in the temp dir."""
    if configured is not None:
        return configured
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "lotpulse"
    return Path(tempfile.gettempdir()) / f"lotpulse-{os.getuid()}"


@dataclass(frozen=True)
class RunningHub:
    pid: int
    port: int
    public_url: str
    data_dir: str  # absolute
    signing_key_file: str  # absolute
    embedded: bool  # False: the hub uses LOTPULSE_MONGODB_URI (never written here: it may hold a password)

    def describe(self) -> str:
        where = f"data folder {self.data_dir}" if self.embedded else "a MongoDB given by LOTPULSE_MONGODB_URI"
        return f"the hub on port {self.port} (pid {self.pid}, {where})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register(folder: Path, hub: RunningHub) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"hub-{hub.port}.json"
    path.write_text(json.dumps(asdict(hub)))
    return path


def running_hubs(folder: Path) -> list[RunningHub]:
    """Records of hubs whose process is alive; records left by a killed hub are removed."""
    hubs = []
    for path in sorted(folder.glob("hub-*.json")) if folder.is_dir() else []:
        try:
            hub = RunningHub(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if _alive(hub.pid):
            hubs.append(hub)
        else:
            path.unlink(missing_ok=True)
    return hubs
