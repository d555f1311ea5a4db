import sys

from bot.runner import main

sys.exit(main())
