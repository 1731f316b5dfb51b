#!/usr/bin/env python3
"""The page of `mvadapter serve` in headless Chromium (ctest label `web`).

Writes a small Shapes dataset (`synth`), encodes its test split with a seeded random Tiny-32 CLIP
(zero-shot: no download, no training), evaluates it twice (8 and 2 frames) so there are two runs
to compare, starts `serve --port 0` on them, then in the browser: types a dataset caption, waits
for the results, checks the ground-truth clip is among them and marked, and that every contact
sheet loaded; opens that video's page and the compare page. Screenshots go to --out.

Exit status 77 (ctest: skipped) when selenium, chromium or chromedriver is missing.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

SKIP = 77

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    print("skipped: python3-selenium is not installed (apt-get install python3-selenium)")
    sys.exit(SKIP)

CONFIG = """name: web_zero_shot
model:
  arch: Tiny-32
  use_adapters: false
  trainable: none
data:
  dataset: msrvtt
  root: {work}/shapes/annotations
  videos: {work}/shapes/videos
  train_split: 9k
  test_split: jsfusion
  frames: 8
  words: 16
  size: 32
  workers: 1
train:
  threads: 1
eval:
  batch_size: 8
"""


def run(cmd):
    t0 = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    print(f"ok ({time.time() - t0:.1f} s): {' '.join(cmd[1:3])} ...")
    return done.stdout


def find_driver():
    for name in ("chromedriver", "/usr/lib/chromium/chromedriver"):
        path = shutil.which(name)
        if path:
            return path
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the mvadapter program")
    ap.add_argument("--out", required=True, help="folder for the screenshots")
    args = ap.parse_args()
    driver_path = find_driver()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not driver_path or not browser:
        print("skipped: chromium and chromium-driver are not installed")
        return SKIP
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="mva_web_")
    env = dict(os.environ, MVA_THREADS="1")
    os.environ.update(env)
    b = args.bin
    run([b, "synth", "--out", f"{work}/shapes", "--seed", "0", "--shapes", "3", "--colors", "2",
         "--train-per-class", "1"])
    cfg = f"{work}/web.yaml"
    with open(cfg, "w") as f:
        f.write(CONFIG.format(work=work))
    run([b, "encode", cfg, "--zero-shot", "--videos", "--out", f"{work}/videos.safetensors"])
    run([b, "encode", cfg, "--zero-shot", "--captions", "--out", f"{work}/captions.safetensors"])
    run([b, "eval", cfg, "--zero-shot", "--quiet", "--out", f"{work}/runs/eight_frames"])
    run([b, "eval", cfg, "--zero-shot", "--quiet", "--set", "data.frames=2", "--out",
         f"{work}/runs/two_frames"])
    with open(f"{work}/runs/eight_frames/ranks.jsonl") as f:
        first = json.loads(f.readline())
    caption, truth = first["caption"], first["video"]

    server = subprocess.Popen(
        [b, "serve", cfg, "--zero-shot", "--index", f"{work}/videos.safetensors", "--captions",
         f"{work}/captions.safetensors", "--port", "0", "--runs", f"{work}/runs/eight_frames",
         f"{work}/runs/two_frames"], stdout=subprocess.PIPE, text=True)
    driver = None
    try:
        line = server.stdout.readline()
        m = re.match(r"serving on (http://127\.0\.0\.1:\d+)", line)
        if not m:
            sys.exit(f"FAILED: serve printed {line!r}")
        url = m.group(1)
        opts = webdriver.ChromeOptions()
        opts.binary_location = browser
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--window-size=1100,900"):
            opts.add_argument(a)
        driver = webdriver.Chrome(service=Service(driver_path), options=opts)
        wait = WebDriverWait(driver, 60)

        # Search: type the caption as a user would, Enter, wait for the cards.
        driver.get(url + "/")
        box = wait.until(EC.presence_of_element_located((By.ID, "q")))
        box.send_keys(caption + Keys.ENTER)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".hit")))
        hits = driver.find_elements(By.CSS_SELECTOR, ".hit")
        ids = [h.get_attribute("data-id") for h in hits]
        assert truth in ids, f"ground truth {truth} not among {ids}"
        marked = [h.get_attribute("data-id") for h in driver.find_elements(By.CSS_SELECTOR, ".hit.gt")]
        assert marked == [truth], f"marked as ground truth: {marked}, expected [{truth}]"
        assert "#/search?q=" in driver.current_url, driver.current_url
        wait.until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('img.sheet')].every(i => i.complete)"))
        widths = driver.execute_script(
            "return [...document.querySelectorAll('img.sheet')].map(i => i.naturalWidth)")
        assert len(widths) == len(ids) and all(w > 0 for w in widths), f"sheet widths {widths}"
        driver.save_screenshot(os.path.join(args.out, "search.png"))
        print(f"ok: search shows {len(ids)} clips, ground truth {truth} marked, sheets loaded")

        # The ground-truth clip's page: its sheet and its closest captions.
        driver.find_element(By.CSS_SELECTOR, ".hit.gt").click()
        wait.until(EC.presence_of_element_located((By.ID, "top-captions")))
        wait.until(lambda d: d.execute_script(
            "const i = document.getElementById('sheet'); return i.complete && i.naturalWidth > 0"))
        assert truth in driver.find_element(By.TAG_NAME, "h1").text
        own = driver.find_elements(By.CSS_SELECTOR, "#top-captions tr.own")
        assert own, "the video's own caption should be among its closest captions (6 in all)"
        driver.save_screenshot(os.path.join(args.out, "video.png"))
        print("ok: video page")

        # Compare: every query listed under "all queries", filtered by text.
        driver.get(url + "/#/compare?a=eight_frames&b=two_frames")
        wait.until(EC.presence_of_element_located((By.ID, "summary")))
        Select(driver.find_element(By.ID, "which")).select_by_value("all")
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.query")
        with open(f"{work}/runs/eight_frames/ranks.jsonl") as f:
            n = sum(1 for _ in f)
        assert len(rows) == n, f"{len(rows)} rows for {n} queries"
        driver.find_element(By.ID, "filter").send_keys(caption)
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.query")
        assert rows and all(caption in r.text for r in rows), [r.text for r in rows]
        driver.save_screenshot(os.path.join(args.out, "compare.png"))
        print("ok: compare page")

        # An unknown video: the error state, not a blank page.
        driver.get(url + "/#/video/" + urllib.parse.quote("no_such_clip", safe=""))
        err = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".status.error")))
        assert "no video 'no_such_clip'" in err.text, err.text
        print("ok: error state")
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
