"""Run a KeyReader on this process's stdin, for tests/test_keys.py: ``python keys_child.py MODE``.

Prints ``READY active=…`` once reading, then ``KEY:<repr>`` for every key. The key "x" ends the
block normally, "!" raises inside it. MODE "ctty" makes stdin (a pty slave) the controlling
terminal first, so Ctrl-C on it is a SIGINT here; "plain" leaves it not controlling (the test
then hangs it up, for end of input) and prints ``EOF`` once the reader thread has stopped.
SIGTERM becomes SystemExit, as in the CLI.
"""

from __future__ import annotations

import fcntl
import queue
import signal
import sys
import termios
import time

from coach.session.keys import KeyReader


def main(mode: str) -> int:
    if mode == "ctty":
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the test started us in a new session
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    keys: queue.Queue[str] = queue.Queue()

    def on_key(key: str) -> None:
        print(f"KEY:{key!a}", flush=True)
        keys.put(key)

    try:
        with KeyReader(on_key) as reader:
            print(f"READY active={reader.active}", flush=True)
            deadline = time.monotonic() + 20  # never outlive a broken test
            while time.monotonic() < deadline:
                if mode == "plain" and not reader.reading:
                    print("EOF", flush=True)
                    return 0
                try:
                    key = keys.get(timeout=0.05)
                except queue.Empty:
                    continue
                if key == "x":
                    break
                if key == "!":
                    raise RuntimeError("raised inside the block")
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
