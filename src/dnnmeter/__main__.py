import sys

from dnnmeter.cli import main

sys.exit(main())
