# %% [markdown]
# # 6. Interactive Gradio UI
#
# **What:** a small web app around the fine-tuned model. The *Chat* tab holds a multi-turn conversation
# with streamed answers (stop button, temperature / top-p / length sliders, example questions, clear);
# the *Compare* tab answers one question with the base model (adapter switched off) and the fine-tuned
# model side by side.
#
# **Why this way:** the prompt is built with `build_messages` and the model's own chat template — exactly
# the rendering used in training and evaluation — so what you see here is what was measured. A medical
# demo also needs rails: a disclaimer that never leaves the screen, an emergency notice for red-flag
# messages, a note when a question is off-topic, and input checks. The rails **inform, they never
# block**: the model still answers, because hiding the answer would not make anyone safer.

# %% [markdown]
# ### Safety rails: two small rule tables
#
# Each rule is one row: a name, regular expressions, and the notice shown in the chat.
#
# - **Red flags** — eleven emergencies: chest pain, breathing, stroke signs, self-harm, overdose/poisoning,
#   anaphylaxis, severe bleeding, seizure/unconsciousness, a sudden severe ("thunderclap") headache or a
#   head injury with warning signs, pregnancy (bleeding, severe pain, a baby that stops moving), and
#   sepsis/meningitis/a feverish floppy baby. A rule fires when a **symptom** matches (patterns built from a
#   small lexicon, with typos corrected) **and** the **context** says it is happening to someone now:
#   an urgent word (*help, right now*), a person (*I, my, she, someone*), or a terse report with no
#   question form (*"left arm numb, sweating"*). A knowledge question without a person (*"what is the
#   first-line treatment for anaphylaxis?"*), a textbook case or exam, a symptom after *no/without*, and
#   events *years ago* do not fire. The notice comes **before** any model text. The context is deliberately
#   loose: a false alarm costs one sentence, a miss could cost much more (*"can I take aspirin for my chest
#   pain?"* is flagged, and should be). Measured on the 340-message benchmark in `tests/data/red_flags.csv`
#   (`tests/test_red_flags.py`): recall 100 % and 0 % false alarms on all of it, also on its held-out part
#   (36 emergencies, 20 look-alikes) — but a fresh set of 38 new emergency phrasings first caught only 25
#   of them: expect misses on wordings nobody tried, which is why the disclaimer always stays on screen.
# - **Off-topic** (programming, sport, cooking, finance, entertainment): a note that the model was only
#   trained on medical flashcards, shown when a topic keyword matches and no medical word does
#   (*"is football good for my heart?"* is on-topic).

# %% tags=["lib"]
import contextlib
import inspect
import threading
from typing import NamedTuple

from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer


class Rule(NamedTuple):
    """One row of a rule table: a name, regular expressions (any may match), and the notice to show."""

    name: str
    patterns: tuple
    notice: str


# %% [markdown]
# The red-flag table. Each rule's patterns are built from a small **symptom lexicon** (the named
# pieces below), not from whole sentences: a body part near a warning word ("chest … pressure",
# "lips … blue"), a named emergency ("anaphylaxis", "sepsis"), or two findings in one message that are
# only dangerous together (fever **and** a floppy baby, pregnancy **and** bleeding, a knock to the head
# **and** vomiting). `{W}` stands for "up to a few words in between".

# %% tags=["lib"]
EMERGENCY = "**Call your local emergency number now** (112 EU, 911 US, 999 UK)"
W = r"(?:[\w'-]+\W+){0,5}?"  # up to five words in between
FEVER = (r"(fever\w*|temperature|\btemp\b|burning\s+up|febrile|hot\s+to\s+(the\s+)?touch|\b3[89]([.,]\d)?\s*°?\s*c?\b|"
         r"\b10[1-6]([.,]\d)?\s*°?\s*f?\b)")
ALTERED = (r"(confus\w*|drows\w*|sleepy|floppy|limp|unresponsive|not\s+respond\w*|(hard|difficult|"
           r"impossible)\s+to\s+wake|"
           r"(won'?t|can'?t|will\s+not|cannot)\s+(be\s+)?(wake|woken|rous)\w*|not\s+(making\s+sense|themselves)|"
           r"acting\s+strange\w*|"
           r"delirious|disorient\w*|talking\s+(nonsense|gibberish|rubbish)|gibberish|fast\s+(heart\w*|pulse)|"
           r"not\s+feeding|(won'?t|will\s+not|refus\w*\s+to)\s+(feed|eat|drink)|weak\s+cry|mottled|"
           r"(cold|blue)\s+(hands|feet|lips)|racing|(breathing|breathes)\s+(really\s+|very\s+)?(fast|rapid\w*|hard)|"
           r"shaking\s+chills|rigou?rs|shivering|very\s+(unwell|ill|sick)|dizzy|faint\w*|low\s+blood\s+pressure|"
           r"blood\s+pressure\s+(is\s+)?(\w+\s+)?low|(not|n't|haven'?t|hasn'?t)\s+(peed|passed\s+urine|wee\w*|"
           r"urinated))")
BABY = (r"(baby|infant|newborn|new-born|\b([1-9]|1[0-2])\s*(day|week)s?[\s-]*old|\b[1-3]\s*months?[\s-]*old|"
        r"\bmonth[\s-]*old)")
PREGNANT = (r"(pregnan\w*|expecting\s+a\s+baby|\b\d{1,2}\s*weeks?\s*(pregnant|along|gestation)|^\W*\d{1,2}\s*weeks\b|"
            r"\bat\s+\d{1,2}\s*weeks|(giving|gave|given)\s+birth|after\s+(the\s+)?(birth|delivery)|postpartum|"
            r"miscarr\w*)")
HEAD_HIT = (r"((hit|banged|bumped|knocked|bashed|smacked|struck|hurt|injured|cracked)\s+(\w+\s+){0,2}?head\b|"
            r"head\s+(injury|trauma|wound|knock)|concuss\w*|fell\s+(\w+\s+){0,3}?(on|onto)\s+(\w+\s+)?head|"
            r"(car|bike|motorbike|road)\s+(crash|accident)|fell\s+(down|off|from)|\b(a|the|his|her|my)\s+fall\b)")
