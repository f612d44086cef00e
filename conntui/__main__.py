"""`python -m conntui` runs the command line."""

from conntui.launcher import main

raise SystemExit(main())
