"""Screenshots of TensorBoard's HParams table, parallel coordinates and Scalars views over a realistic `outputs/`.

    python docs/screenshots/make_screenshots.py            # writes docs/screenshots/*.png
    python docs/screenshots/make_screenshots.py --keep /tmp/shots   # build (or reuse) the outputs/ there

Builds an `outputs/` like the one of tests/tensorboard/test_hparams_views.py, a few epochs longer (two single
runs, a grid over the learning rate with a diverged run, an Optuna search without a test split and with a pruned
trial, a grid over the batch size), serves it with a real `tensorboard` on 127.0.0.1 and drives a headless
Chromium (Debian: `apt-get install chromium`) through its DevTools protocol, with nothing but the standard
library: open a view, click its tab, wait, capture. Needs no network; takes about a minute.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent
TINY = ["data=synthetic", "data.num_samples=256", "model=mlp", "trainer.max_epochs=4", "logging=minimal"]
LEARNS = ["optimizer=sgd", "data.batch_size=32", "model.hidden_sizes=[16]"]
COMMANDS = [
    TINY,
    [*TINY, "optimizer.lr=0.003"],
    ["-m", *TINY, *LEARNS, "optimizer.lr=0.3,0.03,1e30"],
    [
        "-m",
        "hparams_search=synthetic",
        "optimizer=sgd",
        "trainer.max_epochs=4",
        "logging=minimal",
        "optimizer.lr=choice(0.3,0.2,1e-6,2e-6,0.05)",
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.seed=4",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.n_trials=4",
    ],
    ["-m", *TINY, "data.batch_size=16,64", "trainer.seed=1"],
]


def build_outputs(root: Path) -> Path:
    outputs = root / "outputs"
    if outputs.is_dir():
        return outputs
    env = {**os.environ, "TRAINSCOPE_OUTPUT_DIR": str(outputs), "TRAINSCOPE_DATA_DIR": str(root / "data")}
    for args in COMMANDS:
        subprocess.run([sys.executable, "train.py", *args], cwd=REPO, env=env, capture_output=True, check=False)
    return outputs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DevTools:
    """The smallest client of Chromium's DevTools protocol: one page, one websocket, JSON commands."""

    def __init__(self, port: int) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                    pages = [page for page in json.loads(response.read()) if page["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("error: headless chromium did not start")
            time.sleep(0.2)
        path = pages[0]["webSocketDebuggerUrl"].split(f":{port}", 1)[1]
        self.sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        header = b""
        while b"\r\n\r\n" not in header:
            header += self.sock.recv(1)
        self.next_id = 0

    def _send(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        size = len(payload)
        head = struct.pack("!B", 0x81)
        if size < 126:
            head += struct.pack("!B", 0x80 | size)
        elif size < 65536:
            head += struct.pack("!BH", 0x80 | 126, size)
        else:
            head += struct.pack("!BQ", 0x80 | 127, size)
        self.sock.sendall(head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload)))

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            data += self.sock.recv(count - len(data))
        return data

    def _receive(self) -> str:
        message = b""
        while True:
            first, second = self._exactly(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._exactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._exactly(8))
            message += self._exactly(size)
            if first & 0x80:
                return message.decode()

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._receive())
            if reply.get("id") == self.next_id:
                return reply.get("result", {})

    def evaluate(self, expression: str) -> object:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True).get("result", {}).get("value")

    def shot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"{path}: {path.stat().st_size // 1024} KB")


# Clicks the element whose own text is `label`, searching through every shadow root (TensorBoard's Polymer views).
CLICK = """
(label => {
  const walk = root => {
    for (const element of root.querySelectorAll('*')) {
      if (element.shadowRoot) { const found = walk(element.shadowRoot); if (found) return found; }
      if (element.textContent.trim().toLowerCase() === label.toLowerCase() && element.children.length <= 1)
        return element;
    }
    return null;
  };
  const target = walk(document);
  if (target) target.click();
  return Boolean(target);
})(%s)
"""


# Ticks the HParams tab's column checkboxes named in `keys` that are not ticked yet; returns the names it ticked.
TICK = """
(keys => {
  const ticked = [];
  const walk = root => {
    for (const element of root.querySelectorAll('*')) {
      if (element.shadowRoot) walk(element.shadowRoot);
      if (element.tagName === 'PAPER-CHECKBOX' && keys.includes(element.textContent.trim()) && !element.checked) {
        element.click();
        ticked.push(element.textContent.trim());
      }
    }
  };
  walk(document);
  return ticked;
})(%s)
"""


def swept_keys(outputs: Path) -> list[str]:
    """Every key a sweep under `outputs` swept: TensorBoard ticks five columns at first, these are the ones to see."""
    keys = {key for record in outputs.glob("multirun/*/*/.swept_keys.json") for key in json.loads(record.read_text())}
    return sorted(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the outputs/ in this folder")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        raise SystemExit("error: no chromium found: install it (Debian: apt-get install chromium)")
    root = args.keep or Path(tempfile.mkdtemp(prefix="trainscope-shots-"))
    outputs = build_outputs(root)
    board_port, browser_port = free_port(), free_port()
    board = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(outputs), "--host", "127.0.0.1",
         "--port", str(board_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={browser_port}",
         "--window-size=1700,950", "--hide-scrollbars", f"--user-data-dir={root / 'chromium'}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        tools = DevTools(browser_port)
        tools.call("Emulation.setDeviceMetricsOverride", width=1700, height=950, deviceScaleFactor=1, mobile=False)
        url = f"http://127.0.0.1:{board_port}/"
        time.sleep(5)  # the server's first load of the logdir
        tools.call("Page.navigate", url=url + "#hparams")
        time.sleep(8)
        # What a user does first: tick the swept keys the five columns shown at first leave out (which five
        # those are depends on the run TensorBoard read first; see trainscope/tensorboard/hparams.py).
        print("ticked:", tools.evaluate(TICK % json.dumps(swept_keys(outputs))))
        time.sleep(2)
        tools.shot(SHOTS / "hparams_table.png")
        tools.evaluate(CLICK % json.dumps("Parallel Coordinates View"))
        time.sleep(4)
        tools.shot(SHOTS / "hparams_parallel_coordinates.png")
        tools.call("Page.navigate", url=url + "#timeseries")
        time.sleep(8)
        tools.shot(SHOTS / "scalars.png")
    finally:
        browser.terminate()
        board.terminate()
        browser.wait(timeout=30)
        board.wait(timeout=30)


if __name__ == "__main__":
    main()
