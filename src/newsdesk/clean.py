"""Page furniture removal and headline detection for scraped article text.

Only whole lines are dropped and kept lines are never edited (apart from surrounding
whitespace), so every sentence newsdesk later quotes appears verbatim in the source file.
"""

from __future__ import annotations

import re
from collections import Counter

# Lines that belong to the page around an article, not to the article. Matched against the
# whole line (case-insensitive), so a sentence that merely mentions "cookies" is kept.
_FURNITURE = re.compile(
    r"""^(
        related(\s+(articles?|stories|posts|content|coverage|news|topics))?
      | (more|most)\s+(from|on|read|popular|stories|like\s+this)(\s+.{0,40})?
      | back\s+to\s+top(\s+button)?
      | scroll\s+to\s+top
      | skip\s+to\s+(main\s+)?(content|navigation)
      | (share|tweet|email|print|save|copy\s+link)(\s+(this|the))?(\s+(article|story|page|post|link))?(\s+(on|via)\s+\w+)?
      | share\s+on\s+(facebook|twitter|x|linkedin|whatsapp|reddit|email)
      | (facebook|twitter|x|linkedin|whatsapp|reddit|pinterest|telegram|email)(\s*[|,·•]\s*\w+)*
      | advertisement|sponsored(\s+content)?|ad
      | (read|see|view|show)\s+(more|all|full\s+story|comments?)
      | comments?(\s*\(\d+\))?
      | (sign\s+up|subscribe)(\s+(now|today|for|to)\b.{0,60})?
      | follow\s+us(\s+on\s+.{0,40})?
      | you\s+(may|might)\s+also\s+like
      | recommended(\s+for\s+you)?|trending(\s+now)?|top\s+stories|latest\s+news
      | (we|this\s+(site|website))\s+uses?\s+cookies.{0,200}
      | (accept|reject|manage)(\s+all)?\s+cookies.{0,40}
      | cookie\s+(policy|settings|preferences|consent).{0,40}
      | (privacy\s+policy|terms\s+(of\s+(use|service)|and\s+conditions))(\s*[|·•]\s*.{0,60})?
      | (copyright\s+)?(©|\(c\)|copyright)\s*.{0,80}all\s+rights\s+reserved\.?
      | all\s+rights\s+reserved\.?
      | image\s+(source|caption|copyright).{0,80}
      | loading(\.\.\.|…)?
    )[.:!]?$""",
    re.IGNORECASE | re.VERBOSE,
)
_MENU_SEPARATOR = re.compile(r"\s*[|•·»]\s*")
_WORDS = re.compile(r"\w+")


def is_furniture(line: str) -> bool:
    line = line.strip()
    return len(line) <= 300 and bool(_FURNITURE.match(line)) or is_menu(line)


def is_menu(line: str) -> bool:
    """"Home | World | Business | Sport": three or more short items joined by separators."""
    items = _MENU_SEPARATOR.split(line)
    return len(items) >= 3 and all(0 < len(item) <= 30 for item in items)


def _is_label(line: str) -> bool:
    """A section label such as "News" or "US Politics": one or two words, no punctuation.

    Headlines are longer than that, so a label can only be mistaken for a very short headline.
    """
    words = _WORDS.findall(line)
    return 0 < len(words) <= 2 and not re.search(r"[.!?:;,\"“”]", line)


def kept_lines(lines: list[str]) -> list[int]:
    """Indices of the lines that are article text: furniture, leading section labels and
    navigation repeated within the page are dropped."""
    stripped = [ln.strip() for ln in lines]
    short_counts = Counter(ln.lower() for ln in stripped if ln and len(_WORDS.findall(ln)) <= 8)
    kept: list[int] = []
    for i, ln in enumerate(stripped):
        if not ln or is_furniture(ln):
            continue
        # A short line printed more than once on one page is navigation (header and footer).
        if short_counts.get(ln.lower(), 0) > 1:
            continue
        if not kept and _is_label(ln):
            continue
        kept.append(i)
    return kept


def clean_lines(lines: list[str]) -> list[str]:
    """The kept lines themselves, stripped of surrounding whitespace."""
    return [lines[i].strip() for i in kept_lines(lines)]
