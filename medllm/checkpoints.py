"""Checkpoints a new runtime can resume from, and the fingerprint that decides whether one matches."""


import hashlib
import json
import shutil
import time
from pathlib import Path

from transformers import TrainerCallback

from .persist import announce

# Checkpoints: when to save one, the manifest that marks it complete, and the hook the fault-injection
# test uses to kill a run mid-training.
CHECKPOINT_MANIFEST = "medllm_checkpoint.json"
CHECKPOINT_MINUTES = 3.0  # default interval between checkpoints of the final training
CHECKPOINTS_KEPT = 2


def file_sha256(path):
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CheckpointEvery(TrainerCallback):
    """Ask the trainer for a checkpoint once `minutes` of training have passed since the last one (0 = every step)."""

    def __init__(self, minutes):
        """Checkpoint once `minutes` of training have passed since the last one."""
        self.seconds = 60 * float(minutes)
        self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        """Request a save when the interval has passed."""
        if time.monotonic() - self.last >= self.seconds and state.global_step < state.max_steps:
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        """Restart the interval after each save."""
        self.last = time.monotonic()


class CheckpointManifest(TrainerCallback):
    """Write the fingerprint and a checksum of every file into each checkpoint, last: it marks it complete."""

    def __init__(self, fingerprint):
        """Remember the fingerprint that each checkpoint's manifest records."""
        self.fingerprint = fingerprint

    def on_save(self, args, state, control, **kwargs):
        """Write medllm_checkpoint.json into the checkpoint that was just saved."""
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not args.should_save or not folder.is_dir():
            return
        files = {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.name != CHECKPOINT_MANIFEST}
        staging = folder / (CHECKPOINT_MANIFEST + ".tmp")
        staging.write_text(json.dumps({"fingerprint": self.fingerprint, "step": state.global_step, "files": files}))
        staging.replace(folder / CHECKPOINT_MANIFEST)


# Which checkpoint to resume from: the newest whose manifest matches this configuration and whose files
# all match their checksums. Anything else is reported and removed, never loaded.
def checkpoint_problem(folder, fingerprint):
    """Why a checkpoint folder can't be resumed from (incomplete, corrupt, other configuration), or None."""
    manifest_path = Path(folder) / CHECKPOINT_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "incomplete: no readable manifest (the save was interrupted or the folder is damaged)"
    if manifest.get("fingerprint") != fingerprint:
        return (f"from another configuration (fingerprint {manifest.get('fingerprint')}, this run {fingerprint}): "
                "refused")
    for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt"):
        if name not in files:
            return f"incomplete: {name} was never written"
    for name, digest in files.items():
        path = Path(folder) / name
        if not path.is_file():
            return f"incomplete: {name} is missing"
        if file_sha256(path) != digest:
            return f"corrupt: {name} does not match its checksum (truncated or overwritten)"
    return None


def find_resume_checkpoint(checkpoint_root, fingerprint):
    """The newest complete checkpoint of this configuration, or None; says why any other one is not used."""
    root = Path(checkpoint_root)
    if root.parent.is_dir():
        for other in sorted(p for p in root.parent.iterdir() if p.is_dir() and p != root):
            announce(f"Not resuming from {other}: it holds checkpoints of another configuration "
                     f"(data, model, LoRA settings or recipe differ). It is removed after this training succeeds.")
    candidates = sorted(root.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if
                        p.name.split("-")[-1].isdigit() else -1, reverse=True)
    for folder in candidates:
        problem = checkpoint_problem(folder, fingerprint)
        if problem is None:
            return folder
        announce(f"Skipping checkpoint {folder}: {problem}. It is removed and never loaded.")
        shutil.rmtree(folder, ignore_errors=True)
    return None
