from hyena_glt.cli import main
import sys
sys.exit(main())