HEAD_SIGN = (r"(vomit\w*|throw\w*\s+up|being\s+sick|confus\w*|drows\w*|sleepy|unconscious|lost\s+consciousness|"
             r"knocked\s+(out|unconscious)|blacked\s+out|blurr\w*|double\s+vision|fluid|pupils?|seizure|fit\b|fitting|"
             r"acting\s+(strange|odd|weird)\w*|not\s+making\s+sense|slurr\w*|(terrible|severe|worst|bad)\s+headache|"
             r"can'?t\s+remember|memory)")
BLEED = r"(bleed\w*|blood\w*|haemorrhag\w*|hemorrhag\w*)"


def together(*pieces):
    """A pattern that matches when every piece occurs somewhere in the message, in any order."""
    return "(?s)^" + "".join(f"(?=.*?{piece})" for piece in pieces)


# %% [markdown]
# The rules, one row each: heart, breathing and stroke first.

# %% tags=["lib"]
RED_FLAG_RULES = [
    Rule("chest pain",
         (rf"\b(chest|breastbone|sternum)\W+{W}(pain|pressure|tight\w*|heav\w*|squeez\w*|crush\w*|discomfort|hurt\w*|"
          rf"ache\w*|burn\w*|weight)",
          rf"\b(pain\w*|pressure|tight\w*|heav\w*|squeez\w*|crush\w*|discomfort|ache|weight|elephant|sitting|"
          rf"standing|pressing)\W+{W}(chest|breastbone|sternum)\b",
          r"\bclutch\w*\s+(\w+\s+)?chest", r"\bheart\s+attack", r"\bcardiac\s+arrest",
          rf"\bpain\w*\W+{W}(spread\w*|radiat\w*|going|goes|moving|shooting)\s+(\w+\s+){{0,3}}?(arm|jaw|neck|shoulder)",
          together(r"\b(arm|jaw)\b.{0,25}\b(numb\w*|tingl\w*|heav\w*|pain\w*|ache\w*|hurt\w*)",
                   r"(sweat\w*|clammy|nause\w*|sick|short\s+of\s+breath|breathless)")),
         "🚨 **Chest pain can be a heart attack**, especially with breathlessness, sweating or pain spreading to the "
         f"arm or jaw. {EMERGENCY}; do not drive yourself."),
    Rule("breathing",
         (r"\b(can'?t|cannot|could\s*n'?t|unable\s+to|struggl\w*(\s+to)?|hard\s+to|difficult\w*|trouble|fighting)\s+"
          r"(to\s+)?(breath\w*|(catch|get)\s+(\w+\s+)?breath|get\s+(any\s+)?air)",
          r"\b(struggl\w*|fighting|gasp\w*)\s+(for\s+)?(air|breath)", r"\bgasping\b", r"\bchok(ing|ed|es)\b",
          r"\b(not|isn'?t|stopped|stops|barely|hardly)\s+breath\w*",
          r"\blips?\s+(are\s+|is\s+)?(turning\s+|going\s+)?blue",
          r"\bblue\s+lips", r"\bstridor\b|\bhigh[\s-]pitched\s+(noise|sound|whistle|wheeze)",
          together(r"\bbreath\w*", r"(struggl\w*|labou?red|gasp\w*|can'?t\s+(talk|speak))"),
                   r"\b(can'?t|cannot|unable\s+to)\s+(finish|complete|say)\s+(a\s+)?(full\s+)?sentences?",
          r"\bbarely\s+(talk|speak)", r"\bsucking\s+in\b|\brecession\b",
          r"\basthma\s+attack\b.{0,40}\b(not|won'?t|isn'?t|worse|severe|bad)",
          r"\b(inhaler|puffer)\s+(is\s+)?(not|isn'?t|doesn'?t|didn'?t)\s+(work|help)\w*"),
         f"🚨 **Severe difficulty breathing is an emergency.** {EMERGENCY}."),
    Rule("stroke signs",
         (r"\b(face|mouth|smile)\s+(is\s+|has\s+)?(gone\s+|went\s+)?(droop\w*|lopsided|fallen|numb|crooked)",
          r"\b(droop\w*|lopsided|crooked)\s+(face|mouth|smile|on\s+one\s+side)", r"\bslurr?(ed|ing|s)\b",
          r"\b(one|left|right)[\s-]+sided\s+(weakness|numbness|paralysis)",
          r"\bhalf\s+(of\s+)?(my|his|her|the)\s+(face|body)",
          r"\b(weak|weakness|numb|numbness|paralys\w*)\s+(on|in|down)\s+(one|the\s+(left|right)|(my|his|her)\s+(left|"
          r"right))\s+side",
          r"\b(can'?t|cannot|unable\s+to)\s+(move|lift|feel|use|raise)\s+(my|his|her|their|the)\s+((left|"
          r"right)\s+)?(arm|leg|face|hand|side)",
          r"\b(left|right)\s+side\s+of\s+(my|his|her|their|the)\s+(face|body)", r"\bhaving\s+a\s+stroke",
          r"\bwords?\s+(come|comes|coming|came)\s+out\s+(wrong|jumbled|garbled)",
          r"\b(can'?t|cannot)\s+(speak|talk)\s+(properly|clearly|right|normally|at\s+all)|\b(trouble|"
          r"difficulty)\s+(speak|talk)ing",
          r"\bsudden\w*\s+(\w+\s+)?(weakness|numbness|paralysis|loss\s+of\s+vision|blind\w*|confusion)"),
         f"🚨 **Face drooping, arm weakness or slurred speech can be a stroke.** {EMERGENCY} and note the time "
         "the symptoms started."),
]

# %% [markdown]
# Mental health, poisoning and allergy.

