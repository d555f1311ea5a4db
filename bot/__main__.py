import sys

from newsdesk_bot.runner import main

sys.exit(main())
