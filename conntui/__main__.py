"""`python -m conntui` runs the command line."""

from conntui.cli import main

raise SystemExit(main())
