"""Section 6 in a real browser: the Gradio app served locally and driven by Playwright with Debian's chromium.

Needs `pip install playwright` and `apt-get install chromium`. Without them the tests are skipped, or fail
when the CI environment variable is set. Writes docs/ui_screenshot.png.
"""

import importlib.util
import os
import socket
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = ROOT / "docs" / "ui_screenshot.png"
TIMEOUT_MS = 120_000  # generous: a loaded 2-core runner generates a few tokens per second


def missing_requirement():
    """Why a browser cannot be driven here (playwright or chromium missing), or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(lib, embedded_model):
    """The UI around a fresh LoRA on the embedded model, served on 127.0.0.1; closed afterwards."""
    from peft import LoraConfig, get_peft_model

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    model, tokenizer = embedded_model
    wrapped = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                               task_type="CAUSAL_LM"))
    demo = lib.build_ui(wrapped, tokenizer, {"max_new_tokens": 12})
    try:
        yield lib.launch_ui(demo, in_colab=False, port=free_port())
    finally:
        demo.close()
        wrapped.unload()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium driven by Playwright; skipped (failed on CI) when either is missing."""
    reason = missing_requirement()
    if reason and os.environ.get("CI"):
        pytest.fail(f"{reason}: the UI browser tests must run on CI.", pytrace=False)
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, app_url):
    """A page with the app loaded (the browser is checked first, so a missing one skips before the model loads)."""
    page = browser.new_page(viewport={"width": 1280, "height": 960})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url, wait_until="domcontentloaded")  # Gradio keeps a connection open: never "networkidle"
    page.locator("#question textarea").wait_for()
    return page


def bot_texts(page):
    """The text of every assistant message in the chat, in order."""
    return [text.strip() for text in page.locator('#chat [data-testid="bot"]').all_inner_texts()]


def wait_until_settled(read, seconds=2.0):
    """Poll read() until it returns the same truthy value for `seconds` (streaming has paused); return that value."""
    last, since, deadline = None, time.monotonic(), time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        value = read()
        if value != last:
            last, since = value, time.monotonic()
        elif value and time.monotonic() - since >= seconds:
            return value
        time.sleep(0.1)
    raise AssertionError(f"the page did not settle; last value: {last!r}")


def compare_answers(page):
    """The (base, fine-tuned) answers shown in the compare tab."""
    return tuple(page.locator(f"#{box} textarea").input_value().strip() for box in ("base-answer", "tuned-answer"))


def ask(page, question):
    """Type a question in the chat box and press Enter."""
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")


def test_disclaimer_is_visible(page):
    disclaimer = page.locator("#disclaimer")
    assert disclaimer.is_visible()
    assert "Not medical advice" in disclaimer.inner_text() and "emergency number" in disclaimer.inner_text()


def test_a_question_gets_a_streamed_answer(page):
    ask(page, "What is gout?")
    page.locator('#chat [data-testid="user"]', has_text="What is gout?").wait_for()
    texts = wait_until_settled(lambda: [text for text in bot_texts(page) if text])
    assert texts and "Please type" not in texts[-1], "no answer appeared"
    assert page.locator("#question textarea").input_value() == ""  # the box is cleared for the next question


def test_red_flag_notice_comes_before_the_answer(page):
    before = len(bot_texts(page))
    ask(page, "I have crushing chest pain right now")
    page.locator('#chat [data-testid="bot"]', has_text="heart attack").wait_for()
    texts = wait_until_settled(lambda: bot_texts(page)[before:] if len(bot_texts(page)) == before + 2 else None)
    assert "heart attack" in texts[0] and "emergency number" in texts[0]
    assert texts[1] and "heart attack" not in texts[1]  # the model still answers, after the notice
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))


def test_empty_message_gets_a_friendly_prompt(page):
    calls = len(bot_texts(page))
    page.locator("#question textarea").fill("   ")
    page.locator("#send").click()
    page.locator('#chat [data-testid="bot"]', has_text="Please type a medical question").wait_for()
    assert len(bot_texts(page)) == calls + 1


def test_stop_button_ends_a_long_answer(page):
    page.locator("#chat-max-new-tokens input[type=number]").fill("400")
    page.locator("#chat-max-new-tokens input[type=number]").press("Tab")
    before = len(bot_texts(page))
    ask(page, "Describe the causes, symptoms, diagnosis and treatment of heart failure in detail.")
    page.wait_for_function(f"document.querySelectorAll('#chat [data-testid=\"bot\"]').length > {before}")
    page.locator("#stop").click()
    stopped_at = time.monotonic()
    answer = wait_until_settled(lambda: bot_texts(page)[-1], seconds=3.0)
    assert answer and len(answer.split()) < 150, "the answer kept growing after Stop"
    assert time.monotonic() - stopped_at < 30


def test_clear_empties_the_chat(page):
    page.locator("#clear").click()
    page.wait_for_function("document.querySelectorAll('#chat [data-testid=\"bot\"]').length === 0")


def test_compare_tab_shows_two_answers(page):
    page.get_by_role("tab", name="Compare base vs fine-tuned").click()
    page.locator("#compare-question textarea").fill("What is the mechanism of action of metformin?")
    page.locator("#compare").click()
    answers = wait_until_settled(lambda: all(compare_answers(page)) and compare_answers(page))
    assert not any(answer.startswith("❌") for answer in answers)


PAYLOADS = ['<script>window.__pwned = "script"</script>What is gout?',
            '<img src="http://img.attacker.example/x.png" onerror="window.__pwned = \'onerror\'"> chest pain?',
            '<iframe src="http://frame.attacker.example/" onload="window.__pwned = \'iframe\'"></iframe> hello',
            'Look: ![pixel](http://pixel.attacker.example/track.png) is this a rash?',
            'See [my results](http://link.attacker.example/phish) and <a href="javascript:window.__pwned=1">this</a>',
            '<svg onload="window.__pwned = \'svg\'"><circle r="5"/></svg> <b onmouseover="window.__pwned=1">bold</b>']


def outside_host(url):
    """The host of a URL when it is not this machine (127.0.0.1, localhost), else None."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about"):
        return None
    return None if parsed.hostname in ("127.0.0.1", "localhost", "::1", None) else parsed.hostname


def test_chat_renders_nothing_active(page):
    """HTML and Markdown payloads in the chat: no script runs, nothing is fetched from outside, nothing is embedded."""
    page.get_by_role("tab", name="Chat").click()  # an earlier test may have left the compare tab open
    page.locator("#clear").click()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    for payload in PAYLOADS:
        before = len(bot_texts(page))
        ask(page, payload)
        wait_until_settled(lambda: len(bot_texts(page)) > before and bot_texts(page))
    page.wait_for_timeout(1500)  # give an injected image, frame or script the time to load
    chat = page.locator("#chat")
    assert page.evaluate("window.__pwned") is None, "an injected script ran"
    assert chat.locator("script, iframe, object, embed, svg[onload], img[onerror]").count() == 0
    images = chat.locator("img").evaluate_all("nodes => nodes.map(n => n.getAttribute('src'))")
    assert not [src for src in images if src and outside_host(src)], images
    assert not [url for url in requests if outside_host(url) and "attacker" in url], requests
    assert not [url for url in requests if outside_host(url)], f"requests to other hosts: {requests}"
    links = chat.locator("a").evaluate_all("nodes => nodes.map(n => n.getAttribute('href'))")
    assert not [href for href in links if href and href.strip().lower().startswith("javascript:")], links
    assert "my results" in chat.inner_text()  # the text itself is still shown
