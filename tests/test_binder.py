"""The Launch-on-Binder path: the README badge, the repository address and what Binder builds.

Binder cannot be reached from CI (no network), so these tests check everything it reads from the
repository: the badge opens JupyterLab on notebook 1 of the student edition (``student/``, built by
``binder/postBuild`` from the committed master of the same name) of the repository named in
``pyproject.toml``, the README also links the teacher's edition (the masters, with solutions), and
``binder/`` holds an environment file and an executable ``postBuild``.
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
STUDENT_NOTEBOOK = "student/01_quantizers_and_pruners.ipynb"
BADGE = re.compile(r"\[!\[Launch on Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]"
                   r"\((?P<url>[^)]+)\)")
TEACHER_LINK = re.compile(r"\[teacher's edition with solutions\]\((?P<url>[^)]+)\)")
STUDENT_BUILD = "python scripts/build_student_edition.py --output student"


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


def test_readme_badge_launches_the_student_edition_of_this_repository():
    found = BADGE.search((ROOT / "README.md").read_text())
    expected = binder_url(repository_url(), notebook=STUDENT_NOTEBOOK)
    assert found is not None and found["url"] == expected, (
        f"README.md needs the badge\n[![Launch on Binder](https://mybinder.org/badge_logo.svg)]"
        f"({expected})")
    urlpath = parse_qs(urlparse(found["url"]).query)["urlpath"][0]
    student = Path(urlpath.removeprefix("lab/tree/"))
    # student/ is built at image build time from the committed master of the same name
    assert urlpath.startswith("lab/tree/student/") and (ROOT / "notebooks" / student.name).is_file()
    assert STUDENT_BUILD in (ROOT / "binder" / "postBuild").read_text()
    assert "take the course" in (ROOT / "README.md").read_text()


def test_readme_links_the_teachers_edition_with_solutions():
    found = TEACHER_LINK.search((ROOT / "README.md").read_text())
    assert found is not None and found["url"] == binder_url(repository_url()), (
        f"README.md needs [teacher's edition with solutions]({binder_url(repository_url())})")
    assert (ROOT / FIRST_NOTEBOOK).is_file()


def test_make_student_builds_what_binder_builds():
    makefile = (ROOT / "Makefile").read_text()
    assert "$(BIN)/" + STUDENT_BUILD in makefile
    assert "lab-student: student\n\t$(BIN)/jupyter lab --ServerApp.root_dir=student" in makefile


def test_binder_url_refuses_a_non_github_address():
    with pytest.raises(ValueError, match="repository"):
        binder_url("https://example.org/pvq.git")
    assert binder_url("https://github.com/a/b.git").startswith(
        "https://mybinder.org/v2/gh/a/b/main?")


def github_origin(checkout: Path) -> str | None:
    """The https address of the checkout's ``origin`` remote if it is on GitHub, else None."""
    origin = subprocess.run(["git", "-C", str(checkout), "remote", "get-url", "origin"],
                            capture_output=True, text=True)
    if origin.returncode != 0 or "github.com" not in origin.stdout:
        return None
    return origin.stdout.strip().replace("git@github.com:", "https://github.com/")


def test_github_origin_reads_ssh_and_https_remotes(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert github_origin(tmp_path) is None
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin",
                    "git@github.com:someone/fork.git"], check=True)
    assert github_origin(tmp_path) == "https://github.com/someone/fork.git"


def test_a_github_origin_remote_agrees_with_the_badge():
    """Without a GitHub origin (a local clone, CI) pyproject.toml's address stands alone."""
    origin = github_origin(ROOT)
    assert origin is None or binder_url(origin) == binder_url(repository_url()), (
        f"origin {origin} is not the repository in pyproject.toml ({repository_url()})")


def test_binder_folder_is_what_repo2docker_builds_from():
    post_build = ROOT / "binder" / "postBuild"
    assert (ROOT / "binder" / "environment.yml").is_file()
    assert os.access(post_build, os.X_OK), "repo2docker runs postBuild only when it is executable"
    assert post_build.read_text().startswith("#!")