# %% tags=["lib"]
RED_FLAG_RULES += [
    Rule("self-harm",
         (r"\b(kill|hurt|harm|cut|hang|shoot|drown|poison)\w*\s+(myself|himself|herself|themselves|ourselves)",
          r"\bsuicid\w*", r"\bend\w*\s+(it\s+all|things|everything|(my|his|her|their)\s+(own\s+)?life)",
          r"\btak\w*\s+(my|his|her|their)\s+(own\s+)?life", r"\b(want|wants|wanting|going|ready|plan\w*)\s+to\s+die",
          r"\b(don'?t|do\s+not|doesn'?t|no\s+longer)\s+want\s+to\s+(be\s+alive|live|exist|be\s+here|wake\s+up)",
          r"\bself[\s-]?harm\w*", r"\bno\s+reason\s+to\s+live", r"\bbetter\s+off\s+(dead|without\s+me)",
          r"\bdisappear\s+(for\s+good|forever)", r"\bplan\w*\s+to\s+(kill|end|hang|overdose)",
          r"\b(want|wants|wish)\s+(it\s+all|everything|this|it)\s+to\s+(be\s+over|end)",
          r"\bpoint\s+(in|of)\s+(living|life|going\s+on)|\b(tired|sick)\s+of\s+(living|life)\b",
          r"\b(can'?t|cannot)\s+go\s+on\s+(anymore|any\s+more|like\s+this|living)",
          r"\bwish\s+(i|he|she)\s+(was|were)\s+dead"),
         "🚨 **You are not alone.** If you might act on thoughts of suicide or self-harm, call your local emergency "
         "number now, or talk to a crisis line today (988 in the US, 116 123 in the UK and Ireland)."),
    Rule("overdose or poisoning",
         (r"\boverdos\w*", r"\bpoison(ed|ing)\b", r"\bcarbon\s+monoxide",
          r"\b(took|taken|take|taking|swallowed|swallowing|ate|eaten|drank|drunk|had|"
          r"has\s+had)\s+(\w+\s+){0,3}?(\d{2,}|too\s+(many|much)|way\s+too|a\s+(load|lot|bunch|heap|pile|strip)\s+of|"
          r"a\s+whole|the\s+whole|all\s+(of\s+)?(my|his|her|the)|a\s+(bottle|packet|box|handful)|double|triple|"
          r"extra)\b",
          r"\b(ate|eaten|swallowed|chewed|got\s+into)\s+(\w+\s+){0,5}?(pills?|tablets?|medicines?|medication|meds|"
          r"capsules?)",
          r"\b(swallowed|drank|drunk|drinking|ate|eaten|licked|chewed|ingested|inhaled)\s+(\w+\s+){0,4}?(bleach|"
          r"poison\w*|"
          r"anti-?freeze|detergent|pods?|batter(y|ies)|magnets?|pesticide|weed\s?killer|cleaner|cleaning|lye|drain|"
          r"paraffin|"
          r"kerosene|petrol|gasoline|chemicals?|mushrooms?|berries|lamp\s+oil)"),
         f"🚨 **Possible overdose or poisoning.** {EMERGENCY} or a poison control centre, even if the person seems "
         "well; keep the package."),
    Rule("anaphylaxis",
         (r"\banaphyla\w*", r"\bepi-?pen|\badrenaline\s+(auto-?)?(pen|injector)",
          r"\b(throat|tongue|lips?|mouth)\s+(\w+\W+){0,4}?(swell\w*|swollen|closing|tight\w*|puff\w*|thick\w*)",
          r"\b(swollen|swelling|puffy)\s+(of\s+|in\s+)?(my\s+|his\s+|her\s+|the\s+)?(throat|tongue|lips?)",
          r"\b(severe|bad|serious|major)\s+allergic\s+reaction",
          together(r"(allerg\w*|stung|stings?|bitten|peanuts?|nuts?|shellfish|shrimp|hives)",
                   r"(swell\w*|swollen|wheez\w*|breath\w*|faint\w*|dizzy|hard\s+to\s+swallow|can'?t\s+swallow|"
                   r"throat)")),
         "🚨 **Throat or tongue swelling after a sting, food or medicine can be anaphylaxis.** Use an adrenaline "
         f"auto-injector if there is one; {EMERGENCY}."),
    Rule("severe bleeding",
         (rf"\b{BLEED}\W+{W}(won'?t|will\s+not|doesn'?t|does\s+not|isn'?t|is\s+not|not|can'?t)\s+(stop\w*|slow\w*)",
          rf"\b(won'?t|can'?t|cannot|couldn'?t)\s+stop\s+(the\s+|his\s+|her\s+)?{BLEED}",
          rf"\b(severe|uncontroll\w*|massive|heavy|heavily|spurting|profuse|lots\s+of|a\s+lot\s+of)\s+(\w+\s+)?{BLEED}",
          rf"\b{BLEED}\s+(\w+\s+)?(heavily|badly|profusely|a\s+lot|loads|everywhere|non[\s-]?stop)",
          rf"\b{BLEED}\W+{W}(spurt\w*|pour\w*|gush\w*|squirt\w*|pump\w*)",
          rf"\b(spurt\w*|pour\w*|gush\w*)\W+{W}{BLEED}",
          r"\b(soak\w*)\s+(through\s+)?(\w+\s+){0,3}?(towels?|bandages?|pads?|cloths?|dressings?|clothes|shirt)",
          rf"\b(vomit\w*|cough\w*|throw\w*|puk\w*|spit\w*)\s+(up\s+)?(\w+\s+){{0,2}}?{BLEED}",
          rf"\b(losing|lost)\s+(\w+\s+){{0,3}}?{BLEED}", r"\bnose\s?bleed\b.{0,40}\b(hour|won'?t|not\s+stop)"),
         f"🚨 **Severe bleeding is an emergency.** Press firmly on the wound and {EMERGENCY}."),
]

# %% [markdown]
# Seizures and collapse, sudden severe headache or head injury, pregnancy, and sepsis, meningitis or a
# feverish baby.

