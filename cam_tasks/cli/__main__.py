"""``python -m cam_tasks.cli``: the ``cam-tasks`` command."""

import sys

from cam_tasks.cli.main import main

sys.exit(main())
