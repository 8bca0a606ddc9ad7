"""The install step: what requirements.txt asks for, what the runtime lacks, and what breaks the stack."""

import importlib
import importlib.metadata
import os
import subprocess
import sys

# On Colab (and Kaggle) the notebook installs its requirements first and prints one line of what it changed; a
# second Run all finds everything in place and skips pip. Elsewhere, install them yourself: `pip install -r
# requirements.txt` (the README has one command for it), or set `MEDLLM_INSTALL=1` to let this step do it.
# Besides what is missing, it removes what Colab ships that breaks the stack: **torchao 0.10.0**, which makes PEFT
# refuse to add any LoRA layer (`ImportError: Found an incompatible version of torchao`); nothing here uses it.
REQUIREMENTS = [  # generated from requirements.txt by tools/build_notebook.py: edit that file, not this list
    'transformers>=5.21,<6',
    'peft>=0.18,<1',
    'trl>=1.0,<2',
    'datasets>=4.7,<6',
    'accelerate>=1.10,<2',
    'bitsandbytes>=0.46,<1',
    'gguf>=0.17,<1',
    'rouge-score==0.1.2',
    'sacrebleu>=2.4,<3',
    'ftfy>=6.2,<7',
    'gradio>=5.40,<7',
    'pandas>=2.2,<4',
    'pyarrow>=15,<30',
    'google-re2>=1.1,<2',
    'matplotlib>=3.9,<4',
    'markdown-it-py>=3,<5',
    'sentencepiece>=0.2,<0.3',
]
# installed distributions that break the stack, with the version they need: (name, minimum, why)
BREAKING = [("torchao", "0.16", "PEFT refuses torchao below 0.16 (peft/import_utils.py); nothing here uses it")]


def hosted_runtime(modules=None, environ=None):
    """'colab' or 'kaggle' when this kernel runs on one of them, else None."""
    modules, environ = sys.modules if modules is None else modules, os.environ if environ is None else environ
    if "google.colab" in modules:
        return "colab"
    return "kaggle" if environ.get("KAGGLE_KERNEL_RUN_TYPE") else None


def install_wanted(modules=None, environ=None):
    """Whether the install step runs: on Colab or Kaggle, or when MEDLLM_INSTALL=1 (MEDLLM_INSTALL=0: never)."""
    choice = (os.environ if environ is None else environ).get("MEDLLM_INSTALL", "auto").strip().lower()
    if choice in {"1", "true", "yes", "always"}:
        return True
    return choice not in {"0", "false", "no", "never"} and hosted_runtime(modules, environ) is not None


def canonical_name(name):
    """A distribution name as pip compares them (PEP 503: runs of -, _ and . become one -, lower case)."""
    return "-".join(part for part in name.lower().replace("_", "-").replace(".", "-").split("-") if part)


def installed_versions():
    """{canonical distribution name: version} of everything installed now."""
    importlib.invalidate_caches()
    return {canonical_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
            if d.metadata["Name"]}


def unmet_requirements(requirements, versions, requires=importlib.metadata.requires):
    """Requirements not met by `versions`, their dependencies' included (what pip would have to change)."""
    from packaging.requirements import Requirement

    unmet, seen, todo = [], set(), [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop(0)
        name = canonical_name(requirement.name)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if versions.get(name) is None or not requirement.specifier.contains(versions[name], prereleases=True):
            unmet.append(str(requirement))
        elif name not in seen:
            seen.add(name)
            todo += [Requirement(spec) for spec in requires(name) or []]
    return unmet


# What the step changes, in one line, and the check after it: a package that this session had already imported
# (Colab's kernel imports numpy and pandas, and pandas imports pyarrow, before the first cell) and that pip replaced
# keeps running its old copy, so the run stops and names the menu item that restarts it.
WATCHED_DISTRIBUTIONS = {  # module name -> distribution name, for modules a Colab runtime may import early
    "numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow", "huggingface_hub": "huggingface-hub",
    "transformers": "transformers", "peft": "peft", "trl": "trl", "datasets": "datasets", "accelerate": "accelerate",
    "tokenizers": "tokenizers", "safetensors": "safetensors", "gradio": "gradio", "bitsandbytes": "bitsandbytes",
    "fsspec": "fsspec", "torchao": "torchao",
}


def breaking_packages(versions, breaking=BREAKING):
    """[(name, version, why)] of installed packages that break the stack at their installed version."""
    from packaging.version import Version

    return [(name, versions[name], why) for name, minimum, why in breaking
            if name in versions and Version(versions[name]) < Version(minimum)]


def describe_changes(before, after, reasons=None):
    """One line saying what was added, changed and removed between two {name: version} snapshots."""
    reasons = reasons or {}
    added = [f"{n} {after[n]}" for n in sorted(after) if n not in before]
    changed = [f"{n} {before[n]} → {after[n]}" for n in sorted(after) if n in before and before[n] != after[n]]
    removed = [f"{n} {before[n]}" + (f" ({reasons[n]})" if n in reasons else "") for n in sorted(before)
               if n not in after]
    parts = [f"{label} {', '.join(items)}" for label, items in
             (("added", added), ("changed", changed), ("removed", removed)) if items]
    return "Install step: " + ("; ".join(parts) if parts else "pip ran and changed nothing") + "."


def install_requirements(requirements=None, run=subprocess.run):
    """Remove what breaks the stack, pip-install what is missing or out of range; return one line of what changed."""
    requirements = REQUIREMENTS if requirements is None else requirements
    before = installed_versions()
    unmet, breaking = unmet_requirements(requirements, before), breaking_packages(before)
    if not unmet and not breaking:
        return "Install step: nothing to change (every requirement is met)."
    if breaking:
        run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *[name for name, _, _ in breaking]], check=True)
    if unmet:
        run([sys.executable, "-m", "pip", "install", "-q", *requirements], check=True)
    return describe_changes(before, installed_versions(), {name: why for name, _, why in breaking})


def stale_imports(modules=None, installed_version=importlib.metadata.version):
    """Modules already imported whose installed version changed since: [(module, loaded, installed)]."""
    modules = sys.modules if modules is None else modules
    stale = []
    for name, distribution in WATCHED_DISTRIBUTIONS.items():
        loaded = getattr(modules.get(name), "__version__", None)
        if loaded is None:
            continue
        try:
            installed = installed_version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue  # removed: the loaded copy still works, nothing newer to miss
        if installed != loaded:
            stale.append((name, loaded, installed))
    return stale


def require_fresh_imports(modules=None, installed_version=importlib.metadata.version):
    """Stop when pip replaced a package this session had already imported (the old copy would keep running)."""
    stale = stale_imports(modules, installed_version)
    if stale:
        changes = ", ".join(f"{name} {loaded} → {installed}" for name, loaded, installed in stale)
        raise RuntimeError(f"The install step replaced packages this session had already imported ({changes}); the "
                           "old copies are still loaded. Choose Runtime → Restart session, then Runtime → Run all: "
                           "the second install step finds everything in place and takes a second.")
