"""``python -m curation.simulator --port N`` (a contract command): runs :mod:`synthetic.simulator`."""

import sys

from synthetic.simulator.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
