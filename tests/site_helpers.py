"""Build the course site for a test as `make site` builds it (Sphinx, configured in book/)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

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


def book_config():
    """book/conf.py as a module (the notebook-to-page rules live there)."""
    spec = importlib.util.spec_from_file_location("book_conf", BOOK / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
