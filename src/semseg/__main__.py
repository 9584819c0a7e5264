"""``python -m semseg`` is the same as the ``semseg`` command."""

from semseg.cli import main

raise SystemExit(main())
