"""binder/requirements.txt installs what pyproject.toml needs, with bounds pyproject.toml accepts."""

from __future__ import annotations

import re

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder" / "requirements.txt"


def runtime_requirements() -> dict[str, Requirement]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {canonicalize_name(r.name): r for r in map(Requirement, deps)}


def binder_lines() -> list[str]:
    return [ln.split(" #")[0].strip() for ln in BINDER.read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def binder_requirements() -> dict[str, Requirement]:
    reqs = {}
    for ln in binder_lines():
        if ln.startswith("-") or ln in (".", "./") or ln.startswith(("./", "file:")):
            continue
        req = Requirement(ln)
        reqs[canonicalize_name(req.name)] = req
    return reqs


def probe_versions(*specs: SpecifierSet) -> list[Version]:
    """Versions at and around every bound the specifiers mention: enough to see one allow what another refuses."""
    out: set[Version] = set()
    for spec in specs:
        for s in spec:
            if s.operator in ("==", "===") and "*" not in s.version:
                out.add(Version(s.version))  # the pin itself: `==2.9.1+cpu` allows that build and nothing around it
            rel = [int(p) for p in re.findall(r"\d+", s.version.split("+")[0])[:3]]
            rel += [0] * (3 - len(rel))
            for i in range(3):
                for d in (-1, 0, 1):
                    v = rel.copy()
                    v[i] += d
                    if v[i] >= 0:
                        out.add(Version(".".join(map(str, v[:i + 1] + [0] * (2 - i)))))
                        out.add(Version(".".join(map(str, v))))
    return sorted(out)


def test_binder_installs_the_project_itself():
    assert "." in binder_lines(), "binder/requirements.txt must end with `.` so Binder installs softmax-widgets"


def test_every_runtime_dependency_is_named_with_compatible_bounds():
    runtime, binder = runtime_requirements(), binder_requirements()
    missing = sorted(set(runtime) - set(binder))
    assert not missing, f"binder/requirements.txt does not name {missing}"
    for name, req in runtime.items():
        bspec = binder[name].specifier
        probes = probe_versions(req.specifier, bspec)
        allowed = [v for v in probes if bspec.contains(v, prereleases=True)]
        assert allowed, f"binder's {name}{bspec} allows none of {probes}"
        refused = [str(v) for v in allowed if not req.specifier.contains(v, prereleases=True)]
        assert not refused, f"binder allows {name} {refused}, which pyproject.toml's {name}{req.specifier} refuses"


def test_binder_names_nothing_that_pyproject_does_not_need():
    """In step both ways: a package only Binder installs would be one that `pip install .` lacks elsewhere."""
    extra = sorted(set(binder_requirements()) - set(runtime_requirements()))
    assert not extra, f"binder/requirements.txt installs {extra}, which pyproject.toml's dependencies do not name"


def cuda_only(name: str) -> bool:
    """What the CUDA build of torch brings beside it: NVIDIA's libraries, the CUDA toolkit wheels, Triton."""
    name = canonicalize_name(name)
    return name.startswith(("nvidia-", "cuda-", "cupy")) or name in {"triton", "pytorch-triton"}


def test_what_the_cuda_build_brings_is_what_cuda_only_names():
    """The rule below is checked against a real CUDA build's metadata where this venv has one (torch+cuXXX)."""
    from importlib import metadata

    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        pytest.skip("no torch installed")
    if "+cu" not in version and not any("nvidia" in r for r in metadata.requires("torch") or []):
        pytest.skip(f"torch {version} is not a CUDA build: nothing to learn the CUDA packages from")
    brought = [Requirement(r).name for r in metadata.requires("torch") or [] if "extra ==" not in r]
    cuda = [n for n in brought if cuda_only(n)]
    assert cuda, f"torch {version} is a CUDA build but cuda_only() sees none of its {brought}"
    plain = {"filelock", "typing-extensions", "setuptools", "sympy", "networkx", "jinja2", "fsspec"}
    unknown = [n for n in brought if not cuda_only(n) and canonicalize_name(n) not in plain]
    assert not unknown, f"torch {version} brings {unknown}: CUDA-only or not? Teach cuda_only() the answer"


def test_the_image_needs_nothing_that_the_cuda_build_brings():
    """No nvidia-*/cuda-*/triton named, torch and torchvision pinned to their +cpu builds (only the CPU index has
    those), no CUDA local version anywhere, and no file that repo2docker would read before requirements.txt."""
    named = {**runtime_requirements(), **binder_requirements()}
    cuda = sorted(n for n in named if cuda_only(n))
    assert not cuda, f"the Binder image would install {cuda}, which only the CUDA build needs"
    for name in ("torch", "torchvision"):
        pins = [s.version for s in binder_requirements()[name].specifier if s.operator == "=="]
        assert pins and all(Version(v).local == "cpu" for v in pins), f"pin {name} to its +cpu build, got {pins}"
    for ln in binder_lines():
        assert not re.search(r"\+cu\d", ln), f"a CUDA build in binder/requirements.txt: {ln}"
    # repo2docker takes environment.yml (conda: its own torch, maybe CUDA) or a Pipfile over requirements.txt
    ignored = sorted(p.name for p in (REPO / "binder").iterdir()
                     if p.name in {"environment.yml", "Pipfile", "Pipfile.lock", "setup.py", "install.R"})
    assert not ignored, f"binder/{ignored} would replace requirements.txt as what repo2docker installs"


def test_probe_catches_an_incompatible_bound():
    # the check above is only as good as its probes: ipykernel 7.1 must be seen as refused
    spec = SpecifierSet(">=6.25,!=7.0.*,!=7.1.*,!=7.2.*,!=7.3.*")
    loose = SpecifierSet(">=7")
    assert any(loose.contains(v) and not spec.contains(v) for v in probe_versions(spec, loose))


def test_torch_and_torchvision_are_a_pinned_cpu_pair_of_one_release():
    binder = binder_requirements()
    torch_pin = [s.version for s in binder["torch"].specifier if s.operator == "=="]
    vision_pin = [s.version for s in binder["torchvision"].specifier if s.operator == "=="]
    assert torch_pin and vision_pin, "pin torch and torchvision with == so the pair cannot drift apart"
    t, v = Version(torch_pin[0]), Version(vision_pin[0])
    # torchvision 0.(N+15) is built for torch 2.N (0.15 <-> 2.0 ... 0.24 <-> 2.9 ... 0.29 <-> 2.14)
    assert (t.major, v.major) == (2, 0) and v.minor == t.minor + 15, f"torch {t} and torchvision {v} do not pair"
    index = [ln for ln in binder_lines() if ln.startswith("--extra-index-url")]
    assert any(ln.rstrip("/").endswith("/whl/cpu") for ln in index), "Binder needs the CPU wheel index"


@pytest.mark.parametrize("notebook", ["examples/02_dashboard.ipynb"])
def test_binder_link_opens_a_notebook_that_exists(notebook):
    readme = (REPO / "README.md").read_text()
    links = re.findall(r"https://mybinder\.org/v2/gh/[^)\s]+", readme)
    assert links, "README.md needs a Binder badge"
    assert any(link.endswith(f"urlpath=lab/tree/{notebook}") for link in links), links
    assert (REPO / notebook).exists()


def test_readme_first_screen_and_links():
    """The README opens with the picture, the two commands and the badge; every relative link it has exists."""
    readme = (REPO / "README.md").read_text()
    first = readme[: readme.index("## The Trainer in ten lines")]
    for part in ("make lab", "make test", "docs/dashboard-1366x768.png", "mybinder.org"):
        assert part in first, part
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        targets = re.findall(r"\]\(([^)#\s]+)[^)]*\)", text) + re.findall(r'src="([^"]+)"', text)
        for target in targets:
            if "://" in target:
                continue
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}, which does not exist"
