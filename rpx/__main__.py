import sys

from rpx.cli import main

sys.exit(main())
