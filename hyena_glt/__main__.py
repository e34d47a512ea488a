import sys

from hyena_glt.cli import main

sys.exit(main())
