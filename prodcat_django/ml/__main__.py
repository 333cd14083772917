import sys

from prodcat_django.ml.cli import main

sys.exit(main())