# %% tags=["lib"]
RED_FLAG_RULES += [
    Rule("seizure or unconscious",
         (r"\b(unconscious|unresponsive|collapsed|unrousable)\b|\bknocked\s+(out|unconscious)|"
          r"\blost\s+consciousness", r"\b(won'?t|will\s+not|can'?t|cannot|couldn'?t)\s+(\w+\s+)?wake\b",
          r"\bnot\s+(waking|respond\w*|moving)\b|\bno\s+response\b|\b(isn'?t|is\s+not|stopped)\s+respond\w*",
          r"\b(having|had|has|keeps\s+having|another)\s+(an?\s+)?(seizures?|fits?|convulsions?)\b",
          r"\b(seizing|convulsing|fitting)\b",
          r"\bseizures?\b.{0,40}\b(minutes|won'?t|not\s+stop|again|first)",
          r"\b(shaking|jerking|twitching)\b.{0,30}\b(jerk\w*|floor|eyes)",
          r"\b(passed\s+out|fainted|blacked\s+out)\b.{0,40}\b(wake|respond\w*|breath\w*|again|still)"),
         f"🚨 **A seizure, or someone who cannot be woken, needs help now.** {EMERGENCY}."),
    Rule("sudden severe headache or head injury",
         (together(r"(headache|head\s*ache|\bhead\W+(\w+\W+){0,3}?(pain|explod\w*|agony|hurts?)|"
          r"pain\s+in\s+(\w+\s+)?head)",
                   r"(sudden\w*|out\s+of\s+nowhere|(with)?in\s+(a\s+few\s+)?seconds|thunderclap|explosive|worst|"
                   r"like\s+(being\s+)?(hit|struck|kicked)|10\s*/\s*10|10\s+out\s+of\s+10|stiff\s+neck|excruciating)"),
          r"\bthunderclap\b", together(HEAD_HIT, HEAD_SIGN)),
         "🚨 **A sudden, severe headache — or a head injury with vomiting, drowsiness or confusion — can be bleeding "
         f"in the brain.** {EMERGENCY}."),
    Rule("pregnancy",
         (together(PREGNANT, rf"({BLEED}|(severe|bad|terrible|sharp|intense|strong|awful)\s+(\w+\s+)?(pain|cramp\w*|"
          rf"headache)|"
                             r"pain\s+on\s+one\s+side|blurr\w*|vision|swollen|swelling|faint\w*|\bfits?\b|seizure|"
                             r"waters?\s+(broke|broken|breaking|went)|not\s+moving|stopped\s+moving)"),
          r"\bbaby\s+(has\s+)?(stopped|isn'?t|is\s+not|hasn'?t|not)\s+(been\s+)?(moving|kicking)",
          r"\breduced\s+(fetal\s+|foetal\s+|baby\s+)?movements?"),
         "🚨 **Bleeding, severe pain, a bad headache with blurred vision, or a baby that stops moving in pregnancy "
         f"needs urgent care.** {EMERGENCY} or your maternity unit now."),
    Rule("sepsis, meningitis or a feverish baby",
         (r"\b(sepsis|septic|meningitis|meningococcal)\b",
          r"\b(rash|spots|marks|blotches)\b.{0,40}\b(doesn'?t|does\s+not|won'?t|will\s+not|not|isn'?t|"
          r"didn'?t)\s+(fad\w*|blanch\w*|disappear\w*|go\s+away)",
          together(r"\b(rash|spots|marks|blotches)\b", r"\bglass\b"),
          r"\b(non[\s-]?blanching|purple|purpuric|petechi\w*)\s+(\w+\s+)?(rash|spots)", r"\bglass\s+test",
          together(r"(stiff\w*\s+neck|neck\s+(\w+\s+)?(stiff\w*)|can'?t\s+(bend|touch|move)\s+(\w+\s+)?(neck|chin))",
                   rf"({FEVER}|headache|light|vomit\w*|rash|confus\w*|drows\w*)"),
          r"\bbulging\s+(soft\s+spot|fontanell?e)", r"\bmottled\b",
          together(FEVER, ALTERED), together(BABY, rf"({FEVER}|\bhot\b|floppy|limp|(won'?t|not|isn'?t|"
                   rf"refus\w*\s+to)\s+(feed|feeding)|"
                                              r"hard\s+to\s+wake|unusually\s+(drowsy|sleepy))"),
          together(r"\binfect\w*", ALTERED)),
         "🚨 **Fever with confusion, a rash that does not fade under a glass, a stiff neck, or a floppy, drowsy baby "
         f"can be sepsis or meningitis.** {EMERGENCY}."),
]

# %% [markdown]
# When a symptom matches, the **context** decides. The notice is shown when the message is urgent
# (*help, right now, ambulance*), or about someone real (*I, my, we, someone, could this be*), or a
# terse report (*"left arm numb, sweating"*) — and not shown for a knowledge question without a
# person (*"what is the first-line treatment for anaphylaxis?"*), a textbook case (*"a 55-year-old man
# presents with…"*, *"for my exam"*), or something long past (*"five years ago"*). A symptom after
# *no / without* does not count (*"a cough but no chest pain"*). Before matching, common typos of the
# lexicon's words are corrected (*cheast, siezure, pregant*) and curly apostrophes and dropped ones
# straightened (*can’t, cant*).

# %% tags=["lib"]
import difflib
import functools

URGENT_CUES = (r"\b(right\s+now|just\s+now|emergency|ambulance|911|999|112|a&e|asap|urgent\w*|hurry)\b",
               r"^\W*help\b|\bhelp\s*(me|us|him|her|please)?\s*[!,.]|\bhelp\s*$|!\s*$",
               r"\bshould\s+(i|we|he|she|they)\s+(go|call|take)\b")
FIRST_PERSON = (r"(?<!type )(?<!class )(?<!grade )(?<!stage )(?<!phase )\bi\b(?!\.e)",
                r"\b(i'm|i've|i'd|i'll|me|my|myself|mine|we|we're|we've|us|our)\b",
                r"\b(could|can|might|is)\s+(this|it)\s+be\b")
THIRD_PERSON = (r"\b(someone|somebody|he|she|he's|she's|him|his|her)\b",)
HYPOTHETICAL = (r"\b(if|when|whenever)\s+(someone|somebody|a\s+(person|child|baby|patient)|you|they|people)\b",
                r"\b(someone|somebody|a\s+person|people)\s+who\b")
TEXTBOOK_CUES = (r"\b(textbook|exams?|usmle|lectures?|quiz|flashcards?|revision|studying|homework|essay|assignment|"
                 r"mcq|vignette|students?|nursing\s+school|med(ical)?\s+school|syllabus|professor|curriculum)\b",
                 r"\bpresent(s|ed|ing)\s+(to\s+\w+\s+)?with\b", r"\bmost\s+likely\b",
                 r"\bnext\s+(best\s+)?step\b", r"\b(a|the)\s+patient\b|\bpatients\b",
                 r"\b\d+[\s-]*(year|yr)s?[\s-]*old\s+(man|woman|male|female|patient)\b")
