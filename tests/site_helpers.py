"""Build the course site for a test as `make site` builds it (Sphinx, configured in book/)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from pvq import job_store

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def build_site(folder: Path) -> Path:
    """The site built into ``folder/site`` (myst-nb's scratch and the doctrees beside it)."""
    output = folder / "site"
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going",
                           "-d", str(folder / "doctrees"), str(BOOK), str(output)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"the site did not build:\n{done.stderr[-3000:]}"
    return output


def built_site(scratch: Path) -> Path:
    """The site, built once per test session: ``test_site`` and ``test_browser_site`` may run in
    different workers, so it is built into the session's job store (under its lock, so the second
    waits for the first), or into ``scratch`` when there is no store."""
    store = os.environ.get("PVQ_JOB_STORE")
    if not store:
        return build_site(scratch)
    folder = Path(store) / "course-site"
    done = folder / "built"
    hold = job_store.claim(done, wait=True)
    try:
        if not done.exists():
            build_site(folder)
            done.touch()
    finally:
        os.close(hold)
    return folder / "site"


def book_config():
    """book/conf.py as a module (the notebook-to-page rules live there)."""
    spec = importlib.util.spec_from_file_location("book_conf", BOOK / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
