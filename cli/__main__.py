import sys

from realsim.cli.main import main

sys.exit(main())