PAST_CUES = (r"\b(\d+|a|one|two|three|four|five|six|seven|eight|nine|ten|several|few|many)\s+(years?|months?)\s+ago\b",
             r"\blast\s+(year|month|summer|winter)\b", r"\b(history\s+of|in\s+the\s+past|used\s+to|years\s+back)\b")
QUESTION_FORM = (r"^\W*(what|which|why|how|when|where|who|whom|whose|define|definition|describe|explain|list|name|"
                 r"compare|outline|discuss|differentiate|distinguish|mechanism|pathophysiology|causes?\s+of|"
                 r"signs?\s+of|symptoms?\s+of|treatment|management|diagnosis|true\s+or\s+false)\b",
                 r"^\W*(is|are|can|could|does|do|would|will|should)\s+(?!(i|me|my|we|our|he|she|they|it|this|"
                 r"someone)\b)",
                 r"\b(mechanism|pathophysiology|first[\s-]line|drug\s+of\s+choice|antidote|epidemiology|prognosis|"
                 r"mortality|risk\s+factors?|definition|differential|indicated|indications?|guidelines?|classic\w*|"
                 r"empirical|prophylaxis|dose\s+of|dosage)\b")
NEGATION = r"\b(no(?!\s+(one|longer|reason|pulse|response))|not\s+any|without|denies|denied|never\s+had|" \
           r"(don'?t|doesn'?t|didn'?t)\s+have|haven'?t\s+(got|had))\b"
CONTRACTIONS = {"cant": "can't", "wont": "won't", "dont": "don't", "doesnt": "doesn't", "isnt": "isn't",
                "didnt": "didn't", "couldnt": "couldn't", "im": "i'm", "ive": "i've", "alot": "a lot", "hes": "he's",
                "shes": "she's", "u": "you", "pls": "please", "plz": "please"}
LEXICON = ("chest", "breathe", "breathing", "breath", "bleeding", "blood", "unconscious", "unresponsive", "seizure",
           "seizing", "convulsing", "headache", "suicide", "suicidal", "overdose", "overdosed", "poisoned", "poisoning",
           "pregnant", "pregnancy", "swelling", "swollen", "drooping", "slurred", "slurring", "sweating", "vomiting",
           "fever", "feverish", "floppy", "stiff", "confused", "tongue", "throat", "anaphylaxis", "allergic", "choking",
           "wheezing", "gasping", "pressure", "tightness", "collapsed", "meningitis", "sepsis", "temperature",
           "bleach", "antifreeze", "paracetamol", "tablets", "painkillers", "consciousness", "weakness", "numbness",
           "spurting", "drowsy", "mottled", "bulging", "thunderclap", "worst", "sudden", "suddenly", "stroke",
           "attack", "heart", "crushing", "squeezing", "myself", "breathless", "infection", "newborn")
# Ordinary words one letter away from a lexicon word: never "corrected" (cooking is not choking).
NOT_TYPOS = frozenset({"cooking", "looking", "booking", "breeding", "swearing", "sweeping", "pleasure", "stepped",
                       "heater", "hearth", "bleaching", "chests", "tablet", "flappy", "sleeping", "stuffy", "swallow"})


# %% [markdown]
# Typos in the key words (*cheast*, *siezure*) are corrected against the symptom lexicon before matching,
# and a match counts only when the message is about a person now: not a textbook or exam question, not a
# hypothetical, not something years ago, not negated (*no chest pain*).

# %% tags=["lib"]
@functools.lru_cache(maxsize=4096)
def correct_word(word):
    """The lexicon word a misspelt word of five or more letters stands for (cheast → chest), else the word itself."""
    if len(word) < 5 or word in LEXICON or word in NOT_TYPOS:
        return word
    close = difflib.get_close_matches(word, [w for w in LEXICON if w[0] == word[0]], n=1, cutoff=0.84)
    return close[0] if close else word


def normalize_for_rules(text):
    """Lower-case, straighten apostrophes, restore dropped ones (cant → can't) and correct typos of lexicon words."""
    text = text.lower().replace("\u2019", "'").replace("`", "'")
    parts = re.split(r"([a-z']+)", text)  # odd indices are words, even ones what lies between them
    return "".join(correct_word(CONTRACTIONS.get(p, p)) if index % 2 else p for index, p in enumerate(parts))


def negated(text, start):
    """True when the clause before position start says no/without (the symptom is denied, not reported)."""
    clause = re.split(r"[.,;:!?]|\bbut\b", text[:start])[-1]
    return re.search(NEGATION, clause) is not None


def rule_matches(text, rule):
    """True when any of the rule's patterns occurs in the (normalised) text and is not negated."""
    return any(not negated(text, match.start()) for pattern in rule.patterns for match in re.finditer(pattern, text))


def any_cue(text, cues):
    """True when any of the cue patterns occurs in the (normalised) text."""
    return any(re.search(cue, text) for cue in cues)


def about_a_person_now(text):
    """True when a (normalised) message reports a real, current situation rather than asking about knowledge."""
    if any_cue(text, URGENT_CUES):
        return True
    if any_cue(text, TEXTBOOK_CUES) or any_cue(text, PAST_CUES):
        return False
    if any_cue(text, FIRST_PERSON):
        return True
    question = any_cue(text, QUESTION_FORM)
    if question and any_cue(text, HYPOTHETICAL):
        return False
    return any_cue(text, THIRD_PERSON) or not question


def red_flag_notices(message):
    """Notices of the red-flag rules a message matches, in table order, when it is about a real person now."""
    text = normalize_for_rules(message)
    matched = [rule.notice for rule in RED_FLAG_RULES if rule_matches(text, rule)]
    return matched if matched and about_a_person_now(text) else []


# %% [markdown]
# The off-topic table and its check.

# %% tags=["lib"]
OFF_TOPIC_NOTICE = ("ℹ️ This looks like a question about **{}**, not medicine. The model was fine-tuned on medical "
                    "flashcards only, so expect an unreliable answer.")
