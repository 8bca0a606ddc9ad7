"""The Space folder's app.py and REPORT.html in a real browser (Playwright with Debian's chromium).

The Space is started the way a user (or Hugging Face) starts it, `python app.py` in results/space/, from a folder
outside the project, so it runs on the copy of medllm that the folder carries; offline, on the embedded model.
"""

import os
import socket
import subprocess
import sys
import time

import pytest
from test_report import make_run
from test_ui_browser import TIMEOUT_MS, ask, bot_texts, browser, free_port, wait_until_settled  # noqa: F401

BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"


def wait_for_port(port, process, seconds=240):
    """Wait until something listens on 127.0.0.1:port; fail with the app's output if it exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"app.py exited with {process.returncode}:\n{process.stdout.read()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"app.py did not listen on port {port} within {seconds} s")


@pytest.fixture(scope="module")
def space_url(lib, embedded_model, tmp_path_factory):
    """results/space/ written for a fresh LoRA on the embedded model, served by `python app.py`; stopped after."""
    from peft import LoraConfig, get_peft_model

    model, tokenizer = embedded_model
    out = tmp_path_factory.mktemp("space-run") / "results"
    wrapped = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                               task_type="CAUSAL_LM"))
    try:
        wrapped.save_pretrained(out / "models" / "final_adapter")
    finally:
        wrapped.unload()
    tokenizer.save_pretrained(out / "models" / "final_adapter")
    lib.decoding_config(model, tokenizer, {"do_sample": False}, 12).save_pretrained(out / "models" / "final_adapter")
    space = lib.write_space(out, BASE, None, {"max_new_tokens": 12, "decoding": "greedy"})
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONPATH": ""}
    process = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_space_app_answers_a_question_with_its_rails(browser, space_url):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 960})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(space_url, wait_until="domcontentloaded")
    page.locator("#question textarea").wait_for()
    assert "Not medical advice" in page.locator("#disclaimer").inner_text()
    assert "greedy" in page.locator("#decoding").inner_text()  # the decoding recorded in space_config.json
    ask(page, "What is gout?")
    page.locator('#chat [data-testid="user"]', has_text="What is gout?").wait_for()
    texts = wait_until_settled(lambda: [text for text in bot_texts(page) if text])
    assert texts and "Please type" not in texts[-1], "the Space's app gave no answer"
    before = len(bot_texts(page))
    ask(page, "I have crushing chest pain right now")
    page.locator('#chat [data-testid="bot"]', has_text="heart attack").wait_for()  # the rails came with it
    assert len(bot_texts(page)) > before
    page.close()


@pytest.fixture()
def report_file(lib, tmp_path):
    """REPORT.html of a complete results folder whose plots are real PNGs drawn by matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = make_run(tmp_path / "results", lib)
    for name in ("data_lengths", "experiment_comparison", "training_curves", "evaluation_comparison",
                 "knowledge_accuracy"):
        figure, axis = plt.subplots(figsize=(6, 3))
        axis.plot([1, 2, 3], [3, 1, 2])
        axis.set_title(name)
        figure.savefig(out / "visualizations" / f"{name}.png", dpi=80)
        plt.close(figure)
    lib.write_report(out)
    return lib.write_report_html(out)


def test_report_html_shows_tables_and_plots_and_prints(browser, report_file):  # noqa: F811
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(report_file.as_uri(), wait_until="load")
    tables = page.locator("table")
    assert tables.count() == report_file.read_text().count("<table>") >= 5
    assert page.locator("table").first.locator("tr").count() >= 2
    images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth, i.src.slice(0, 22)])")
    assert len(images) == 5 and all(done and width > 0 and src == "data:image/png;base64," for done, width, src in
                                    images)
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 794, "height": 1123})  # an A4 page at 96 dpi: nothing may stick out of it
    too_wide = page.evaluate("[...document.body.querySelectorAll('*')].filter(e => e.getBoundingClientRect()"
                             ".right > document.documentElement.clientWidth + 1).length")
    assert too_wide == 0
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    page.close()
