"""The newsdesk Discord bot: answers with [n] citations and source embeds, follow-ups in threads.

`run()` starts it from settings and $DISCORD_TOKEN (the `newsdesk discord` command and
`python -m newsdesk_bot` call it); `serve()` is the coroutine underneath, for embedding and tests.
"""

from newsdesk_bot.client import NewsdeskBot
from newsdesk_bot.runner import main, run, serve
from newsdesk_bot.settings import BotSettings, SettingsError, load_settings

__all__ = ["BotSettings", "NewsdeskBot", "SettingsError", "load_settings", "main", "run", "serve"]
