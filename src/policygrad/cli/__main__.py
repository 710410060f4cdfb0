"""``python -m policygrad.cli``: the ``policygrad`` command."""

import sys

from policygrad.cli import main

sys.exit(main())
