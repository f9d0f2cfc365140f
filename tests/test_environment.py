"""The pins of requirements.txt, pyproject.toml and both conda files cannot drift apart."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version
from rattler import MatchSpec
from rattler import Version as CondaVersion
from rattler import VersionSpec

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}
TEST_ONLY = {"pytest", "hypothesis", "nbval", "pytest-xdist", "psutil", "py-rattler", "pyyaml", "playwright"}


def pip_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line).groups()
            pins[name.lower()] = version
    return pins


def conda_specs(path: Path) -> dict[str, MatchSpec]:
    """Each conda package of a conda file (its ``pip:`` section: ``conda_pip_section``)."""
    dependencies = yaml.safe_load(path.read_text())["dependencies"]
    specs = [MatchSpec(item) for item in dependencies if isinstance(item, str)]
    return {spec.name.normalized: spec for spec in specs if spec.name.normalized not in {"python", "pip"}}


def conda_pip_section(path: Path) -> dict[str, str]:
    """The exact pins of a conda file's ``pip:`` section (packages conda-forge lacks)."""
    dependencies = yaml.safe_load(path.read_text())["dependencies"]
    lines = [line for item in dependencies if isinstance(item, dict) for line in item.get("pip", [])]
    return dict(re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups() for line in lines)


def test_torch_is_pinned_to_the_cpu_build():
    assert pip_pins()["torch"] == "2.13.0"
    for path in (ROOT / "environment.yml", ROOT / "binder/environment.yml"):
        spec = conda_specs(path)["pytorch"]
        assert str(spec.build).startswith("cpu"), f"{path.name}: pytorch must be a cpu_* build"


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_conda_file_names_the_same_packages_and_versions(path):
    pins = pip_pins()
    specs = conda_specs(ROOT / path)
    through_pip = conda_pip_section(ROOT / path)
    assert {name: pins.get(name) for name in through_pip} == through_pip, (path, "pip section")
    expected = {CONDA_NAMES.get(name, name) for name in pins if name not in through_pip}
    if path.startswith("binder"):
        expected -= TEST_ONLY
    assert set(specs) == expected
    for name, version in pins.items():
        spec = specs.get(CONDA_NAMES.get(name, name))
        if spec is not None:
            assert VersionSpec(str(spec.version)).matches(CondaVersion(version)), (path, name)


def test_pyproject_ranges_admit_the_pins():
    pins = pip_pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # the "extract" extra regenerates shipped data in a venv of its own, outside the course's pins
    declared = project["dependencies"] + [
        dep for name, group in project["optional-dependencies"].items() if name != "extract"
        for dep in group
    ]
    for text in declared:
        requirement = Requirement(text)
        name = requirement.name.lower()
        assert name in pins, f"{name} is a dependency but has no pin in requirements.txt"
        assert requirement.specifier.contains(Version(pins[name])), (name, pins[name])
    runtime = {Requirement(text).name.lower() for text in declared}
    assert set(pins) - runtime <= {"pyyaml"}, "every pin should be declared in pyproject.toml"
