"""C{python -m bench}: see L{bench.run}."""

import sys

from bench.run import main

sys.exit(main())
