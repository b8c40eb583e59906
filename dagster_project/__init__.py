"""The Dagster layer: Definitions, jobs, schedules, sensors and the ``python -m dagster_project`` CLI.

Every Dagster process (the CLI, the code server, a run worker) imports this package first. A step's logs go to
Dagster, and evaluation and the embeddings precompute run inside the step on a local launcher, so the libraries'
progress bars are off here the way they are in a launched child: tqdm reads ``TQDM_DISABLE`` only when it is
imported, hence before anything else.
"""

import os

from videorft.pipes import QUIET_CHILD_ENV

for _key, _value in QUIET_CHILD_ENV.items():
    os.environ.setdefault(_key, _value)
