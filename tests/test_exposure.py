"""Secrets and exposure: the Hugging Face token is never shown, the UI binds to 127.0.0.1, no remote code."""

import subprocess
import sys
import types
from pathlib import Path

import pytest

from conftest import ROOT

FAKE = "hf_FakeTokenForTests0123456789abcdef"


def test_token_comes_from_the_environment_and_is_never_printed(lib, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE)
    assert lib.find_hf_token() == (FAKE, "environment")
    assert lib.use_hf_token() == "environment"
    assert lib.find_hf_token({}) == (None, None)
    assert FAKE not in capsys.readouterr().out


def test_token_comes_from_colab_secrets_first(lib, monkeypatch):
    userdata = types.SimpleNamespace(get=lambda name: "hf_FromColabSecret" if name == "HF_TOKEN" else None)
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)
    monkeypatch.setenv("HF_TOKEN", FAKE)
    assert lib.find_hf_token() == ("hf_FromColabSecret", "Colab secret")

    def refuse(name):
        raise RuntimeError("notebook access not granted")  # what userdata raises without access

    userdata.get = refuse
    assert lib.find_hf_token() == (FAKE, "environment")


class FakeDemo:
    """Records the arguments launch_ui passes to Gradio's launch."""

    def launch(self, **kwargs):
        """Remember the keyword arguments; return (app, local URL, share URL) like gradio."""
        self.kwargs = kwargs
        return None, "http://127.0.0.1:7860/", "https://x.gradio.live" if kwargs.get("share") else None


@pytest.mark.parametrize("in_colab", [False, True])
def test_ui_binds_to_localhost_with_a_share_link_only_on_colab(lib, in_colab):
    demo = FakeDemo()
    url = lib.launch_ui(demo, in_colab=in_colab)
    assert demo.kwargs["server_name"] == "127.0.0.1"  # never 0.0.0.0, whatever GRADIO_SERVER_NAME says
    assert bool(demo.kwargs.get("share")) is in_colab
    assert url == ("https://x.gradio.live" if in_colab else "http://127.0.0.1:7860/")


@pytest.mark.notorch
def test_no_remote_code_is_trusted_anywhere():
    needle = "trust_remote" + "_code"  # split so this file does not match itself
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    code = [name for name in tracked if Path(name).suffix in {".py", ".ipynb", ".sh", ".yaml", ".yml", ".toml", ".cfg"}]
    hits = [name for name in code if (ROOT / name).is_file()
            and needle in (ROOT / name).read_text(encoding="utf-8", errors="ignore")]  # docs may name it
    assert hits == [], f"{needle} appears in {hits}"