OFF_TOPIC_RULES = [
    Rule("programming",
         (r"\b(python|javascript|typescript|java|c\+\+|sql|html|css|github|docker|linux|regex)\b",
          r"\b(source\s+code|stack\s+trace|compile|debug)\b", r"\bwrite\s+(a|me\s+a)\s+(program|script|function)"),
         OFF_TOPIC_NOTICE.format("programming")),
    Rule("sport", (r"\b(football|soccer|basketball|baseball|cricket|tennis|nba|nfl|premier\s+league|world\s+cup)\b",),
         OFF_TOPIC_NOTICE.format("sport")),
    Rule("cooking", (r"\b(recipes?|bake|baking|cake|pasta)\b", r"\bhow\s+(do\s+i|to)\s+cook\b"),
         OFF_TOPIC_NOTICE.format("cooking")),
    Rule("finance", (r"\b(stocks?|crypto\w*|bitcoin|forex|mortgage|invest\w*)\b",),
         OFF_TOPIC_NOTICE.format("finance")),
    Rule("entertainment", (r"\b(movies?|film|netflix|lyrics|video\s+games?)\b",),
         OFF_TOPIC_NOTICE.format("entertainment")),
]
# Any of these words makes a message medical, whatever else it mentions ("is football good for my heart?").
MEDICAL_TERMS = (r"\b(health\w*|medic\w*|disease\w*|symptom\w*|pain\w*|doctor|nurse|patient\w*|drugs?|dose\w*|"
                 r"treat\w*|therap\w*|diagnos\w*|infect\w*|injur\w*|allerg\w*|diet\w*|nutrition|calorie\w*|vitamin\w*|"
                 r"blood|heart|lungs?|liver|kidney\w*|brain|cancer|diabet\w*|pregnan\w*|hospital|surgery|vaccin\w*|"
                 r"virus\w*|bacteri\w*|bites?|bitten|stings?|concussion|fracture\w*|muscle\w*|bones?|skin|sleep|"
                 r"anxiety|depress\w*|exercise)\b")


def off_topic_notice(message):
    """The notice of the first off-topic rule that matches a message without any medical word, else None."""
    text = normalize_for_rules(message)
    if re.search(MEDICAL_TERMS, text) or any(rule_matches(text, rule) for rule in RED_FLAG_RULES):
        return None
    return next((rule.notice for rule in OFF_TOPIC_RULES if rule_matches(text, rule)), None)


# %% [markdown]
# ### Input checks and the prompt budget
#
# An empty message gets a friendly prompt and no model call; a message over `MAX_INPUT_CHARS` is cut with
# a notice. The conversation is rendered with `build_messages`; when the prompt would not leave room for
# the answer (context length minus `max_new_tokens`), the oldest turns are dropped — and the chat says so.

# %% tags=["lib"]
MAX_INPUT_CHARS = 2000
EMPTY_INPUT_REPLY = "👋 Please type a medical question first — for example *“What are the symptoms of anaemia?”*"
DISCLAIMER = ("> ⚠️ **Not medical advice.** This is a small language model fine-tuned for a learning project; it makes "
              "confident mistakes. Do not use it to diagnose or treat anyone, and do not enter personal health data. "
              "**In an emergency, call your local emergency number** (112 in the EU, 911 in the US, 999 in the UK).")


def validate_input(text, max_chars=MAX_INPUT_CHARS):
    """Return (question or None when empty, notice or None), cutting questions longer than max_chars."""
    question = (text or "").strip()
    if not question:
        return None, EMPTY_INPUT_REPLY
    if len(question) > max_chars:
        notice = f"✂️ Your message was {len(question):,} characters long; only the first {max_chars:,} were used."
        return question[:max_chars], notice
    return question, None


def context_limit(model, tokenizer):
    """The model's context length in tokens: the smaller of its position limit and the tokenizer's limit."""
    limits = [getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    return min((limit for limit in limits if isinstance(limit, int) and 0 < limit < 1_000_000), default=2048)


def prompt_tokens(tokenizer, messages):
    """Number of tokens of the messages rendered with the chat template and the assistant prompt."""
    return len(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))


def fit_history(tokenizer, question, history, budget):
    """Messages for the question with the most recent turns that fit in budget tokens; returns (messages, dropped)."""
    history = list(history or [])
    dropped = 0
    while history and prompt_tokens(tokenizer, build_messages(question, history)) > budget:
        history = history[2:]  # one turn = the user's message and the assistant's reply
        dropped += 1
    return build_messages(question, history), dropped


def history_notice(dropped):
    """Notice that the oldest turns were left out of the prompt, or None when none were."""
    if not dropped:
        return None
    return f"📜 The conversation is longer than the model can read: the oldest {dropped} turn(s) were left out."


# %% [markdown]
# ### Streaming generation
#
# `stream_reply` is plain Python, independent of Gradio: `generate` runs in a background thread and a
# `TextIteratorStreamer` hands back the text as it is produced. Greedy decoding at temperature 0,
# sampling otherwise. One lock serialises every generation (chat and compare share one model, and the
# compare tab switches the adapter off), a stop event ends a generation early, and an error in the thread
# is raised again in the caller instead of leaving the stream hanging.

# %% tags=["lib"]
class EventStop(StoppingCriteria):
    """Stopping criterion that ends generation as soon as any of its threading events is set."""

    def __init__(self, *events):
        """Remember the events to watch (None entries are ignored)."""
        self.events = [event for event in events if event is not None]

    def __call__(self, input_ids, scores, **kwargs):
        """A per-row "done" flag: True for every row once an event is set."""
        done = any(event.is_set() for event in self.events)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


def sampling_kwargs(temperature, top_p):
    """generate() arguments: greedy at temperature 0, nucleus sampling otherwise."""
    if not temperature or temperature <= 0:
        return {"do_sample": False}
    return {"do_sample": True, "temperature": float(temperature), "top_p": float(top_p)}


def generate_into(model, kwargs, streamer, failures, adapter=True, lock=None):
    """Run model.generate under the lock (adapter off if adapter is False); on error record it and end the stream."""
    try:
        adapter_off = contextlib.nullcontext() if adapter else model.disable_adapter()
        with lock or contextlib.nullcontext(), adapter_off, torch.inference_mode():
            model.generate(**kwargs)
    except BaseException as error:  # noqa: BLE001 - handed to the caller, which raises it again
        failures.append(error)
        streamer.end()


