"""The Launch-on-Binder path: the README badge, the repository address and what Binder builds.

Binder cannot be reached from CI (no network), so these tests check everything it reads from the
repository: the badge opens JupyterLab on notebook 1 of the repository named in ``pyproject.toml``,
and ``binder/`` holds an environment file and an executable ``postBuild``.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_NOTEBOOK = "notebooks/01_quantizers_and_pruners.ipynb"
BADGE = re.compile(r"\[!\[Launch on Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]"
                   r"\((?P<url>[^)]+)\)")


def repository_url() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def binder_url(repository: str, branch: str = "main", notebook: str = FIRST_NOTEBOOK) -> str:
    """mybinder.org's address for a GitHub repository, opening JupyterLab on ``notebook``."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(\.git)?/?", repository)
    if match is None:
        raise ValueError("repository must be a https://github.com/OWNER/NAME address, "
                         f"got {repository!r}")
    owner, name = match.group(1), match.group(2)
    return f"https://mybinder.org/v2/gh/{owner}/{name}/{branch}?urlpath=lab/tree/{notebook}"


def test_readme_badge_launches_the_first_notebook_of_this_repository():
    found = BADGE.search((ROOT / "README.md").read_text())
    expected = binder_url(repository_url())
    assert found is not None and found["url"] == expected, (
        f"README.md needs the badge\n[![Launch on Binder](https://mybinder.org/badge_logo.svg)]"
        f"({expected})")
    urlpath = parse_qs(urlparse(found["url"]).query)["urlpath"][0]
    assert urlpath.startswith("lab/tree/") and (ROOT / urlpath.removeprefix("lab/tree/")).is_file()


def test_binder_url_refuses_a_non_github_address():
    with pytest.raises(ValueError, match="repository"):
        binder_url("https://example.org/pvq.git")
    assert binder_url("https://github.com/a/b.git").startswith(
        "https://mybinder.org/v2/gh/a/b/main?")


def test_origin_remote_matches_the_badge_when_it_is_on_github():
    origin = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"],
                            capture_output=True, text=True)
    if origin.returncode != 0 or "github.com" not in origin.stdout:
        pytest.skip("no GitHub origin remote: pyproject.toml's repository address is used as is")
    remote = origin.stdout.strip().replace("git@github.com:", "https://github.com/")
    assert binder_url(remote) == binder_url(repository_url())


def test_binder_folder_is_what_repo2docker_builds_from():
    post_build = ROOT / "binder" / "postBuild"
    assert (ROOT / "binder" / "environment.yml").is_file()
    assert os.access(post_build, os.X_OK), "repo2docker runs postBuild only when it is executable"
    assert post_build.read_text().startswith("#!")
