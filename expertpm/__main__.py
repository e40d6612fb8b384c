import sys

from expertpm.cli import main

sys.exit(main())
