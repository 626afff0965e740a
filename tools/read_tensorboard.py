"""read_tensorboard.py - the scalars of a TensorBoard event file as TensorBoard reads them.

    python3 tools/read_tensorboard.py FILE > scalars.json

Prints [{"tag", "step", "value"}, ...] in file order, read with TensorBoard's
own EventAccumulator (pip install tensorboard). tests/fixtures/tensorboard/
holds a file the library wrote and what this read from it; test_train checks
that the library still writes that file byte for byte.
"""
import json
import os
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

path = sys.argv[1]
acc = EventAccumulator(os.path.dirname(os.path.abspath(path)), size_guidance={"scalars": 0})
acc.Reload()
rows = [{"tag": tag, "step": e.step, "value": e.value} for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)]
rows.sort(key=lambda r: (r["step"], r["tag"]))
print(json.dumps(rows, indent=1))
