"""``make lab``'s server: it starts as root (containers, course VMs) and as a plain user, and its
file browser lists each notebook once (the jupytext ``.py`` twins stay on disk, hidden)."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

from lab_helpers import running_lab

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "etc" / "jupyter" / "jupyter_server_config.json"
NOTEBOOKS = sorted(path.name for path in (ROOT / "notebooks").glob("[0-9]*.ipynb"))


def test_the_environment_carries_the_course_server_config():
    installed = Path(sys.prefix) / "etc" / "jupyter" / CONFIG.name
    assert installed.is_file(), "run make (the install step copies etc/jupyter into .venv)"
    assert json.loads(installed.read_text()) == json.loads(CONFIG.read_text())
    config = json.loads(CONFIG.read_text())
    assert config["ServerApp"]["allow_root"] is True
    assert "[0-9][0-9]_*.py" in config["ContentsManager"]["hide_globs"]
    # make lab and Binder install the same file
    assert "$(SERVER_CONFIG)" in (ROOT / "Makefile").read_text()
    assert "etc/jupyter/jupyter_server_config.json" in (ROOT / "binder" / "postBuild").read_text()


def test_lab_starts_without_allow_root_and_lists_each_notebook_once():
    # CI runs as root, so starting at all (no --allow-root passed) proves the root case there
    with running_lab(ROOT / "notebooks") as (base, token):
        request = urllib.request.Request(f"{base}/api/contents/",
                                         headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request) as response:
            listing = json.load(response)["content"]
        twin = urllib.request.Request(f"{base}/api/contents/{NOTEBOOKS[0]}?content=0",
                                      headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(twin) as response:
            opened = json.load(response)
    names = sorted(entry["name"] for entry in listing)
    assert [name for name in names if name.endswith(".ipynb")] == NOTEBOOKS
    assert not [name for name in names if name.endswith(".py")], names
    assert opened["type"] == "notebook"
    assert (ROOT / "notebooks" / NOTEBOOKS[0]).with_suffix(".py").is_file()  # twins on disk
