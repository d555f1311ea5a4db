"""Near-duplicate articles (issue 13): how well `newsdesk.dedup` finds copies and story versions, and what it costs.

    python bench/dedup.py            # prints the tables, writes bench/results/dedup.json
    python bench/dedup.py --json     # prints the JSON instead

Four measurements, each with a part used to choose the thresholds (*tune*) and a part that was
not (*held out*):

1. **BBC exact duplicates.** The 2,225 BBC articles hold 133 pairs of identical bodies. They are
   the positives for copy detection; every other pair the finder calls a copy is a false
   positive *by that count*, and the table shows what those pairs really are: every pair of
   BBC articles whose word 5-shingles have an exact Jaccard of at least 0.1 was read and
   labelled by hand (`BBC_LABELS`: C copy, light edits only; V the same story, rewritten,
   updated or followed up; O another story that shares background paragraphs). Tune:
   politics and tech; held out: business, entertainment and sport (both halves hold copies,
   versions and others).
2. **Constructed near-duplicates.** Real articles (BBC and RealTime QA) edited the way outlets
   edit wire copy (a headline tweak, a reworded sentence, a dropped sentence, an added
   boilerplate line or dateline, a few words changed: three of these per copy), next to
   *revisions* of the same article the way a wire story is updated (new headline and lede,
   every figure revised, a new paragraph) and to different articles. Articles are split into
   halves by the parity of a hash of their id.
3. **RealTime QA same-story pairs.** Pairs of articles on one story, labelled by hand
   (`RT_LABELS`): every pair with exact 5-shingle Jaccard >= 0.1 (63 pairs), and 100 pairs
   drawn at random (seed 13) from the pairs that one quiz question retrieved, published at
   most 45 days apart, with Jaccard < 0.1 — the pairs shingles cannot see, to measure recall
   honestly. Tune: pairs whose newer article is from before October 2025; held out: October on.
4. **Cost**: fingerprinting, adding to and removing from the finder, querying it and rebuilding
   it, at the real corpora's size and with 30,000 more unrelated articles; bytes stored and held
   in memory per article.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import re
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evalsets import DATA

from newsdesk import dedup

RESULTS = Path(__file__).resolve().parent / "results"
BBC = DATA / "news-corpus" / "bbc-news-2225.jsonl"
RT_ARTICLES = DATA / "newsqa-like" / "articles.jsonl"
BBC_TUNE = ("politics", "tech")
RT_HELD_FROM = "2025-10"
COPY_GRID = [round(0.4 + 0.05 * i, 2) for i in range(12)]     # 0.40 .. 0.95
STORY_GRID = [round(0.1 + 0.05 * i, 2) for i in range(9)]     # 0.10 .. 0.50 (the BBC labels cover J >= 0.1)
DAYS_GRID = [None, 3, 7, 14, 30, 60, 90]

# fmt: off
# Every BBC pair (ids without the "bbc-" prefix) whose bodies differ but whose exact word
# 5-shingle Jaccard is at least 0.1, read and labelled by hand. The number is that Jaccard.
BBC_LABELS = [
    ("politics-067", "politics-390", "C"),  # 1.000 Child access laws shake-up | Child access law shake-up plan
    ("sport-181", "sport-182", "C"),  # 1.000 Desailly backs Blues revenge t | Desailly backs Blues revenge t
    ("sport-432", "sport-438", "C"),  # 1.000 Davenport hits out at Wimbledo | Davenport hits out at Wimbledo
    ("sport-332", "sport-344", "C"),  # 1.000 Harinordoquy suffers France ax | Harinordoquy suffers France ax
    ("tech-048", "tech-342", "C"),  # 1.000 'No re-draft' for EU patent la | 'No re-draft' for EU patent la
    ("tech-286", "tech-391", "C"),  # 0.988 Peer-to-peer nets 'here to sta | Peer-to-peer nets 'here to sta
    ("tech-234", "tech-389", "C"),  # 0.986 Mobile multimedia slow to catc | Mobile multimedia slow to catc
    ("tech-155", "tech-294", "C"),  # 0.986 Games win for Blu-ray DVD form | Games win for Blu-ray DVD form
    ("tech-049", "tech-340", "C"),  # 0.979 Domain system scam fear | Domain system opens door to sc
    ("tech-212", "tech-225", "C"),  # 0.978 Lifestyle 'governs mobile choi | Lifestyle 'governs mobile choi
    ("sport-289", "sport-406", "C"),  # 0.975 Fuming Robinson blasts officia | Fuming Robinson blasts officia
    ("tech-219", "tech-224", "C"),  # 0.970 Disney backs Sony DVD technolo | Disney backs Sony DVD technolo
    ("tech-064", "tech-338", "C"),  # 0.966 Looks and music to drive mobil | Looks and music to drive mobil
    ("tech-045", "tech-341", "C"),  # 0.965 Sony PSP tipped as a 'must-hav | Sony PSP tipped as a 'must-hav
    ("tech-022", "tech-380", "C"),  # 0.965 Sun offers processing by the h | Sun offers processing by the h
    ("tech-095", "tech-311", "C"),  # 0.964 Mobile games come of age | Mobile games come of age
    ("sport-425", "sport-433", "C"),  # 0.961 Federer claims Dubai crown | Dogged Federer claims Dubai cr
    ("tech-032", "tech-335", "C"),  # 0.958 Mobile networks seek turbo boo | Mobile networks seek turbo boo
    ("entertainment-102", "entertainment-341", "C"),  # 0.954 Day-Lewis set for Berlin honou | Day-Lewis set for Berlin honou
    ("entertainment-079", "entertainment-331", "C"),  # 0.921 Russian film wins BBC world pr | Russian film wins BBC world pr
    ("tech-019", "tech-329", "C"),  # 0.916 Intel unveils laser breakthrou | Intel unveils laser breakthrou
    ("entertainment-179", "entertainment-216", "C"),  # 0.839 Housewives lift Channel 4 rati | Housewives lift Channel 4 rati
    ("entertainment-142", "entertainment-229", "V"),  # 0.818 New York rockers top talent po | New York rockers top talent po
    ("politics-226", "politics-265", "V"),  # 0.807 Tories unveil quango blitz pla | Tories unveil quango blitz pla
    ("tech-009", "tech-379", "V"),  # 0.762 Apple laptop is 'greatest gadg | Apple laptop is 'greatest gadg
    ("tech-043", "tech-326", "V"),  # 0.741 DVD copy protection strengthen | DVD copy protection strengthen
    ("business-209", "business-229", "V"),  # 0.697 Mixed reaction to Man Utd offe | Shares rise on new Man Utd off
    ("business-254", "business-447", "C"),  # 0.687 News Corp eyes video games mar | News Corp eyes video games mar
    ("business-260", "business-354", "V"),  # 0.668 Asia shares defy post-quake gl | Asia shares defy post-quake gl
    ("politics-077", "politics-354", "V"),  # 0.661 Brown names 16 March for Budge | Brown names 16 March for Budge
    ("sport-424", "sport-511", "V"),  # 0.657 Roddick into San Jose final | Roddick to face Saulnier in fi
    ("sport-444", "sport-458", "V"),  # 0.650 Hewitt falls to Dent | Hewitt falls to Dent in Adelai
    ("politics-069", "politics-312", "V"),  # 0.641 Talks aim to avert pension str | Stalemate in pension strike ta
    ("politics-311", "politics-312", "V"),  # 0.641 Talks aim to avert pension str | Stalemate in pension strike ta
    ("politics-043", "politics-313", "V"),  # 0.616 Parties warned over 'grey vote | Parties warned over 'grey vote
    ("politics-088", "politics-337", "V"),  # 0.558 Campaign 'cold calls' question | Campaign 'cold calls' question
    ("politics-327", "politics-328", "V"),  # 0.473 Goldsmith denies war advice cl | Goldsmith: 'I was not leant on
    ("entertainment-143", "entertainment-159", "V"),  # 0.374 Blair buys copies of new Band  | Band Aid 20 single storms to N
    ("tech-018", "tech-190", "V"),  # 0.355 PlayStation 3 chip to be unvei | First look at PlayStation 3 ch
    ("politics-111", "politics-293", "V"),  # 0.351 Kilroy launches 'Veritas' part | Kilroy launches 'Veritas' part
    ("politics-064", "politics-161", "V"),  # 0.346 Blair hails Turkey-EU talks de | Turkey deal 'to help world pea
    ("entertainment-152", "entertainment-163", "V"),  # 0.338 Beatles suits sell for $110,00 | Early Elvis recordings go on s
    ("business-138", "business-152", "V"),  # 0.335 Winter freeze keeps oil above  | Crude oil prices back above $5
    ("politics-335", "politics-338", "V"),  # 0.317 Kennedy begins pre-election to | Lib Dems highlight problem deb
    ("sport-226", "sport-232", "V"),  # 0.302 Wolves appoint Hoddle as manag | Wolves appoint Hoddle as manag
    ("politics-374", "politics-409", "V"),  # 0.297 UK needs tax cuts, Tories insi | Tories urge 'change at the top
    ("entertainment-038", "entertainment-355", "V"),  # 0.282 Stars gear up for Bafta ceremo | Bafta to hand out movie honour
    ("politics-175", "politics-349", "V"),  # 0.275 Chancellor rallies Labour vote | Chancellor rallies Labour vote
    ("tech-101", "tech-123", "V"),  # 0.274 Bush website blocked outside U | Attack prompts Bush site block
    ("business-114", "business-196", "V"),  # 0.249 WorldCom director admits lying | Worldcom director ends evidenc
    ("entertainment-007", "entertainment-013", "V"),  # 0.240 Levy tipped for Whitbread priz | Levy takes Whitbread novel pri
    ("politics-040", "politics-224", "V"),  # 0.235 Lords wrong on detainees - Str | Terror detainees win Lords app
    ("politics-225", "politics-260", "V"),  # 0.234 Blair to face MPs amid feud ta | Labour seeks to quell feud tal
    ("politics-184", "politics-327", "V"),  # 0.229 Blair rejects Iraq advice call | Goldsmith denies war advice cl
    ("tech-141", "tech-173", "V"),  # 0.228 US top of supercomputing chart | Supercomputer breaks speed rec
    ("politics-294", "politics-312", "V"),  # 0.223 Civil servants in strike ballo | Stalemate in pension strike ta
    ("tech-030", "tech-048", "V"),  # 0.222 Reboot ordered for EU patent l | 'No re-draft' for EU patent la
    ("tech-030", "tech-342", "V"),  # 0.222 Reboot ordered for EU patent l | 'No re-draft' for EU patent la
    ("politics-125", "politics-288", "O"),  # 0.221 UKIP candidate suspended | New UKIP defection to 'Veritas
    ("politics-286", "politics-288", "O"),  # 0.221 UKIP candidate suspended in pr | New UKIP defection to 'Veritas
    ("politics-081", "politics-141", "V"),  # 0.221 Tory backing for ID cards | Howard denies split over ID ca
    ("politics-081", "politics-300", "V"),  # 0.221 Tory backing for ID cards | Howard denies split over ID ca
    ("politics-141", "politics-299", "V"),  # 0.221 Howard denies split over ID ca | Conservative backing for ID ca
    ("politics-299", "politics-300", "V"),  # 0.221 Conservative backing for ID ca | Howard denies split over ID ca
    ("politics-069", "politics-294", "V"),  # 0.219 Talks aim to avert pension str | Civil servants in strike ballo
    ("politics-294", "politics-311", "V"),  # 0.219 Civil servants in strike ballo | Talks aim to avert pension str
    ("politics-218", "politics-255", "V"),  # 0.208 Blair dismisses quit claim rep | Brown in appeal for Labour uni
    ("politics-253", "politics-255", "V"),  # 0.208 Blair dismisses quit claim rep | Brown in appeal for Labour uni
    ("politics-040", "politics-221", "V"),  # 0.208 Lords wrong on detainees - Str | Clarke defends terror detentio
    ("politics-218", "politics-252", "V"),  # 0.204 Blair dismisses quit claim rep | Blair 'said he would stand dow
    ("politics-252", "politics-253", "V"),  # 0.204 Blair 'said he would stand dow | Blair dismisses quit claim rep
    ("sport-300", "sport-315", "O"),  # 0.204 Bell set for England debut | Barkley fit for match in Irela
    ("politics-184", "politics-328", "V"),  # 0.191 Blair rejects Iraq advice call | Goldsmith: 'I was not leant on
    ("politics-040", "politics-368", "V"),  # 0.183 Lords wrong on detainees - Str | Act on detention ruling, UK ur
    ("business-010", "business-291", "V"),  # 0.178 Court rejects $280bn tobacco c | Tobacco giants hail court ruli
    ("politics-111", "politics-333", "V"),  # 0.169 Kilroy launches 'Veritas' part | Kilroy names election seat tar
    ("business-374", "business-376", "V"),  # 0.169 Dollar hovers around record lo | Dollar slides ahead of New Yea
    ("business-279", "business-392", "V"),  # 0.165 German bidder in talks with LS | Deutsche Boerse set to 'woo' L
    ("business-162", "business-251", "V"),  # 0.163 Verizon 'seals takeover of MCI | MCI shares climb on takeover b
    ("sport-045", "sport-091", "V"),  # 0.158 Trial date is set for Balco ca | Balco case trial date pushed b
    ("entertainment-249", "entertainment-251", "V"),  # 0.157 Soul sensation ready for award | Brit awards for Devon music ac
    ("business-170", "business-248", "O"),  # 0.152 House prices suffer festive fa | Survey confirms property slowd
    ("politics-142", "politics-222", "O"),  # 0.152 EU referendum question unveile | Voters 'reject EU by two to on
    ("politics-002", "politics-242", "O"),  # 0.151 Watchdog probes e-mail deletio | Whitehall shredding increasing
    ("politics-154", "politics-186", "V"),  # 0.149 Mayor will not retract Nazi ji | Blair says mayor should apolog
    ("politics-087", "politics-106", "V"),  # 0.146 Howard unveils Tory asylum pla | Howard attacks cost of asylum
    ("politics-221", "politics-368", "V"),  # 0.145 Clarke defends terror detentio | Act on detention ruling, UK ur
    ("sport-417", "sport-418", "V"),  # 0.144 D'Arcy injury adds to Ireland  | O'Driscoll out of Scotland gam
    ("tech-275", "tech-343", "O"),  # 0.141 Souped-up wi-fi is on the hori | Ultra fast wi-fi nears complet
    ("business-142", "business-180", "V"),  # 0.138 Asian banks halt dollar's slid | Dollar drops on reserves conce
    ("sport-023", "sport-048", "V"),  # 0.138 Greek pair attend drugs hearin | Greek pair set for hearing
    ("politics-033", "politics-369", "V"),  # 0.136 Protesters plan airport challe | BAA support ahead of court bat
    ("politics-275", "politics-277", "O"),  # 0.136 Howard dismisses Tory tax fear | Howard and Blair tax pledge cl
    ("politics-224", "politics-368", "V"),  # 0.132 Terror detainees win Lords app | Act on detention ruling, UK ur
    ("sport-112", "sport-118", "V"),  # 0.130 Parry firm over Gerrard | Parry relishes Anfield challen
    ("sport-118", "sport-121", "V"),  # 0.130 Parry relishes Anfield challen | Parry puts Gerrard 'above mone
    ("politics-257", "politics-260", "V"),  # 0.120 Blair and Brown criticised by  | Labour seeks to quell feud tal
    ("politics-221", "politics-224", "V"),  # 0.119 Clarke defends terror detentio | Terror detainees win Lords app
    ("business-264", "business-421", "V"),  # 0.118 French suitor holds LSE meetin | LSE 'sets date for takeover de
    ("entertainment-076", "entertainment-100", "V"),  # 0.115 Fockers fuel festive film char | Fockers retain film chart crow
    ("tech-129", "tech-254", "O"),  # 0.115 Broadband in the UK growing fa | Broadband in the UK gathers pa
    ("tech-175", "tech-254", "O"),  # 0.115 Broadband in the UK growing fa | Broadband in the UK gathers pa
    ("sport-322", "sport-407", "V"),  # 0.112 Scotland v Italy (Sat) | Scotland 18-10 Italy
    ("sport-442", "sport-454", "V"),  # 0.110 Hingis to make unexpected retu | Hingis hints at playing comeba
    ("sport-050", "sport-051", "V"),  # 0.105 IAAF awaits Greek pair's respo | IAAF to rule on Greek sprint p
    ("politics-255", "politics-256", "V"),  # 0.101 Brown in appeal for Labour uni | Blair pledges unity to Labour 
    ("business-025", "business-192", "V"),  # 0.100 Yukos loses US bankruptcy batt | Yukos bankruptcy 'not US matte
]

# RealTime QA pairs, labelled by hand: True when both articles report one story (one event
# and its developments; an explainer re-run a year later, or two articles sharing only a site's
# boilerplate, are not). First the 63 pairs with exact 5-shingle Jaccard >= 0.1 (the number),
# then 100 pairs drawn at random from those one question retrieved, <= 45 days apart, J < 0.1.
RT_LABELS = [
    ("7238ea18081aa659", "bf31376f6e9c4438", True),  # 0.963 When did Juneteenth become a f | When did Juneteenth become a f
    ("9748b7aba1102a2a", "c76ef42a8ca6d687", True),  # 0.959 What day is Thanksgiving 2025? | Thanksgiving history began wit
    ("0e359852c6920ac4", "466bd801c8819edb", True),  # 0.799 Trump on former Vice President | Has Donald Trump posted about 
    ("2b7386a56f226ff5", "b5d31258f04c4303", True),  # 0.729 November 2024 full moon is a s | November full moon is a super 
    ("70561cc102604fa9", "87ef826ecf0a7972", True),  # 0.687 Is California 'overdue' for a  | California is overdue for a de
    ("e8c4700ad5e8452f", "ed25b6e129dbe489", True),  # 0.678 Apple: Here's everything that  | Apple event 2024 recap: iPhone
    ("081f55b5022128fd", "a8293dba54f4f8a7", True),  # 0.646 When is Diwali 2024? What to k | When is Diwali 2024? What to k
    ("aa37d95cfd2a4096", "fc8e84037c2ab29a", True),  # 0.613 Tsunami evacuation orders lift | Tsunami waves reach Hawaii, We
    ("25709ed17f0124bc", "692029dc16b53730", True),  # 0.601 A timeline of Trump's federal  | Mass federal layoffs two month
    ("1526593850318457", "39bbb78b9fdcc3a0", True),  # 0.554 Michigan ParkMobile users can  | How to join the ParkMobile cla
    ("9bfdbf51a8cf24a0", "dc26b9138d7eead5", True),  # 0.535 California Gov. Newsom will su | California sues Trump, seeks t
    ("42328e5e8d58d341", "4c61ea299df90b94", True),  # 0.490 Super Bowl 2025 date, time, ch | When is the Super Bowl? Date, 
    ("028f803010a0dc98", "91f6e7b728e9d672", True),  # 0.467 Rite Aid reveals more store cl | Rite Aid bankruptcy: See list 
    ("3832efa458263949", "3ece1c0bcd4d58ca", True),  # 0.467 More deaths, illnesses in list | Listeria linked to pasta confi
    ("e0d982c56a86b095", "fb1315d8311d6df4", True),  # 0.452 Toby Keith presented National  | Toby Keith and Ricky Skaggs re
    ("389da6cc16fc271d", "3a08d0ead9d1baec", True),  # 0.442 President Trump pardons turkey | Two North Carolina turkeys get
    ("081f55b5022128fd", "1ab696e772812755", False),  # 0.426 When is Diwali 2024? What to k | What is Diwali? What to know a
    ("8167a51133a5939c", "e332b285665ff197", True),  # 0.416 Oscar nominations 2025: See fu | Oscar nominations 2025: See th
    ("09664f1bbec7e428", "63890e83d526337e", True),  # 0.414 What to know about Trump's pro | Trump promises $1,776 checks f
    ("85068bd3ab682857", "8f0ad7b1bdd608b2", True),  # 0.394 What teams will be playing in  | Little League World Series: Ho
    ("1ab696e772812755", "a8293dba54f4f8a7", False),  # 0.349 What is Diwali? What to know a | When is Diwali 2024? What to k
    ("0f6179ac09b8598f", "116534fda6f83d94", True),  # 0.342 Historic Grand Canyon Lodge on | Historic lodge on Grand Canyon
    ("1d9bfa119172ae91", "933d2659b27790cf", True),  # 0.322 When is Thanksgiving? Why it f | When is Thanksgiving? Why does
    ("2a8df36172cc1b08", "aea2660c698d5ed7", False),  # 0.249 Taco Bell launches new Baja Bl | Taco Bell rolled out 6 new bev
    ("748f3f1c03a91680", "fda22c1266dc1459", True),  # 0.249 Diddy trial recap: Jane testif | Diddy trial: Anger over Jane g
    ("18ee815b1d9ce476", "3832efa458263949", True),  # 0.246 Pasta meals sold at Walmart, K | More deaths, illnesses in list
    ("8896b3be59eb3ac4", "bb65eaedd21be587", True),  # 0.238 Latest forecast reduces chance | Northern lights update 2023: C
    ("7c3796fff20dfd6e", "f887fd1cad71a331", True),  # 0.237 Which agencies have been hit b | Federal layoffs 2025: See impa
    ("18ee815b1d9ce476", "3ece1c0bcd4d58ca", True),  # 0.236 Pasta meals sold at Walmart, K | Listeria linked to pasta confi
    ("6763dc15a1ea1aa6", "fac7b2f9ac4fdfdb", True),  # 0.232 Could you get $2,000 tariff di | Trump says Americans will get 
    ("81d3ce6ce7437e6c", "e528897c3e3bacea", True),  # 0.230 Trump in Asheville live update | Hegseth confirmed; Trump tours
    ("e0069f071e39cdab", "f667242befcaf331", True),  # 0.222 Gunman in Uvalde school massac | Uvalde Texas school shooting: 
    ("9af35048f4104ee5", "bfd8d5d444c3a7d6", True),  # 0.217 California voters approve Prop | Did Prop 50 pass in California
    ("3832efa458263949", "c924d8eeba1603c8", True),  # 0.212 More deaths, illnesses in list | Listeria outbreak tied to past
    ("75b5019e568bb931", "b7aa02a839d366b9", True),  # 0.209 Final escapee from New Orleans | 9 New Orleans inmates who brok
    ("3ece1c0bcd4d58ca", "c924d8eeba1603c8", True),  # 0.200 Listeria linked to pasta confi | Listeria outbreak tied to past
    ("116534fda6f83d94", "76d957ae1cbd3fea", True),  # 0.196 Historic lodge on Grand Canyon | Grand Canyon Lodge destroyed b
    ("6d376d569922b245", "79f01afa0ed5d4b5", True),  # 0.189 NFL Thanksgiving games: Histor | What NFL team has played the m
    ("3354d8cb48059c04", "35386216429ad5d2", True),  # 0.188 Trump has limited ways to bloc | Trump 'serious' about Washingt
    ("0994ece99541d086", "18ee815b1d9ce476", True),  # 0.177 Pasta recalls tied to ongoing  | Pasta meals sold at Walmart, K
    ("3bdbf2812ef70f65", "c0583f28743534ac", True),  # 0.172 When can you see the northern  | Northern lights could be visib
    ("9fb0be1c355ebece", "d731ed31da15d099", True),  # 0.171 New pope is Villanova grad; Ro | New Pope Leo XIV recap: Prevos
    ("45f7ff69cd99774b", "c10668dbde00f40a", True),  # 0.163 What did Jimmy Kimmel say abou | Trump reacts to Jimmy Kimmel s
    ("36607e6f950a8359", "577f94509a2edea7", True),  # 0.158 Jimmy Kimmel pulled off-air fo | Jimmy Kimmel suspension: Trump
    ("b1f7458ffaafd8c8", "ecfe78b7a1f1a2d5", True),  # 0.152 AT&T agrees to $177 million se | AT&T to pay $177M in data brea
    ("0994ece99541d086", "c924d8eeba1603c8", True),  # 0.149 Pasta recalls tied to ongoing  | Listeria outbreak tied to past
    ("025cfc26595cae81", "ba2b1ce57d2de67a", True),  # 0.146 Louvre director blames securit | How thieves stole treasures wo
    ("18ee815b1d9ce476", "c924d8eeba1603c8", True),  # 0.132 Pasta meals sold at Walmart, K | Listeria outbreak tied to past
    ("1ecbb9345d2a6d8f", "5285dbe49b709ed7", True),  # 0.132 Hundreds of hikers are trapped | Blizzard on Mt. Everest traps 
    ("7a62d5b1336d7ef6", "f9b151940989155a", True),  # 0.125 Wall Street ups range of estim | Trump's new car tariffs start 
    ("aa4a55f9cac70f5c", "e10ddc7bfe413b8a", True),  # 0.124 Who is Anna Wintour? What to k | Anna Wintour out as Vogue as e
    ("159bf3c9b1e5004d", "b6b22f2111da4a62", False),  # 0.119 What Mexico's first female pre | Vladimir Putin voted Russia's 
    ("0994ece99541d086", "3ece1c0bcd4d58ca", True),  # 0.116 Pasta recalls tied to ongoing  | Listeria linked to pasta confi
    ("1a4675fc39d550ba", "b6b22f2111da4a62", False),  # 0.115 England win the Women's Euros: | Vladimir Putin voted Russia's 
    ("0994ece99541d086", "3832efa458263949", True),  # 0.114 Pasta recalls tied to ongoing  | More deaths, illnesses in list
    ("73475a1e4d05bd7a", "c1ce6c7b98c33d59", True),  # 0.111 Tariffs updates: Republican se | Latest on tariffs: Trump decla
    ("0f6179ac09b8598f", "76d957ae1cbd3fea", True),  # 0.106 Historic Grand Canyon Lodge on | Grand Canyon Lodge destroyed b
    ("4c9d98368aaefd0d", "66b76fd25e957a80", True),  # 0.105 Donald Trump threatens to revo | Rosie O'Donnell, Donald Trump 
    ("15910b03766674f5", "b3850b1f0dd32db0", True),  # 0.103 Louvre museum in Paris says th | Louvre loot worth $102M may be
    ("3c6e32289716d3b9", "9196f42e6dc87570", False),  # 0.102 Hurricane Ernesto path moves t | Hurricane tracker: NHC watchin
    ("b6b22f2111da4a62", "ca3510b58044bbb7", False),  # 0.101 Vladimir Putin voted Russia's  | Why have the JFK assassination
    ("90f399e97745b9e1", "d2dc6d85b02df69c", True),  # 0.100 US Sen. Joni Ernst says she is | Joni Ernst expected to announc
    ("2b7386a56f226ff5", "6d3f458dd1788a7e", False),  # 0.100 November 2024 full moon is a s | Full moons in 2024: Jan. 25 wi
    ("7c9b04cc508680a1", "aa37d95cfd2a4096", True),  # Massive earthquake sends sea l | Tsunami evacuation orders lift
    ("18f8b16c7385e583", "e71d86d2a6de081b", False),  # Biden 'confident' rail strike  | Frontier Airlines no longer ha
    ("245b42dc4600933c", "c1ce6c7b98c33d59", True),  # Trump reiterates that auto tar | Latest on tariffs: Trump decla
    ("45f7ff69cd99774b", "577f94509a2edea7", True),  # What did Jimmy Kimmel say abou | Jimmy Kimmel suspension: Trump
    ("ed25b6e129dbe489", "f9876252cb33894d", True),  # Apple event 2024 recap: iPhone | 2024 Apple event: iPhone 16, A
    ("056f5f99d960ba63", "7d8a36377701e1b8", False),  # 'No Kings' Trump protests in N | LA protests live updates: Curf
    ("0540df65cf24a138", "bfbd0ece3177c14a", False),  # Tech Turkeys 2018: Facebook's  | New iPhones: Did Apple prices 
    ("566ee7f400a35419", "e7981b772fab0ba3", False),  # NFL hot seat rankings, odds We | What NFL teams made playoffs w
    ("2ee5b5601d4e6e69", "855b7823a02e7ef7", True),  # DC plane crash: Family of vict | Recap: Plane, helicopter colli
    ("3354d8cb48059c04", "dd2c422fed4144df", True),  # Trump has limited ways to bloc | Why did the Commanders change 
    ("87880ffb2e4b6c63", "8a9f63c035bc3c97", False),  # Oakley and Meta launch new AI  | Apple WWDC 2025 news: iOS 26 a
    ("6fd5c2c2958c7f5d", "dd4d35757b4205cd", True),  # Government shutdown 2025: What | When will the government shutd
    ("a9fcda9de6fa7059", "e8abc8890dca3a0e", True),  # Marines heading to LA; Newsom  | LA protests: Marines in Los An
    ("42328e5e8d58d341", "9755f45a7c33de49", True),  # Super Bowl 2025 date, time, ch | Super Bowl 2025: When, what to
    ("45d11132c82d0fdf", "616ea0fd85f62466", False),  # LeBron James turns 40. List of | Who are the 10 greatest player
    ("9fb0be1c355ebece", "c5ca748b2babef2a", True),  # New pope is Villanova grad; Ro | Who will be the next pope? How
    ("088d4ee5f90d12ec", "4aadd83df762318c", False),  # Will NJ get Trump's $1,776 'Wa | Is the $2000 Trump tariff divi
    ("079e13aa712e92a3", "6479dfe411ef9ac4", True),  # Trump orders flags at half-sta | When is Dick Cheney's funeral?
    ("5f15dac8fcf8b6b2", "7ffa286c39c712dd", False),  # Controllers lost contact with  | What are air traffic controlle
    ("9494ad951a4c12d3", "a70932ab34ed2f1f", False),  # Joe Biden celebrates his 80th  | CNN Politics
    ("245c282ce95147e6", "930ff8b39204313e", False),  # Elon Musk announces America Pa | Elon Musk leaves the Trump Whi
    ("5161e491216bd8f4", "ae12f217a479d76f", False),  # Opinion: Good news from state  | Florida redistricting: Ron DeS
    ("301e328cce881e51", "a2fcd70cc0994f21", True),  # MSU's Turning Point USA studen | Crowd gathers at MSU to honor 
    ("c8b0ee61696ef53c", "e0668af4fa757b5e", True),  # Zohran Mamdani victory speech  | Bernie Sanders congratulates N
    ("fa8202bf079c8f00", "fad65e1c1119fb45", True),  # Hurricane Melissa forms, takes | Former Hurricane Melissa live 
    ("417c7373db0db31e", "f0baeb660295bd8d", True),  # Who's performed at the DNC? Pi | Who performed at DNC Wednesday
    ("596565a994e01b6a", "cf623dff205139b5", False),  # 67th Annual Grammys: How to wa | LA fires delay Oscar nominatio
    ("c3d3c5a13095dd56", "cd53c42b8ee141ce", False),  # Check car recalls: Ford, Merce | Ford recall nearly 700,000 Esc
    ("46174271bceadacb", "f064e3f599786c90", True),  # New Orleans driver wore 'smart | New Orleans attack: What we kn
    ("39cf4899c0ef41d7", "4eb24ba454212eb2", True),  # SNAP benefits paused in Missis | Michiganders, food banks brace
    ("576624387075aca3", "90f86f46238597ca", True),  # What's open or closed in a fed | Will I get my Social Security 
    ("27dc4245e1927299", "5568ad1ac02fee4d", False),  # 'One Battle After Another' top | International Portuguese Music
    ("032148ee091bb06e", "c8a9e565af9c99df", True),  # Hegseth rips Pentagon 'decay,' | Hegseth orders last-minute mee
    ("c14ced07ee5375ff", "de49eabac38ce1ca", True),  # Gavin Newsom wins big with Pro | Proposition 50 gains decisive 
    ("7ffa286c39c712dd", "a4ef15158c796b45", False),  # What are air traffic controlle | Feds plan for replacing nation
    ("17f581e3a5b4b4ad", "d78b1850253d06db", False),  # Does turkey make you sleepy? H | 5 things to know for November 
    ("dc8b98d02731e51d", "e0668af4fa757b5e", True),  # When does Zohran Mamdani offic | Bernie Sanders congratulates N
    ("40855aeae60ccd09", "fdb95acb550d0457", True),  # Why Alaska is the 'most strate | How many US presidents (beside
    ("1a675235635133b7", "7a62d5b1336d7ef6", True),  # Trump auto tariffs go into eff | Wall Street ups range of estim
    ("5be9575e06602d14", "7c161300c36794b4", True),  # What's in the House GOP's $2 t | Trump tax and Medicaid cuts: L
    ("29b8123dae9557e5", "62b94708698dc36b", False),  # Catfishing: what the law says | The Week
    ("030f8f6da3e53195", "a77554803bd872c7", False),  # Trump expected to visit site o | How close does FEMA's arrival 
    ("97c474f40b061419", "d1efea67c23d0b6d", True),  # King Charles's France visit po | King Charles III's state visit
    ("15910b03766674f5", "ba2b1ce57d2de67a", True),  # Louvre museum in Paris says th | How thieves stole treasures wo
    ("2d97fa31fda90d46", "fdb95acb550d0457", True),  # 'No deal': Live updates from T | How many US presidents (beside
    ("726be193a62ceebf", "fb451269fcaee554", False),  # Golden Globes snubs 'Wicked,'  | Taylor Swift, Beyoncé aren't n
    ("27dc4245e1927299", "fb451269fcaee554", False),  # 'One Battle After Another' top | Taylor Swift, Beyoncé aren't n
    ("27e874c0da8bc545", "edf1afdbcbd8706a", True),  # Infant airlifted as Hurricane  | Helene's brutal toll: More tha
    ("514f5eefb8ba0f8f", "7d8a36377701e1b8", False),  # No Kings protests in Washingto | LA protests live updates: Curf
    ("b71c3ecbc00f8e03", "e6cb3ae70c77704e", True),  # 2025 election latest: Record e | Mamdani defeats Cuomo in NYC m
    ("451de86667ba1e78", "f981ca7b739908f8", False),  # How Mark Zuckerberg is trying  | Why WhatsApp wants to convince
    ("074d222cd1d5a1fd", "d4ca94a1d7a2124f", True),  # Atlantic hurricane season star | Is the Atlantic seeing a slow 
    ("19ae94aebb202568", "de71c260daeac97b", True),  # The impact of tariffs is comin | Trump's biggest round of tarif
    ("2e9fc3bdb705cc8f", "677d8d4fc5ec4b76", False),  # Which foods have been recalled | Carrot recall: E. coli linked 
    ("691b7065bc967a95", "c97d2f89d2e28583", True),  # November SNAP benefits could b | Are SNAP, WIC benefits paused?
    ("1b64d4bb2c896047", "6fd5c2c2958c7f5d", False),  # What Trump's federal crackdown | Government shutdown 2025: What
    ("0dd175bc3fe0dcf8", "81d3ce6ce7437e6c", True),  # Gov. Stein to meet President T | Trump in Asheville live update
    ("300debdb108be836", "4a7578ab8aa9fd47", True),  # Why is 'The Bear' a comedy? Em | Emmy snubs list: Who should be
    ("21dc8aad2217a788", "ebf6cdd1d8b6721d", True),  # Alabama corrections officer wh | Vicky White: A respected offic
    ("301e328cce881e51", "75e5f22976db7624", True),  # MSU's Turning Point USA studen | Turning Point USA group at Gle
    ("e5e1044d42b582a6", "fb5be1693ea403b7", True),  # Northeast Philadelphia plane c | At least 7 dead, 19 injured af
    ("018d828871a3f45f", "f14d14a581cf9aae", True),  # Inside Hegseth's Quantico myst | Quantico meeting, ICE, Michiga
    ("588e651d4d86eff8", "ee80296c4b9d6492", False),  # Trump gives Super Bowl message | All our reporting on the Wisco
    ("badd2cb9939c5f4a", "ce9bb5297a58279b", False),  # JCPS back to school: Parents w | Some parents want Columbus Cit
    ("1b4a7a24ea2d0f0b", "3e54cd75e5ebb019", True),  # Trump says House GOP should vo | How did Rep. Dusty Johnson vot
    ("12d18995259a4faa", "da06019949024326", False),  # How Hamtramck, a small town wi | 'No Kings' protests: SUV charg
    ("3af33b34d3ed6794", "5db8f0b9176e1db5", True),  # What's happening in China afte | China is caught in a zero-Covi
    ("4d217ba6638e395a", "b0f4ed7a966297b9", False),  # RFK Jr. wants to improve food. | Arizona public schools must ba
    ("045ee1e4d04ffd61", "1a675235635133b7", False),  # Will the Trump tariff wars end | Trump auto tariffs go into eff
    ("3808238a2b36326b", "d917bcf78c7fb260", True),  # Bryan Kohberger accepts plea d | Why did Bryan Kohberger do it?
    ("bf55d930a1d9530c", "eb2765883201b41c", True),  # When will President Trump pard | White House turkey names, pard
    ("596565a994e01b6a", "5c5e7e8cac4cf671", True),  # 67th Annual Grammys: How to wa | Grammy Awards 2025: How to wat
    ("99432a90cf44a09d", "b205f86d4e1ff1a3", True),  # Three with Ohio connections am | DC plane crash: Helicopter had
    ("9755f45a7c33de49", "a511a3de7efc33ba", True),  # Super Bowl 2025: When, what to | NFL Super Bowl 2025: How to wa
    ("14cf451db563f572", "7c161300c36794b4", True),  # Trump's deficit-swelling tax b | Trump tax and Medicaid cuts: L
    ("9bf3743755a7fc58", "f981ca7b739908f8", False),  # Facebook is rebranding everyth | Why WhatsApp wants to convince
    ("13b1018f8a42853b", "79f01afa0ed5d4b5", True),  # What NFL teams always play on  | What NFL team has played the m
    ("4114ea7502504f52", "68048561c8bdcf4e", True),  # Anna Wintour stepping down: Vo | Anna Wintour leaving Vogue as 
    ("5568ad1ac02fee4d", "fb451269fcaee554", False),  # International Portuguese Music | Taylor Swift, Beyoncé aren't n
    ("1692b1fe09cfa08b", "93a7bdb90a719cc1", False),  # 2025 NWSL season resumes on Fr | Spain vs Germany highlights: W
    ("1a6f37da756ef36e", "7c9b04cc508680a1", True),  # Russian 8.8 magnitude earthqua | Massive earthquake sends sea l
    ("14cf451db563f572", "6a574fd6ff6c8df8", True),  # Trump's deficit-swelling tax b | Senate vote: 20 million people
    ("2e43aaa1bc03b6cc", "e65e0f081351321f", True),  # Trump had his military parade. | America250 celebrations start 
    ("467de6f6fecfce9d", "e79f9e59150f7ef3", True),  # Iran-US live updates: Trump fl | US issues warning on heightene
    ("579d1b87c48951f4", "fee7dbb95c1e0b28", False),  # Australia proposes ban on soci | Florida law banning social med
    ("4c257263dc574013", "646b60bd19246d1f", True),  # Texas scours for more than 170 | Texas flooding: New flooding r
    ("a4a08908ca4fc571", "fad65e1c1119fb45", True),  # Hurricane Melissa death toll o | Former Hurricane Melissa live 
    ("6aff8a72d67975ef", "9a3cac074ef7a2d5", True),  # Kirk's death is a tragic loss  | 
    ("48bae4a8f3b51def", "fac7b2f9ac4fdfdb", True),  # Trump's $2000 tariff checks ar | Trump says Americans will get 
    ("0e30e9be57059ac8", "f9b151940989155a", True),  # Trump announces 25% auto tarif | Trump's new car tariffs start 
    ("a6b5dcbefbb3b911", "e71d86d2a6de081b", False),  # How an arcane 96-year-old law  | 
    ("1230bb4c1a172965", "9fb0be1c355ebece", True),  # When is Pope Leo XIV's Latin m | New pope is Villanova grad; Ro
    ("4eb24ba454212eb2", "c97d2f89d2e28583", True),  # Michiganders, food banks brace | Are SNAP, WIC benefits paused?
    ("2764c57ec155fce7", "bb7e53ad91c7c9cf", False),  # FDA sends warning letters to m | Shredded cheeses sold at Walma
    ("1a675235635133b7", "73475a1e4d05bd7a", True),  # Trump auto tariffs go into eff | Tariffs updates: Republican se
    ("4471a04d3d232844", "48f78addc3869f71", True),  # President Trump is taking over | Trump deploying National Guard
    ("032148ee091bb06e", "21b8d479299e6b0d", True),  # Hegseth rips Pentagon 'decay,' | Trump threatens generals at me
    ("93f7c04ab6ce051d", "c58dd2c0eb538fcd", True),  # Is the federal government stil | Are banks closed today? See if
    ("520c2c5f79013135", "c08097f9c79a1306", False),  # Yosemite Park fire: Evacuation | Oak Fire: California's fast-mo
    ("726be193a62ceebf", "b57f792869a0a1cf", False),  # Golden Globes snubs 'Wicked,'  | Here are Duval County's 176 Te
]
# fmt: on
RT_TEXT_SHARING = 63  # the first 63 RT_LABELS: the pairs with J >= 0.1


# -- data ----------------------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def bbc_articles() -> dict[str, dict]:
    return {d["id"]: d for d in read_jsonl(BBC)}


def rt_articles() -> dict[str, dict]:
    return {d["id"]: d for d in read_jsonl(RT_ARTICLES)}


def bbc_category(doc_id: str) -> str:
    return doc_id.split("-")[1]


def exact_duplicate_pairs(docs: dict[str, dict]) -> set[tuple[str, str]]:
    by_text: dict[str, list[str]] = {}
    for doc_id, d in docs.items():
        by_text.setdefault(d["text"], []).append(doc_id)
    return {p for ids in by_text.values() for p in itertools.combinations(sorted(ids), 2)}


def pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def half(doc_id: str) -> str:
    return "tune" if hashlib.sha1(doc_id.encode()).digest()[0] % 2 == 0 else "held out"


# -- scoring -------------------------------------------------------------------------------------
def prf(predicted: set, positive: set) -> dict:
    tp = len(predicted & positive)
    p = tp / len(predicted) if predicted else 1.0
    r = tp / len(positive) if positive else 1.0
    return {"predicted": len(predicted), "positive": len(positive), "tp": tp, "precision": round(p, 4),
            "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def estimated_pairs(docs: dict[str, dict], floor: float) -> dict[tuple[str, str], float]:
    """Every pair the finder proposes at story threshold `floor`, with its estimated Jaccard."""
    finder = dedup.DuplicateFinder(copy_threshold=1.0, story_threshold=floor, story_days=None)
    out = {}
    for doc_id in sorted(docs):
        for link in finder.add(doc_id, dedup.fingerprint(docs[doc_id]["text"], docs[doc_id]["title"])):
            out[pair(doc_id, link.doc_id)] = link.jaccard
    return out


def group_pairs(groups: Iterable[tuple[str, ...]]) -> set[tuple[str, str]]:
    return {pair(a, b) for g in groups for a, b in itertools.combinations(g, 2)}


def days_apart(a: str | None, b: str | None) -> int | None:
    if not a or not b:
        return None
    return abs((date.fromisoformat(a[:10]) - date.fromisoformat(b[:10])).days)


# -- 1. BBC ----------------------------------------------------------------------------------------
def bbc_report(docs: dict[str, dict], est: dict[tuple[str, str], float], copy_t: float, story_t: float) -> dict:
    labels = {pair("bbc-" + a, "bbc-" + b): lab for a, b, lab in BBC_LABELS}
    exact = exact_duplicate_pairs(docs)
    for p in exact:
        labels[p] = "C"  # identical bodies
    finder = dedup.DuplicateFinder.from_fingerprints(
        (doc_id, dedup.fingerprint(docs[doc_id]["text"], docs[doc_id]["title"]), None) for doc_id in sorted(docs))
    copies = group_pairs(finder.groups("copies"))
    stories = group_pairs(finder.groups("story"))
    out: dict = {"exact_pairs": len(exact), "parts": {}}
    for part, keep in (("tune", lambda p: bbc_category(p[0]) in BBC_TUNE),
                       ("held out", lambda p: bbc_category(p[0]) not in BBC_TUNE),
                       ("all", lambda p: True)):
        pe = {p for p in exact if keep(p)}
        pc, ps = {p for p in copies if keep(p)}, {p for p in stories if keep(p)}
        lab = {p: v for p, v in labels.items() if keep(p)}
        out["parts"][part] = {
            "copies_vs_exact": prf(pc, pe),
            "copies_vs_labels": prf(pc, {p for p, v in lab.items() if v == "C"}),
            "story_vs_labels": prf(ps, {p for p, v in lab.items() if v in "CV"}),
            "copies_by_label": dict(Counter(lab.get(p, "unlabelled") for p in pc)),
            "story_by_label": dict(Counter(lab.get(p, "unlabelled") for p in ps)),
        }
    # What the copy pairs that are not exact duplicates are.
    out["copy_not_exact"] = [
        {"pair": p, "jaccard": round(est.get(p, 0.0), 3), "label": labels.get(p, "unlabelled"),
         "titles": [docs[p[0]]["title"], docs[p[1]]["title"]]}
        for p in sorted(copies - exact, key=lambda p: -est.get(p, 0.0))]
    out["story_false"] = [
        {"pair": p, "jaccard": round(est.get(p, 0.0), 3), "label": labels.get(p, "unlabelled"),
         "titles": [docs[p[0]]["title"], docs[p[1]]["title"]]}
        for p in sorted(stories, key=lambda p: -est.get(p, 0.0)) if labels.get(p, "O") == "O"]
    out["largest_story_group"] = max((len(g) for g in finder.groups("story")), default=1)
    out["largest_copy_group"] = max((len(g) for g in finder.groups("copies")), default=1)
    out["thresholds"] = {"copy": copy_t, "story": story_t}
    return out


def bbc_sweep(est: dict[tuple[str, str], float], exact: set[tuple[str, str]], part: str) -> dict:
    labels = {pair("bbc-" + a, "bbc-" + b): lab for a, b, lab in BBC_LABELS} | {p: "C" for p in exact}
    keep = (lambda p: bbc_category(p[0]) in BBC_TUNE) if part == "tune" else (lambda p: bbc_category(p[0]) not in BBC_TUNE)
    lab = {p: v for p, v in labels.items() if keep(p)}
    copies = {p for p, v in lab.items() if v == "C"}
    story = {p for p, v in lab.items() if v in "CV"}
    pairs = {p: j for p, j in est.items() if keep(p)}
    return {
        "copy": {t: prf({p for p, j in pairs.items() if j >= t}, copies) for t in COPY_GRID},
        "story": {t: prf({p for p, j in pairs.items() if j >= t}, story) for t in STORY_GRID},
    }


# -- 2. constructed --------------------------------------------------------------------------------
_SENT = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"”’']))\s+(?=[A-Z“\"‘'])")
_NUM = re.compile(r"\d+(?:[.,]\d+)*")
BOILERPLATE = [
    "Copyright 2026 Wire Services. All rights reserved.",
    "This story was first published by the Wire news agency.",
    "Sign up for our morning newsletter to get the day's top stories.",
    "Reporting by staff writers; editing by the news desk.",
    "Follow us for more updates on this story.",
]
DATELINES = ["LONDON (Wire) - ", "NEW YORK (Wire) - ", "PARIS (Wire) - "]
WORD_SWAPS = [("said", "says"), ("per cent", "percent"), ("will", "would"), ("about", "around"),
              ("also", "too"), ("more than", "over"), ("has been", "was"), ("but", "however")]


def sentences(text: str) -> list[str]:
    return [s for s in _SENT.split(" ".join(text.split())) if s]


def paragraphs(text: str) -> list[str]:
    paras = [p.strip() for p in text.split("\n") if p.strip()]
    return paras if len(paras) > 1 else sentences(text)


def light_copy(title: str, text: str, rng: random.Random) -> tuple[str, str]:
    """Three of the edits outlets make to a wire story they run."""
    edits = rng.sample(["headline", "reword", "drop", "boilerplate", "words"], 3)
    paras = paragraphs(text)
    for edit in edits:
        if edit == "headline":
            title = rng.choice([f"{title} - report", f"{title}, officials say", f"UPDATE: {title}",
                                " ".join(title.split()[:-1]) or title])
        elif edit == "reword" or edit == "drop":
            choices = [i for i, para in enumerate(paras) if para and i > 0] or [0]
            i = rng.choice(choices)
            sents = sentences(paras[i])
            k = rng.randrange(len(sents))
            if edit == "drop" and len(sents) > 1:
                del sents[k]
            elif edit == "drop":
                paras[i] = ""
                continue
            else:
                words = sents[k].split()
                for _ in range(2):
                    j = rng.randrange(len(words))
                    words[j] = rng.choice(["also", "later", "again", "now", "reportedly", "then"])
                sents[k] = " ".join(words)
            paras[i] = " ".join(sents)
        elif edit == "boilerplate":
            if rng.random() < 0.5:
                paras.append(rng.choice(BOILERPLATE))
            else:
                paras[0] = rng.choice(DATELINES) + paras[0]
        else:
            body = "\n".join(paras)
            for a, b in rng.sample(WORD_SWAPS, len(WORD_SWAPS)):
                body = re.sub(rf"\b{a}\b", b, body, count=1)
            paras = body.split("\n")
    return title, "\n".join(p for p in paras if p)


def revision(title: str, text: str, donor: dict, rng: random.Random) -> tuple[str, str]:
    """An updated version of the story: a new headline and lede, every figure revised, a new paragraph."""
    paras = paragraphs(text)
    new = sentences(donor["text"])
    lede = " ".join(new[:2])
    extra = " ".join(new[2:5]) or lede
    body = [lede] + paras[1:2] + [extra] + paras[2:]
    revised = _NUM.sub(lambda m: str(int(re.sub(r"\D", "", m.group(0)) or 0) + rng.randint(1, 9)), "\n".join(body))
    return donor["title"], revised


def figures_only(text: str, rng: random.Random) -> str:
    return _NUM.sub(lambda m: str(int(re.sub(r"\D", "", m.group(0)) or 0) + rng.randint(1, 9)), text)


def constructed(sets: dict[str, dict[str, dict]], seed: int = 13) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for name, docs in sets.items():
        ids = sorted(i for i, d in docs.items() if len(d["text"].split()) >= 80)
        seen_text: set[str] = set()
        for doc_id in ids:
            d = docs[doc_id]
            if d["text"] in seen_text:
                continue
            seen_text.add(d["text"])
            other = docs[rng.choice(ids)]
            while other["text"] == d["text"]:
                other = docs[rng.choice(ids)]
            donor = docs[rng.choice(ids)]
            # (headline, text as the Markdown loader gives it: the headline on its first line)
            article = lambda title, text: (title, f"{title}\n{text}")
            ct, cx = light_copy(d["title"], d["text"], rng)
            rt, rx = revision(d["title"], d["text"], donor, rng)
            rows.append({"set": name, "doc_id": doc_id, "half": half(doc_id), "words": len(d["text"].split()),
                         "original": article(d["title"], d["text"]), "copy": article(ct, cx),
                         "revision": article(rt, rx), "figures": article(d["title"], figures_only(d["text"], rng)),
                         "different": article(other["title"], other["text"])})
    return rows


CLASSES = ("copy", "revision", "figures", "different")


def constructed_estimates(rows: list[dict]) -> None:
    for r in rows:
        title, text = r["original"]
        fp = dedup.fingerprint(text, title)
        for c in CLASSES:
            title, text = r[c]
            r[f"j_{c}"] = dedup.jaccard(fp, dedup.fingerprint(text, title))


def exact_jaccard(a: str | tuple[str, str], b: str | tuple[str, str], k: int) -> float:
    """Of the bodies (an (headline, text) pair loses its headline line, as fingerprint does)."""
    a = dedup.body(a[1], a[0]) if isinstance(a, tuple) else a
    b = dedup.body(b[1], b[0]) if isinstance(b, tuple) else b
    sa, sb = dedup.shingles(a, k), dedup.shingles(b, k)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def constructed_report(rows: list[dict], part: str, copy_t: float, story_t: float) -> dict:
    rs = [r for r in rows if r["half"] == part]
    out: dict = {"articles": len(rs), "classes": {}}
    for c in CLASSES:
        js = sorted(r[f"j_{c}"] for r in rs)
        out["classes"][c] = {
            "min": round(js[0], 3), "p5": round(js[len(js) // 20], 3), "median": round(statistics.median(js), 3),
            "p95": round(js[len(js) * 19 // 20], 3), "max": round(js[-1], 3),
            "as_copy": round(sum(j >= copy_t for j in js) / len(js), 4),
            "as_story": round(sum(j >= story_t for j in js) / len(js), 4)}
    short = [r for r in rs if r["words"] < 200]
    out["short_articles"] = len(short)
    out["short_copy_recall"] = round(sum(r["j_copy"] >= copy_t for r in short) / len(short), 4) if short else None
    return out


def constructed_sweep(rows: list[dict], part: str) -> dict:
    rs = [r for r in rows if r["half"] == part]
    copy = {}
    for t in COPY_GRID:  # a light copy must be a copy, a different article must not
        tp = sum(r["j_copy"] >= t for r in rs)
        fp = sum(r["j_different"] >= t for r in rs)
        copy[t] = _f(tp, fp, len(rs)) | {
            "revision_as_copy": round(sum(r["j_revision"] >= t for r in rs) / len(rs), 4),
            "short_copy_recall": round(sum(r["j_copy"] >= t for r in rs if r["words"] < 200)
                                       / max(1, sum(r["words"] < 200 for r in rs)), 4)}
    story = {}
    for t in STORY_GRID:  # copies and revisions are one story; different articles are not
        tp = sum(r["j_copy"] >= t for r in rs) + sum(r["j_revision"] >= t for r in rs)
        fp = sum(r["j_different"] >= t for r in rs)
        story[t] = _f(tp, fp, 2 * len(rs))
    return {"copy": copy, "story": story}


def shingle_sizes(rows: list[dict], part: str) -> dict:
    """Exact Jaccard (no MinHash) of each class for shingles of 3, 5 and 7 words."""
    rs = [r for r in rows if r["half"] == part][:300]
    out = {}
    for k in (3, 5, 7):
        js = {c: sorted(exact_jaccard(r["original"], r[c], k) for r in rs) for c in ("copy", "revision", "different")}
        out[k] = {"copy_p5": round(js["copy"][len(rs) // 20], 3), "copy_median": round(statistics.median(js["copy"]), 3),
                  "revision_median": round(statistics.median(js["revision"]), 3),
                  "revision_p95": round(js["revision"][len(rs) * 19 // 20], 3),
                  "different_p99": round(js["different"][len(rs) * 99 // 100], 3),
                  "different_max": round(js["different"][-1], 3)}
    return out


def bbc_shingle_sizes(docs: dict[str, dict]) -> dict:
    """Exact Jaccard of the hand-labelled BBC pairs, by label, for 3-, 5- and 7-word shingles."""
    out = {}
    for k in (3, 5, 7):
        by: dict[str, list[float]] = {"C": [], "V": [], "O": []}
        for a, b, lab in BBC_LABELS:
            by[lab].append(exact_jaccard(docs["bbc-" + a]["text"], docs["bbc-" + b]["text"], k))
        out[k] = {lab: {"min": round(min(v), 3), "median": round(statistics.median(v), 3), "max": round(max(v), 3)}
                  for lab, v in by.items()}
    return out


def _f(tp: int, fp: int, positives: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / positives if positives else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


# -- 3. RealTime QA ----------------------------------------------------------------------------------
def rt_labels(docs: dict[str, dict]) -> dict[tuple[str, str], dict]:
    out = {}
    for a, b, same in RT_LABELS:
        newer = max(docs[a]["date"] or "", docs[b]["date"] or "")
        out[pair(a, b)] = {"same": same, "part": "held out" if newer >= RT_HELD_FROM else "tune",
                           "days": days_apart(docs[a]["date"], docs[b]["date"])}
    return out


def rt_sweep(est: dict[tuple[str, str], float], labels: dict, part: str) -> dict:
    lab = {p: v for p, v in labels.items() if v["part"] == part}
    positive = {p for p, v in lab.items() if v["same"]}
    out = {}
    for days in DAYS_GRID:
        for t in STORY_GRID:
            predicted = {p for p in lab if est.get(p, 0.0) >= t
                         and (days is None or lab[p]["days"] is None or lab[p]["days"] <= days)}
            out[f"{t}/{days}"] = prf(predicted, positive)
    return out


def rt_report(docs: dict[str, dict], labels: dict, copy_t: float, story_t: float, days: int | None) -> dict:
    finder = dedup.DuplicateFinder.from_fingerprints(
        ((doc_id, dedup.fingerprint(docs[doc_id]["text"], docs[doc_id]["title"]), docs[doc_id]["date"])
         for doc_id in sorted(docs)),
        copy_threshold=copy_t, story_threshold=story_t, story_days=days)
    stories = group_pairs(finder.groups("story"))
    copies = group_pairs(finder.groups("copies"))
    out: dict = {"parts": {}}
    for part in ("tune", "held out", "all"):
        lab = {p: v for p, v in labels.items() if part == "all" or v["part"] == part}
        positive = {p for p, v in lab.items() if v["same"]}
        high = positive & {pair(a, b) for a, b, _ in RT_LABELS[:RT_TEXT_SHARING]}
        out["parts"][part] = {
            "story_vs_labels": prf({p for p in stories if p in lab}, positive),
            "recall_on_text_sharing": prf({p for p in stories if p in lab}, high)["recall"],
            "labelled_pairs": len(lab), "same_story": len(positive)}
    out["low_sample_same_story"] = sum(same for _, _, same in RT_LABELS[RT_TEXT_SHARING:])
    out["predicted_story_pairs"] = len(stories)
    out["predicted_copy_pairs"] = len(copies)
    out["unlabelled_story_pairs"] = [
        {"pair": p, "days": days_apart(docs[p[0]]["date"], docs[p[1]]["date"]),
         "titles": [docs[p[0]]["title"], docs[p[1]]["title"]]} for p in sorted(stories) if p not in labels]
    out["largest_story_group"] = max((len(g) for g in finder.groups("story")), default=1)
    return out


# -- 4. cost -------------------------------------------------------------------------------------------
def filler(texts: list[str], n: int, words: int = 400, seed: int = 13) -> list[str]:
    """Unrelated articles: words drawn at random by their frequency in the real articles."""
    rng = random.Random(seed)
    counts = Counter(w for t in texts for w in t.split())
    vocab = list(counts)
    cum = list(itertools.accumulate(counts.values()))
    return [" ".join(rng.choices(vocab, cum_weights=cum, k=words)) for _ in range(n)]


BANDS_GRID = [(44, 2), (32, 1), (24, 1), (20, 1), (16, 1), (12, 1)]


def bands_report(real: list[tuple[str, str, str | None]], positives: list[tuple[str, str]],
                 fill_prints: list[tuple[str, bytes, str | None]]) -> dict:
    """For each LSH (bands, rows): memory per article, the share of hand-labelled positive pairs
    (BBC C/V, RealTime QA same story) above a Jaccard that the LSH proposes, and the query cost
    with the unrelated filler added. (44, 2) is what datasketch's optimiser picks for J = 0.2."""
    prints = [(doc_id, dedup.fingerprint(text), None) for doc_id, text, _ in real]
    sketches = {doc_id: dedup.read_fingerprint(data) for doc_id, data, _ in prints}
    est = [(pair(a, b), sketches[a].jaccard(sketches[b])) for a, b in positives]
    out = {}
    for bands in BANDS_GRID:
        finder = dedup.DuplicateFinder(copy_threshold=0.9, story_threshold=0.1, story_days=None, bands=bands)
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for doc_id, data, day in prints:
            finder.add(doc_id, data, day)
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        memory = sum(x.size_diff for x in after.compare_to(before, "filename")) / len(prints)
        found = {pair(a, link.doc_id) for a in sketches for link in finder.links(a)}
        recall = {}
        for t in (0.1, 0.15, 0.2, 0.3):
            above = [p for p, j in est if j >= t]
            recall[t] = f"{sum(p in found for p in above)}/{len(above)}"
        for doc_id, data, day in fill_prints:
            finder.add(doc_id, data, day)
        times, candidates = [], []
        for doc_id, data, _ in prints[:: max(1, len(prints) // 300)][:300]:
            candidates.append(len(finder._lsh.query(sketches[doc_id])) - 1)
            t0 = time.perf_counter()
            finder.similar(data)
            times.append(time.perf_counter() - t0)
        times.sort()
        out[f"{bands[0]}x{bands[1]}"] = {
            "memory_bytes_per_article": round(memory), "lsh_recall": recall,
            "query_median_ms": round(statistics.median(times) * 1000, 3),
            "query_p95_ms": round(times[len(times) * 19 // 20] * 1000, 3),
            "candidates_mean": round(statistics.mean(candidates), 2), "articles": len(finder)}
    return out


def cost(real: list[tuple[str, str, str | None]], fill: list[str]) -> dict:
    out: dict = {}
    t0 = time.perf_counter()
    prints = [(doc_id, dedup.fingerprint(text), day) for doc_id, text, day in real]
    out["fingerprint_ms"] = round((time.perf_counter() - t0) / len(real) * 1000, 3)
    out["fingerprint_bytes"] = len(prints[0][1])
    words = [len(text.split()) for _, text, _ in real]
    out["median_words"] = statistics.median(words)

    t0 = time.perf_counter()
    finder = dedup.DuplicateFinder.from_fingerprints(prints)
    out["rebuild_real_s"] = round(time.perf_counter() - t0, 3)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    measured = dedup.DuplicateFinder.from_fingerprints(prints)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    out["memory_bytes_per_article"] = round(sum(s.size_diff for s in after.compare_to(before, "filename")) / len(prints))
    del measured
    out["articles_real"] = len(prints)

    # Add and remove real articles into the full finder, then into one with the unrelated filler added.
    probe = prints[:: max(1, len(prints) // 300)][:300]
    out["at_real"] = _add_remove(finder, probe)
    t0 = time.perf_counter()
    fill_prints = [(f"filler-{i:06d}", dedup.fingerprint(t), None) for i, t in enumerate(fill)]
    out["fingerprint_filler_ms"] = round((time.perf_counter() - t0) / len(fill) * 1000, 3)
    t0 = time.perf_counter()
    big = dedup.DuplicateFinder.from_fingerprints(prints + fill_prints)
    out["rebuild_large_s"] = round(time.perf_counter() - t0, 3)
    out["articles_large"] = len(big)
    out["at_large"] = _add_remove(big, probe)
    out["filler_links"] = sum(1 for g in big.groups("story") if any(d.startswith("filler-") for d in g))
    out["fill_prints"] = fill_prints
    return out


def _add_remove(finder: dedup.DuplicateFinder, probe: list[tuple[str, bytes, str | None]]) -> dict:
    adds, removes, queries = [], [], []
    for doc_id, data, day in probe:
        t0 = time.perf_counter()
        finder.remove(doc_id)
        removes.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        finder.similar(data, day)
        queries.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        finder.add(doc_id, data, day)
        adds.append(time.perf_counter() - t0)

    def ms(xs: list[float]) -> dict:
        xs = sorted(xs)
        return {"median_ms": round(statistics.median(xs) * 1000, 3), "p95_ms": round(xs[len(xs) * 19 // 20] * 1000, 3)}

    return {"add": ms(adds), "remove": ms(removes), "query": ms(queries), "n": len(probe)}


# -- choosing --------------------------------------------------------------------------------------------
def choose(bbc_tune: dict, cons_tune: dict, rt_tune: dict) -> dict:
    """The settings the tune parts pick.

    Copy threshold: the highest one that still keeps 95% of the constructed light copies of
    *short* articles (< 200 words, where one reworded sentence is a fifth of the text) while the
    precision on the BBC hand labels stays at least 0.9. A missed wire copy is what issue 13
    complains about (five copies of one story in the top 5); the pairs a lower threshold wrongly
    calls copies are, on the BBC set, all updates by the same outlet, which `newsdesk.story`
    still shows as newer versions. The constructed revisions are reported, not used: they keep
    every paragraph but the lede, far more than real updates do (BBC versions: median J 0.22).
    (The first rule tried, the best worst-case F1 of the two, gave 0.70 and lost a fifth of the
    short copies: `copy_by_f1`.)

    Story threshold and window: the best worst-case F1 over the BBC and RealTime QA story labels
    (tune); ties go to the higher threshold (fewer false links) and the shorter window.
    """
    ok = [t for t in COPY_GRID if cons_tune["copy"][t]["short_copy_recall"] >= 0.95
          and bbc_tune["copy"][t]["precision"] >= 0.9]
    copy_t = max(ok) if ok else min(COPY_GRID)
    copy_by_f1 = max(COPY_GRID, key=lambda t: (min(bbc_tune["copy"][t]["f1"], cons_tune["copy"][t]["f1"]), t))
    story_t, days = max(itertools.product(STORY_GRID, DAYS_GRID), key=lambda td: (
        min(bbc_tune["story"][td[0]]["f1"], rt_tune[f"{td[0]}/{td[1]}"]["f1"]), td[0], -(td[1] or 10**6)))
    return {"copy": copy_t, "story": story_t, "story_days": days, "copy_by_f1": copy_by_f1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the JSON results instead of the tables")
    ap.add_argument("--filler", type=int, default=30000, help="unrelated articles added for the cost at scale")
    args = ap.parse_args()
    started = time.time()
    bbc, rt = bbc_articles(), rt_articles()
    result: dict = {"settings": {"shingle_words": dedup.SHINGLE_WORDS, "num_perm": dedup.NUM_PERM,
                                 "module_copy": dedup.COPY_THRESHOLD, "module_story": dedup.STORY_THRESHOLD,
                                 "module_story_days": dedup.STORY_DAYS}}

    floor = min(STORY_GRID)
    bbc_est = estimated_pairs(bbc, floor)
    rt_est = estimated_pairs(rt, floor)
    rows = constructed({"bbc": bbc, "rt": rt})
    constructed_estimates(rows)
    labels = rt_labels(rt)

    exact = exact_duplicate_pairs(bbc)
    sweeps = {"bbc": {p: bbc_sweep(bbc_est, exact, p) for p in ("tune", "held out")},
              "constructed": {p: constructed_sweep(rows, p) for p in ("tune", "held out")},
              "rt": {p: rt_sweep(rt_est, labels, p) for p in ("tune", "held out")}}
    chosen = choose(sweeps["bbc"]["tune"], sweeps["constructed"]["tune"], sweeps["rt"]["tune"])
    result["chosen_on_tune"] = chosen
    result["sweeps"] = sweeps
    copy_t, story_t, days = dedup.COPY_THRESHOLD, dedup.STORY_THRESHOLD, dedup.STORY_DAYS
    result["bbc"] = bbc_report(bbc, bbc_est, copy_t, story_t)
    result["constructed"] = {p: constructed_report(rows, p, copy_t, story_t) for p in ("tune", "held out")}
    result["shingle_sizes"] = {"constructed_tune": shingle_sizes(rows, "tune"), "bbc_labelled": bbc_shingle_sizes(bbc)}
    result["rt"] = rt_report(rt, labels, copy_t, story_t, days)
    real = [(f"bbc:{i}", d["text"], None) for i, d in bbc.items()] + [(f"rt:{i}", d["text"], d["date"]) for i, d in rt.items()]
    fill = filler([text for _, text, _ in real[:2000]], args.filler)
    result["cost"] = cost(real, fill)
    fill_prints = result["cost"].pop("fill_prints")
    positives = ([("bbc:bbc-" + a, "bbc:bbc-" + b) for a, b, lab in BBC_LABELS if lab in "CV"]
                 + [("rt:" + a, "rt:" + b) for a, b, same in RT_LABELS if same])
    result["bands"] = bands_report(real, positives, fill_prints)
    result["seconds"] = round(time.time() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dedup.json").write_text(json.dumps(result, indent=1, default=str))
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        print_tables(result)


def print_tables(r: dict) -> None:
    s = r["settings"]
    print(f"module: copy >= {s['module_copy']}, story >= {s['module_story']} within {s['module_story_days']} days; "
          f"chosen on tune: {r['chosen_on_tune']}")
    print("\nBBC (copy groups / story groups, pairs within groups)")
    for part, v in r["bbc"]["parts"].items():
        print(f"  {part:9} copies vs exact duplicates {v['copies_vs_exact']}")
        print(f"  {'':9} copies vs hand labels      {v['copies_vs_labels']}  by label {v['copies_by_label']}")
        print(f"  {'':9} story vs hand labels       {v['story_vs_labels']}  by label {v['story_by_label']}")
    print("  copy pairs that are not exact duplicates:")
    for x in r["bbc"]["copy_not_exact"]:
        print(f"    {x['jaccard']:.3f} {x['label']:10} {x['pair']} {x['titles']}")
    print("  story pairs labelled O (another story) or unlabelled:")
    for x in r["bbc"]["story_false"]:
        print(f"    {x['jaccard']:.3f} {x['label']:10} {x['pair']} {x['titles']}")
    print(f"  largest copy group {r['bbc']['largest_copy_group']}, largest story group {r['bbc']['largest_story_group']}")
    print("\nConstructed (estimated Jaccard against the original)")
    for part, v in r["constructed"].items():
        print(f"  {part}: {v['articles']} articles; short (<200 words) {v['short_articles']}, copy recall {v['short_copy_recall']}")
        for c, x in v["classes"].items():
            print(f"    {c:10} {x}")
    print("\nShingle sizes (exact Jaccard)")
    for k, v in r["shingle_sizes"]["constructed_tune"].items():
        print(f"  k={k} constructed tune {v}")
    for k, v in r["shingle_sizes"]["bbc_labelled"].items():
        print(f"  k={k} BBC labelled     {v}")
    print("\nRealTime QA same-story pairs")
    for part, v in r["rt"]["parts"].items():
        print(f"  {part:9} {v}")
    print(f"  low-J sample: {r['rt']['low_sample_same_story']} of 100 are one story; predicted story pairs "
          f"{r['rt']['predicted_story_pairs']} (unlabelled {len(r['rt']['unlabelled_story_pairs'])}), copy pairs "
          f"{r['rt']['predicted_copy_pairs']}, largest story group {r['rt']['largest_story_group']}")
    for x in r["rt"]["unlabelled_story_pairs"]:
        print(f"    unlabelled {x['days']} days {x['pair']} {x['titles']}")
    print("\nSweeps (tune | held out)")
    for t in COPY_GRID:
        b, c = r["sweeps"]["bbc"], r["sweeps"]["constructed"]
        bt, bh, ct, ch = b["tune"]["copy"][t], b["held out"]["copy"][t], c["tune"]["copy"][t], c["held out"]["copy"][t]
        print(f"  copy {t:.2f}: BBC p/r {bt['precision']:.3f}/{bt['recall']:.3f} | {bh['precision']:.3f}/{bh['recall']:.3f}"
              f"   constructed recall {ct['recall']:.3f} | {ch['recall']:.3f} (short {ct['short_copy_recall']:.3f} | "
              f"{ch['short_copy_recall']:.3f}), revisions as copies {ct['revision_as_copy']:.3f} | {ch['revision_as_copy']:.3f}")
    for t in STORY_GRID:
        b, c, q = r["sweeps"]["bbc"], r["sweeps"]["constructed"], r["sweeps"]["rt"]
        d = r["settings"]["module_story_days"]
        print(f"  story {t:.2f}: BBC p/r {b['tune']['story'][t]['precision']:.3f}/{b['tune']['story'][t]['recall']:.3f} | "
              f"{b['held out']['story'][t]['precision']:.3f}/{b['held out']['story'][t]['recall']:.3f}   "
              f"RT ({d} days) p/r {q['tune'][f'{t}/{d}']['precision']:.3f}/{q['tune'][f'{t}/{d}']['recall']:.3f} | "
              f"{q['held out'][f'{t}/{d}']['precision']:.3f}/{q['held out'][f'{t}/{d}']['recall']:.3f}   "
              f"constructed f1 {c['tune']['story'][t]['f1']:.3f}")
    print("\nLSH bands (LSH recall on labelled pairs above J; query with the filler)")
    for k, v in r["bands"].items():
        print(f"  {k:6} {v}")
    print("\nCost")
    for k, v in r["cost"].items():
        print(f"  {k}: {v}")
    print(f"\n{r['seconds']} s")


if __name__ == "__main__":
    main()
