"""scripts/localstripe_server.py with its store in a private file (LOCALSTRIPE_PICKLE).

localstripe saves every object to /tmp/localstripe.pickle, one file for every emulator on
the machine. The fault tests kill and restart their own emulator and need it to come back
with its own tokens and intents, untouched by other emulators running at the same time.
"""

import os
import pickle
import runpy
import sys
from pathlib import Path

from localstripe import resources

PICKLE = Path(os.environ["LOCALSTRIPE_PICKLE"])


def _load(self):
    try:
        with open(PICKLE, "rb") as f:
            old = pickle.load(f)
    except FileNotFoundError:
        return
    self.clear()
    self.update(old)


def _dump(self):
    tmp = PICKLE.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, PICKLE)  # a kill mid-write leaves the previous store, never half of one


resources.Store.try_load_from_disk = _load
resources.Store.dump_to_disk = _dump

if __name__ == "__main__":
    script = Path(__file__).resolve().parents[2] / "scripts" / "localstripe_server.py"
    sys.argv[0] = str(script)
    runpy.run_path(str(script), run_name="__main__")