def stream_reply(model, tokenizer, messages, max_new_tokens, temperature=0.0, top_p=1.0, *, adapter=True, lock=None,
                 stop_event=None):
    """Generate a reply to chat messages, yielding the accumulated text as tokens arrive."""
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    halt, failures = threading.Event(), []
    kwargs = {**inputs, "streamer": streamer, "max_new_tokens": int(max_new_tokens), "use_cache": True,
              "pad_token_id": tokenizer.pad_token_id, **sampling_kwargs(temperature, top_p),
              "stopping_criteria": StoppingCriteriaList([EventStop(halt, stop_event)])}
    thread = threading.Thread(target=generate_into, daemon=True,
                              args=(model, kwargs, streamer, failures, adapter, lock))
    thread.start()
    text = ""
    try:
        for piece in streamer:
            if piece:
                text += piece
                yield text
    finally:
        halt.set()  # a consumer that stops early (stop button, closed tab) also stops the thread
    thread.join()
    if failures:
        raise failures[0]


# %% [markdown]
# ### One chat turn, one comparison
#
# The turn logic is separate from the widgets, so it is tested without a browser. A turn yields the chat
# as the user sees it (notices, then the growing answer) and the history the model sees (questions and
# answers only — never the notices). Errors become a message in the chat; the app keeps running.

# %% tags=["lib"]
def chat_message(role, content):
    """One chat message in the messages format shared by Gradio and chat templates."""
    return {"role": role, "content": content}


def error_reply(error):
    """The chat message shown when generation fails."""
    return f"❌ Sorry, the answer could not be generated ({type(error).__name__}: {error}). Please try again."


def turn_notices(question, input_notice, dropped):
    """All notices for a turn, emergency notices first: red flags, input cut, off-topic, history dropped."""
    notices = [*red_flag_notices(question), input_notice, off_topic_notice(question), history_notice(dropped)]
    return [notice for notice in notices if notice]


def chat_turn(model, tokenizer, text, display, history, *, max_new_tokens, temperature=0.0, top_p=1.0,
              context_tokens=None, max_chars=MAX_INPUT_CHARS, lock=None, stop_event=None):
    """Answer one chat message, yielding (chat as displayed, model history) as the answer streams."""
    question, input_notice = validate_input(text, max_chars)
    if question is None:
        yield [*display, chat_message("assistant", input_notice)], history
        return
    budget = (context_tokens or context_limit(model, tokenizer)) - int(max_new_tokens)
    messages, dropped = fit_history(tokenizer, question, history, budget)
    shown = [*display, chat_message("user", question),
             *(chat_message("assistant", notice) for notice in turn_notices(question, input_notice, dropped))]
    yield shown, history
    answer = ""
    try:
        for answer in stream_reply(model, tokenizer, messages, max_new_tokens, temperature, top_p, lock=lock,
                                   stop_event=stop_event):
            yield [*shown, chat_message("assistant", answer)], [*messages[1:], chat_message("assistant", answer)]
    except Exception as error:  # noqa: BLE001 - any failure becomes a chat message; the app keeps running
        partial = [chat_message("assistant", answer)] if answer else []
        yield [*shown, *partial, chat_message("assistant", error_reply(error))], history
        return
    if not answer.strip():
        yield [*shown, chat_message("assistant", "(The model returned an empty answer.)")], history


def compare_turn(model, tokenizer, text, *, max_new_tokens, temperature=0.0, top_p=1.0, max_chars=MAX_INPUT_CHARS,
                 lock=None):
    """Answer one question with the base model (adapter off), then the fine-tuned one; yield (notes, base, tuned)."""
    question, input_notice = validate_input(text, max_chars)
    if question is None:
        yield input_notice, "", ""
        return
    notes = "\n\n".join(turn_notices(question, input_notice, 0))
    answers = ["", ""]  # base, fine-tuned: generated one after the other, as both share the same weights
    for index, adapter in enumerate((False, True)):
        try:
            for text_so_far in stream_reply(model, tokenizer, build_messages(question), max_new_tokens, temperature,
                                            top_p, adapter=adapter, lock=lock):
                answers[index] = text_so_far
                yield notes, *answers
        except Exception as error:  # noqa: BLE001 - shown in that model's box; the app keeps running
            answers[index] = error_reply(error)
            yield notes, *answers


# %% [markdown]
# ### The app
#
# `build_ui` lays out the disclaimer and the two tabs and wires them to the functions above; the queue
# runs one generation per event at a time. `launch_ui` starts the server without blocking the notebook:
# with a public share link on Colab, on `127.0.0.1` only anywhere else.

# %% tags=["lib"]
EXAMPLE_QUESTIONS = [
    "What are the symptoms of iron deficiency anaemia?",
    "What is the mechanism of action of metformin?",
    "How is hypertension diagnosed?",
    "What causes type 1 diabetes?",
]


def chat_tab(model, tokenizer, settings, guard):
    """Lay out the chat tab (inside a gr.Blocks) and wire its events."""
    import gradio as gr

    history = gr.State([])
    pending = gr.State("")
    chatbot = gr.Chatbot(label="Conversation", height=420, elem_id="chat",
                         **supported(gr.Chatbot, type="messages", group_consecutive_messages=False))
    with gr.Row():
        box = gr.Textbox(placeholder="Ask a medical question…", show_label=False, scale=6, elem_id="question")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
        clear = gr.Button("Clear", scale=1, elem_id="clear")
    with gr.Row():
        sliders = generation_sliders(settings, "chat")
    gr.Examples([[question] for question in EXAMPLE_QUESTIONS], inputs=[box], label="Example questions")

    def respond(text, display, past, temperature, top_p, max_new_tokens):
        """Stream one chat turn into the chatbot."""
        guard["stop"].clear()
        yield from chat_turn(model, tokenizer, text, display or [], past or [], max_new_tokens=int(max_new_tokens),
                             temperature=temperature, top_p=top_p, context_tokens=settings.get("context_tokens"),
                             max_chars=settings.get("max_input_chars", MAX_INPUT_CHARS), lock=guard["lock"],
                             stop_event=guard["stop"])

    events = [trigger(lambda text: (text, ""), [box], [pending, box], queue=False)
              .then(respond, [pending, chatbot, history, *sliders], [chatbot, history], show_progress="hidden")
              for trigger in (box.submit, send.click)]
    stop.click(guard["stop"].set, None, None, cancels=events, queue=False)

    def reset():
        """Stop any answer in progress and forget the conversation."""
        guard["stop"].set()
        return [], [], ""

    clear.click(reset, None, [chatbot, history, box], cancels=events, queue=False)
    chatbot.clear(reset, None, [chatbot, history, box], cancels=events, queue=False)  # the chatbot's own 🗑 button


def compare_tab(model, tokenizer, settings, guard):
    """Lay out the base-vs-fine-tuned tab (inside a gr.Blocks) and wire its events."""
    import gradio as gr

    gr.Markdown("The same question, answered by the **base model** (LoRA adapter switched off) and by the "
                "**fine-tuned model**. At temperature 0 decoding is greedy, so any difference comes from the adapter.")
    with gr.Row():
        box = gr.Textbox(placeholder="Ask a medical question…", show_label=False, scale=6, elem_id="compare-question")
        go = gr.Button("Compare", variant="primary", scale=1, elem_id="compare")
    notes = gr.Markdown(elem_id="compare-notes")
    with gr.Row():
        base = gr.Textbox(label="Base model (adapter off)", lines=10, interactive=False, elem_id="base-answer")
        tuned = gr.Textbox(label="Fine-tuned model (LoRA)", lines=10, interactive=False, elem_id="tuned-answer")
    with gr.Row():
        sliders = generation_sliders(settings, "compare")
    gr.Examples([[question] for question in EXAMPLE_QUESTIONS], inputs=[box], label="Example questions")

    def compare(text, temperature, top_p, max_new_tokens):
        """Stream both answers into their boxes."""
        yield from compare_turn(model, tokenizer, text, max_new_tokens=int(max_new_tokens), temperature=temperature,
                                top_p=top_p, max_chars=settings.get("max_input_chars", MAX_INPUT_CHARS),
                                lock=guard["lock"])

    for trigger in (box.submit, go.click):
        trigger(compare, [box, *sliders], [notes, base, tuned], show_progress="hidden")


# %% [markdown]
# Sliders, the app around the two tabs, its launch (127.0.0.1 only; a share link on Colab) and the
# record of that launch; `load_finetuned` rebuilds the model from the saved adapter after a restart.

# %% tags=["lib"]
def supported(component, **kwargs):
    """The keyword arguments this Gradio version's component accepts (Gradio 5 needs type="messages", 6 has no type)."""
    parameters = inspect.signature(component.__init__).parameters
    return {name: value for name, value in kwargs.items() if name in parameters}


def generation_sliders(settings, tab):
    """Temperature, top-p and max-new-tokens sliders (inside a gr.Blocks), with element ids prefixed by the tab."""
    import gradio as gr

    default = int(settings["max_new_tokens"])
    return (gr.Slider(0.0, 1.5, value=0.0, step=0.05, label="Temperature (0 = greedy)", elem_id=f"{tab}-temperature"),
            gr.Slider(0.05, 1.0, value=0.9, step=0.05, label="Top-p", elem_id=f"{tab}-top-p"),
            gr.Slider(1, max(512, default), value=default, step=1, label="Max new tokens",
                      elem_id=f"{tab}-max-new-tokens"))


def build_ui(model, tokenizer, settings):
    """The Gradio app: disclaimer, chat tab and compare tab around one PEFT model (adapter on = fine-tuned)."""
    import gradio as gr

    model.eval()  # no LoRA dropout while answering
    guard = {"lock": threading.Lock(), "stop": threading.Event()}
    with gr.Blocks(title="Medical assistant (LoRA demo)", analytics_enabled=False) as demo:
        gr.Markdown("## 🩺 Medical question answering — fine-tuned with LoRA")
        gr.Markdown(DISCLAIMER, elem_id="disclaimer")
        with gr.Tab("Chat"):
            chat_tab(model, tokenizer, settings, guard)
        with gr.Tab("Compare base vs fine-tuned"):
            compare_tab(model, tokenizer, settings, guard)
    return demo.queue(default_concurrency_limit=1, max_size=32)


def launch_ui(demo, in_colab, port=None):
    """Start the app on 127.0.0.1 without blocking (plus a share link on Colab) and return its URL."""
    if in_colab:
        _, local_url, share_url = demo.launch(server_name="127.0.0.1", share=True, prevent_thread_lock=True,
                                              quiet=True)
        return share_url or local_url
    _, local_url, _ = demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return local_url


def write_ui_status(results_dir, url, launch_requested):
    """Record in metrics/ui_status.json that the UI was built, and whether (and why not) it was launched."""
    launched = bool(url)
    reason = None if launched else ("LAUNCH_UI is False" if not launch_requested else "the launch returned no URL")
    record = {"built": True, "launched": launched, "local": bool(url) and "127.0.0.1" in str(url), "reason": reason}
    path = Path(results_dir) / "metrics" / "ui_status.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def load_finetuned(model_path, adapter_dir, device, dtype="float32"):
    """Load the base model and put the saved LoRA adapter on it; returns (PeftModel, tokenizer)."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise FileNotFoundError(f"No saved adapter in {adapter_dir}: run Section 4 (fine-tuning) first.")
    base, tokenizer = load_model_and_tokenizer(model_path, device, dtype)
    return PeftModel.from_pretrained(base, adapter_dir), tokenizer


# %% [markdown]
# If the kernel was restarted after training, the fine-tuned model is rebuilt from the adapter saved in
# `results/models/final_adapter` (run the set-up cells first).

# %%
mark_section(OUT, "6. Gradio UI")
if "ft_model" not in globals():
    ADAPTER_DIR = OUT / "models" / "final_adapter"
    announce(f"No fine-tuned model in memory (kernel restarted?): loading the adapter saved in {ADAPTER_DIR}.")
    ft_model, tokenizer = load_finetuned(MODEL_PATH, ADAPTER_DIR, S["device"], S["dtype"])
demo = build_ui(ft_model, tokenizer, S)

# %% [markdown]
# Launch the app (skipped when `LAUNCH_UI = False`). It runs in the background: the notebook goes on, and
# the app stays up while the kernel lives. On Colab, open the public `gradio.live` link; it expires after a week.

# %%
UI_URL = launch_ui(demo, in_colab="google.colab" in sys.modules) if S["launch_ui"] else None
write_ui_status(OUT, UI_URL, S["launch_ui"])
print(f"The medical assistant is running at {UI_URL}" if UI_URL else "LAUNCH_UI is False: the app was not launched.")
