"""The assistant's safety rails: input normalisation, red-flag rules and model, off-topic notices."""

import bisect
import difflib
import functools
import itertools
import math
import re
import unicodedata
from typing import NamedTuple


# Safety rails: red flags, off-topic questions, and normalised input
#
# Two kinds of notice come **before** any model text, and both only inform — the question is still answered:
#
# - **Red flags** — about twenty kinds of emergency: heart, breathing, stroke, seizure or collapse, a sudden
#   headache or head injury, sight, self-harm and mental-health crises, overdose and poisoning, anaphylaxis,
#   bleeding, serious injury, burns, pregnancy, sepsis, meningitis and very ill babies, shock, diabetic
#   emergencies, the belly, testicles and bladder, a torn aorta or a lung clot, very high blood pressure, heat
#   stroke and carbon monoxide. They are found by a symptom **lexicon** with **context** (negation, past,
#   hypothetical, mild) and **rules** over it, explained cell by cell below; each notice names the words it
#   matched. They are measured on wordings written by other people (`tests/test_red_flags.py`, README).
# - **Off-topic** (programming, sport, cooking, finance, entertainment): a note that the model was only
#   trained on medical flashcards, shown when a topic keyword matches and no medical word does
#   (*"is football good for my heart?"* is on-topic).
class Rule(NamedTuple):
    """One row of a rule table: a name, regular expressions (any may match), and the notice to show."""

    name: str
    patterns: tuple
    notice: str


# Input normalisation: what the rails and the model read
#
# Before any rule runs and before the length cut, a message is normalised: Unicode NFKC (full-width and
# "mathematical" letters become plain ones), invisible characters removed (zero-width spaces and joiners,
# bidirectional controls, soft hyphens, variation selectors, tag characters), Cyrillic and Greek look-alike
# letters inside Latin words mapped to Latin (*сhеst* → *chest*), runs of spaces cut to one and blank lines
# collapsed to one. A message of invisible characters only is empty. Every pattern runs on
# **google-re2** when it is installed (linear time by construction: no message can make matching slow);
# without it, Python's `re` runs the same patterns, which are written without lookarounds or nested
# ambiguous repetition, so they stay linear too (the fuzz test checks both).
try:
    import re2  # google-re2: linear-time regular expressions
    REGEX_ENGINE = "re2"
except ImportError:  # the rails still work, on patterns written to stay linear under re
    re2 = None
    REGEX_ENGINE = "re"


@functools.lru_cache(maxsize=None)
def compile_rx(pattern):
    """Compile a pattern with google-re2 when installed, else with re (ASCII classes, the same meaning)."""
    return re2.compile(pattern) if re2 is not None else re.compile(pattern, re.ASCII)


INVISIBLE = {code: None for code in [  # zero-width, bidi controls, variation selectors, tags, fillers, soft hyphen
    *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070), *range(0xFE00, 0xFE10),
    *range(0xE0000, 0xE0080), *range(0xE0100, 0xE01F0), *range(0xFFF9, 0xFFFC), *range(0x1D173, 0x1D17B),
    *range(0x180B, 0x1810), 0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFEFF, 0xFFA0]}
INVISIBLE.update({code: None for code in range(0x20) if code not in (0x09, 0x0A, 0x0D)})
INVISIBLE.update({0x7F: None, 0x0D: "\n", 0x0B: "\n", 0x0C: "\n", 0x85: "\n", 0x2028: "\n", 0x2029: "\n\n"})
LOOKALIKES = "АВЕКМНОРСТХУІЈЅԁаеорсухіјѕһԛԝӏɑαβεηικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"  # Cyrillic and Greek
CONFUSABLES = str.maketrans(LOOKALIKES, "ABEKMHOPCTXYIJSdaeopcyxijshqwlaabenikvoptuxABEZHIKMNOPTYX")
LOOKALIKE_LETTERS = frozenset(LOOKALIKES)


def unmix_word(match):
    """A word with Latin letters and look-alike Cyrillic/Greek ones, written in Latin only (сhеst → chest)."""
    word = match.group(0)
    mixed = any(ch in LOOKALIKE_LETTERS for ch in word) and any("a" <= ch.lower() <= "z" for ch in word)
    return word.translate(CONFUSABLES) if mixed else word


def normalize_input(text):
    """NFKC, invisible characters removed, look-alikes in Latin words mapped, spaces and blank lines collapsed."""
    text = unicodedata.normalize("NFKC", (text or "").replace("\r\n", "\n").translate(INVISIBLE))
    text = re.sub(r"\w+", unmix_word, text) if any(ch in LOOKALIKE_LETTERS for ch in text) else text
    text = re.sub(r"[^\S\n]+", " ", text)  # any run of horizontal white space (NBSP, tabs, ...) → one space
    return re.sub(r"\n{3,}", "\n\n", re.sub(r" ?\n ?", "\n", text)).strip()


# The rules read a second, matching-only form of the message: look-alike letters mapped everywhere, accents
# dropped, lower case, hyphens as spaces, common idioms blanked out (*"this traffic is killing me"*,
# *"I nearly had a heart attack when I saw the bill"*), chat shorthand expanded (*cant, rn, sob, od*), and
# typos of the key words corrected (*cheast, siezure, pregant*).
PUNCTUATION = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
                             "\u2010": " ", "\u2011": " ", "\u2012": " ", "\u2013": " ", "\u2014": " ", "\u2015": " ",
                             "\u2212": "-", "-": " ", "_": " ", "\u00b0": " ", "\u2265": ">", "\u2264": "<"})
IDIOMS = (r"\b(nearly|almost|practically|about\s+to)\s+(had|have|having|get)\s+a\s+heart\s+attack|\b(gave|give|"
          r"giving|gives)\s+(me|him|her|us|them)\s+a\s+heart\s+attack|\bdying\s+(to|for)\b|\b(die|died|dying)\s+(of|"
          r"from)\s+(boredom|laughter|laughing|embarrassment|shame|cuteness)|\b(bored|scared|worried|"
          r"sick)\s+to\s+death|\bcould\s+(kill|murder)\s+(for\s+)?(a|an|some)\b|\b(traffic|work|commute|boss|job|"
          r"homework|revision|deadlines?|exams?|mondays?|kids)\s+(is|are)\s+killing\s+me|\bkill(ing|ed)\s+it\b|"
          r"\bdrowning\s+in\s+(work|paperwork|emails|debt|assignments|homework)|\b(battery|phone|laptop|car)\s+(is|"
          r"was|went|has\s+gone|has\s+died)\s+(dead|flat)|\bdead\s+(tired|beat|on\s+my\s+feet|battery|funny|easy)|"
          r"\bbleeding\s+(edge|heart)|\bchok(ed|e|ing)\s+(on|during|in|at)\s+(the|my|an|a)\s+(exam|interview|final|"
          r"test|game|match|presentation|audition)|\bsick\s+(of|and\s+tired)\b|\b(was|were|are|feel|"
          r"felt)\s+dead\s+after\s+(leg\s+day|the\s+gym|gym|a\s+workout|running|the\s+run)|\b(dying|die|"
          r"died)\s+(from|of|with)\s+(this|the|my|a)\s+(man\s+)?(flu|cold|hangover|cough)|\bman\s+flu\b")
NEUTRAL = ((r"\bblood\s+pressure\b", "bp"), (r"\bblood\s+(sugars?|glucose)\b", "sugar"),
           (r"\bblood\s+(tests?|results?|work|count|levels?|type|group|donation|cells?|bank|orange)\b", "lab test"),
           (r"\bconfus(ed|ing|ion)\s+(about|by|with|whether|if|over|on|as\s+to)\b", "unsure about"),
           (r"\b(keep|get|keeping|getting)\s+fit\b", "exercise"), (r"\bfit\s+and\s+(well|healthy)\b", "healthy"),
           (r"\b(seizure|fit|fits)\s+free\b", "well controlled"), (r"\bdiff\s+between\b", "difference between"),
           (r"\bnot\s+breathing\s+(fast|quickly|rapidly|hard|heavily|noisily|loudly)\b", "breathing normally"),
           (r"\b(counts?|counted|classed|considered|defined)\s+as\s+(a\s+)?(fever|high\s+temperature|high|low|"
            r"dangerous|an\s+emergency)\b", "a threshold"))
SHORTHAND = {"cant": "can't", "wont": "won't", "dont": "don't", "doesnt": "doesn't", "isnt": "isn't",
             "didnt": "didn't", "couldnt": "couldn't", "wouldnt": "wouldn't", "hasnt": "hasn't", "havent": "haven't",
             "wasnt": "wasn't", "arent": "aren't", "im": "i'm", "ive": "i've", "hes": "he's", "shes": "she's",
             "alot": "a lot", "u": "you", "ur": "your", "pls": "please", "plz": "please", "rn": "right now",
             "idk": "i don't know", "bf": "boyfriend", "gf": "girlfriend", "hubby": "husband", "mom": "mum",
             "mommy": "mum", "kms": "kill myself", "unalive": "kill", "sewerslide": "suicide", "sob": "short of breath",
             "cp": "chest pain", "od": "overdose", "oded": "overdosed", "od'd": "overdosed", "n/v": "nausea vomiting",
             "w/o": "without", "2day": "today", "b4": "before", "bcos": "because", "coz": "because", "cuz": "because",
             "ambo": "ambulance", "tummy": "stomach", "belly": "stomach", "poop": "poo", "pee": "wee", "peed": "weed",
             "peeing": "weeing", "diaper": "nappy", "diapers": "nappies", "er": "a&e", "acetaminophen": "paracetamol",
             "tylenol": "paracetamol", "epinephrine": "adrenaline", "edema": "oedema", "fetal": "foetal"}
LEXICON = ("chest", "breathe", "breathing", "breath", "breathless", "bleeding", "blood", "unconscious", "unresponsive",
           "seizure", "seizing", "convulsing", "headache", "suicide", "suicidal", "overdose", "overdosed", "poisoned",
           "poisoning", "pregnant", "pregnancy", "swelling", "swollen", "drooping", "slurred", "slurring", "sweating",
           "vomiting", "fever", "feverish", "floppy", "stiff", "confused", "tongue", "throat", "anaphylaxis",
           "allergic", "choking", "wheezing", "gasping", "pressure", "tightness", "collapsed", "meningitis", "sepsis",
           "temperature", "bleach", "antifreeze", "paracetamol", "tablets", "painkillers", "consciousness", "weakness",
           "numbness", "spurting", "drowsy", "mottled", "bulging", "thunderclap", "worst", "sudden", "suddenly",
           "stroke", "attack", "heart", "crushing", "squeezing", "myself", "infection", "newborn", "testicle",
           "scrotum", "diabetic", "diabetes", "insulin", "ketones", "glucose", "sugar", "burnt", "burned", "scalded",
           "monoxide", "carbon", "boiler", "stomach", "abdomen", "unbearable", "excruciating", "dizzy", "faint",
           "fainted", "vision", "shoulder", "breastbone", "emergency", "ambulance", "warfarin", "thinners",
           "anticoagulant", "apixaban", "rivaroxaban", "chemotherapy", "jaundice", "nappy", "nappies", "labour",
           "waters", "contractions", "miscarriage", "ectopic", "period", "pelvic", "severe", "agony", "kidney",
           "appendix", "appendicitis", "cough", "coughing", "clammy", "sweaty", "shaking", "jerking", "rash",
           "purple", "blanch", "tumbler", "neck", "sleepy", "lethargic", "grunting", "unwell", "hospital", "suicidal")
# Real words close to a lexicon word: never "corrected" (cooking is not choking, beating is not breathing). Found by
# running the correction over the words of the Medical Meadow files and this project's benchmarks.
NOT_TYPOS = frozenset({
    "cooking", "looking", "booking", "breeding", "swearing", "sweeping", "pleasure", "stepped", "heater", "hearth",
    "bleaching", "tablet", "flappy", "sleeping", "stuffy", "swallow", "breast", "breaths", "breathed", "attach",
    "strike", "stoke", "stroll", "period", "worse", "waiter", "water", "shaving", "shaken", "fainter", "painter",
    "rush", "purpose", "insular", "insult", "cheat", "chess", "severed", "settle", "sever", "sweat", "bloom", "blond",
    "blonde", "feather", "fewer", "tough", "drowse", "labor", "should", "sleep", "bloody", "infarction", "drooling",
    "cushing", "injection", "injections", "smelling", "sharing", "beating", "crusting", "bathing", "confusing",
    "spring", "emergence", "periodic", "soaking", "soaked", "temperate", "dropping", "dropped", "concentrations",
    "contraception", "contracting", "contracts", "contraction", "thinness", "talents", "marriage", "selling",
    "breathy", "grasping", "spelling", "thinner", "beach", "hospitalist", "poison", "collapse", "stiffen", "sugary",
    "sugared", "fainting", "sudden", "worsen", "hearty", "heat", "cheating", "swelled", "sweating", "shaping",
    "sharking", "pressing", "dressing", "pleasant", "present", "prevent", "preventing", "feverfew", "period's",
    "crashing", "brushing", "crusher", "crushed", "clamming", "stroking", "stroked", "ketone", "insults", "rashes"})
SUFFIXES = ("s", "es", "'s", "s'", "ed", "d", "ing", "ly", "ness", "er")


# The correction itself, and the matching form of a message. A word is corrected only when it is not a
# real word listed above and is not a plain inflection (*seizures* stays *seizures*).
@functools.lru_cache(maxsize=8192)
def correct_word(word):
    """The lexicon word a misspelt word of five or more letters stands for (cheast → chest), else the word itself."""
    if len(word) < 5 or len(word) > 20 or word in LEXICON or word in NOT_TYPOS or not word.isalpha():
        return word
    close = difflib.get_close_matches(word, [w for w in LEXICON if w[0] == word[0]], n=1, cutoff=0.84)
    if not close or any(word == close[0] + suffix for suffix in SUFFIXES):  # an inflection, not a typo
        return word
    return close[0]


def normalize_for_rules(text, correct=True):
    """The matching form of a message: ASCII lower case, idioms blanked, shorthand expanded, typos corrected."""
    text = unicodedata.normalize("NFKD", normalize_input(text).translate(CONFUSABLES).translate(PUNCTUATION))
    text = re.sub(r"[\u0300-\u036f]+", "", text)  # accents: café → cafe
    text = re.sub(r"[^\x00-\x7f]+", " ", text).lower()  # anything else outside ASCII (emoji, symbols) → a space
    text = re.sub(r"([a-z])\1\1+", r"\1\1", text)  # soooo → soo, helppp → helpp
    text = re.sub(r"([^\w\s])[^\w\s]+", r"\1", text)  # a run of punctuation counts once: "!!!" → "!", ",,,," → ","
    text = re.sub(r"'(?![a-z])|(?<![a-z])'", " ", text)  # quote marks, not apostrophes: 'a handful' → a handful
    text = re.sub(r"\b(type|class|grade|stage|phase|factor|lead|part)\s+i\b", r"\1 1", text)  # not the pronoun
    text = re.sub(r"\b(od|odd|oded)\s+on\b", "overdosed on", compile_rx(IDIOMS).sub(" ; ", text))
    for pattern, replacement in NEUTRAL:
        text = compile_rx(pattern).sub(replacement, text)
    parts = re.split(r"([a-z0-9'/&]+)", text)  # odd indices are words, even ones what lies between them
    fix = correct_word if correct else str
    return "".join(fix(SHORTHAND.get(p, p)) if index % 2 else p for index, p in enumerate(parts))


# The red-flag rails: a symptom lexicon, rules over it, and the context around each match
#
# The rails work like a small clinical NLP pipeline (the idea of NegEx/ConText, as in medspaCy), with no
# model and no downloads:
#
# 1. **Lexicon.** About 160 named *concepts*, each one a regular expression over the words people use:
#    `chest` (chest, breastbone, sternum…), `pain` (pain, tight, pressure, crushing, heavy…), `cant_breathe`,
#    `face_droop`, `nonblanching`, `took_many`, `baby_young`, `anticoag` (warfarin, apixaban, blood thinners…).
#    Vital signs written as numbers become concepts too: SpO₂ 84 %, bp 165/112, a temperature of 38.2 °C,
#    a blood sugar of 2.1, a pulse of 32.
# 2. **Context of each match.** A match does not count when it is *negated* (*no chest pain*, *didn't hit
#    my head* — a few words back in the same clause), *historical* (*two years ago*, *as a child*, *had a
#    stroke* with nothing current), *hypothetical* (*if someone…*, *in case*), or *mild* where severity
#    matters (*a small burn*, *bleeding a little*).
# 3. **Rules.** Each red flag is a row: a name, triggers, and the notice. A trigger is one concept
#    (`took_many`), concepts that must all occur (`pregnant & preg_danger`), two concepts near each other
#    (`chest ~4 pain`: at most 4 words apart in one sentence), and vetoes (`!msk`: not when the message
#    explains the pain, such as *after push-ups*).
# 4. **The message as a whole.** A knowledge question (*what are the warning signs of a stroke?*) that is
#    about nobody in particular and nothing current, an exam vignette, or fiction does not fire.
#
# A miss costs far more than a false notice — the notice only informs, and the answer still comes — so a
# match fires whenever the message could be about a real person now. The notice names what it matched.
# `G` in the patterns below stands for "up to three words in between" (never across punctuation).
CONCEPTS = {
    "pain": r"pain\w*|hurt\w*|ache|aches|aching|achy|agony|agonis\w*|agoniz\w*|sore\w*|tight|tightness|tightening|"
            r"pressure|heavy|heaviness|squeez\w*|crush\w*|discomfort|burning|stabbing|sharp|tearing|ripping|"
            r"throbb\w*|pounding|pressing|cramp\w*|excruciating|unbearable|killing\s+me|twinges?|band|vice|weight|"
            r"elephant|(standing|sitting|stood|sat|pressing|pushing)\s+on|explod\w*|gonna\s+explode|"
            r"going\s+to\s+explode|burst\w*",
    "severe": r"severe\w*|(really|very|so|extremely|super)\s+(bad|badly|painful|strong|sore|severe|intense)|"
              r"terribl\w*|awful|horrible|excruciating|unbearable|agony|agonis\w*|agoniz\w*|worst|intense|"
              r"extreme\w*|10\s*/\s*10|10\s+out\s+of\s+10|9\s*/\s*10|crippling|doubled\s+over|screaming|(can't|"
              r"cannot)\s+(stand|bear)\s+it|killing\s+me|never\s+felt\s+([\w']+\s+)?like\s+this",
    "sudden": r"sudden\w*|all\s+of\s+a\s+sudden|out\s+of\s+nowhere|out\s+of\s+the\s+blue|came\s+on\s+(fast|quickly|"
              r"all\s+at\s+once|in\s+seconds)|within\s+(seconds|a\s+minute)|in\s+seconds|abrupt\w*|instantly",
    "chest": r"chest|breast\s?bone|sternum|rib\s?cage|(my|his|her)\s+heart",
    "msk": r"push\s+ups?|press\s+ups?|bench\s+press\w*|gym|work\s*out|workout|lifting|weights|"
           r"pulled\s+(a\s+)?muscle|strain\w*|press\s+on\s+it|touch\s+it|tender\s+to\s+(the\s+)?touch|when\s+(i|he|"
           r"she)\s+(cough|sneez)\w*|coughing|heartburn|indigestion|reflux|gaviscon|rennie|antacid|spicy|"
           r"after\s+(eating|meals?|food|dinner)|costochondritis|sore\s+muscles?|muscle|bruised|cold\s+and\s+cough|"
           r"chest\s+infection|(when|whenever|before)\s+(i'm|i\s+am|i\s+get|i\s+feel)\s+(anxious|nervous|stressed|"
           r"panicky)|panic\s+attacks?|(checked|tested|ecg\w*|echo|scan\w*)\s+([\w']+\s+){0,4}?(fine|normal|ok|"
           r"clear)|press(ing)?\s+on\s+([\w']+\s+){0,2}?(rib|ribs|it|the\s+spot|my\s+chest|that\s+spot)|(moving|"
           r"movin|lifting|carrying|shifting)\s+([\w']+\s+)?(furniture|boxes|heavy|sofa|wardrobe)|when\s+i\s+(twist|"
           r"turn|move|stretch|lie\s+on)|ribs?\b",
    "radiate": r"(spread\w*|radiat\w*|going|goes|went|moving|moved|shoot\w*|travel\w*|"
               r"extend\w*)\s+([\w']+\s+){0,2}?(to|into|down|up|through|towards)\s+([\w']+\s+){0,2}?(arm|arms|jaw|"
               r"neck|shoulders?|back|teeth)|(into|down|up)\s+(my|his|her|the)\s+(left\s+|right\s+)?(arm|jaw|neck|"
               r"shoulder)",
    "arm_jaw": r"(left\s+|right\s+)?(arm|jaw|hand|shoulder)\s+(is\s+|went\s+|feels\s+|felt\s+|going\s+|"
               r"has\s+gone\s+)?(numb\w*|tingl\w*|heavy|dead|weak|pain\w*|ach\w*|hurt\w*|sore)|(numb\w*|tingl\w*|"
               r"pain|ache|heavy|heaviness)\s+(in|down)\s+(my|his|her|the)\s+(left\s+|right\s+)?(arm|jaw)",
    "autonomic": r"sweat\w*|clammy|drenched|grey|gray|ashen|nause\w*|feel\w*\s+sick|being\s+sick|vomit\w*|"
                 r"throw\w*\s+up|short\s+of\s+breath|breathless\w*|(can't|cannot)\s+breathe?|faint\w*|"
                 r"light\s*headed|dizz\w*|pass(ing|ed)\s+out|impending\s+doom|(going|gonna)\s+to\s+die|clutch\w*|"
                 r"diaphore\w*",
    "acs_named": r"heart\s+attack|cardiac\s+arrest|myocardial\s+infarction|unstable\s+angina|angina\s+attack|n?stemi",
    "epigastric": r"epigastri\w*|upper\s+(stomach|abdomen)|top\s+of\s+(my|his|her|the)\s+stomach|indigestion|"
                  r"heartburn",
    "diaphoresis": r"sweat\w*|clammy|diaphore\w*|drenched|cold\s+sweat",
    "chest_clutch": r"clutch\w*\s+(at\s+)?(his|her|my|their)?\s*chest|hand\s+on\s+(his|her)\s+chest",
    "cant_breathe": r"(can't|cannot|can\s+not|couldn't|could\s+not|unable\s+to|not\s+able\s+to|struggl\w*\s+to|"
                    r"hard\s+to|difficult\s+to|fighting\s+to|trying\s+to)\s+(breathe?\w*|get\s+(any\s+|"
                    r"enough\s+)?(air|breath|oxygen)|catch\s+(my|his|her|their|a|any)\s+breath|get\s+(my|his|her|"
                    r"a)\s+breath)|(difficulty|difficulties|trouble|problems?|struggl\w*|labou?red|"
                    r"hard)\s+(with\s+)?breath\w*|(struggl\w*|fighting|gasp\w*|desperate)\s+for\s+(air|breath|"
                    r"oxygen)|gasping|(barely|hardly|not|isn't|is\s+not|stopped|stops|no\s+longer|"
                    r"wasn't)\s+breath(ing|e)\b|breath\w*\s+(is\s+|has\s+|seems\s+|sounds\s+|looks\s+)?(really\s+|"
                    r"very\s+|so\s+)?(fast|rapid\w*|shallow|noisy|weird|funny|strange|slow\w*|irregular|stopped|"
                    r"gurgl\w*|rattl\w*|laboured|labored)|air\s+hunger|suffocat\w*|(can't|cannot)\s+get\s+air\s+in|"
                    r"breath\w*\s+([\w']+\s+){0,4}?(like\s+a\s+(seal|bark\w*|whistle|kettle|dog)|struggl\w*)",
    "few_words": r"(can\s+only|can\s+barely|can\s+hardly|can't|cannot|unable\s+to)\s+(say|speak|talk|get\s+out|"
                 r"finish)\s+([\w']+\s+){0,2}?(words?|sentences?)|can\s+(barely|hardly)\s+(talk|speak)|"
                 r"too\s+breathless\s+to\s+(talk|speak)|(one|two|a\s+few)\s+words\s+at\s+a\s+time|between\s+breaths",
    "cyanosis": r"(lips?|face|mouth|fingers?|finger\s?tips|tongue|skin|nails)\s+([\w']+\s+){0,2}?(blue|bluish|"
                r"blueish|purple|dusky)|blue\s+(lips|around\s+the\s+(mouth|lips))|cyanos\w*|cyanotic|turning\s+blue|"
                r"going\s+blue",
    "retractions": r"ribs?\s+([\w']+\s+){0,2}?(pulling|sucking|sinking|going)\s+in|(skin|chest|"
                   r"stomach)\s+([\w']+\s+)?(between|under)\s+(his|her|the)\s+ribs|sucking\s+in|recession|"
                   r"nostrils\s+flar\w*|head\s+bobbing|tracheal\s+tug|grunt\w*|stridor|high\s+pitched\s+(noise|"
                   r"sound|whistle|wheeze|breath\w*)|(whistling|croaky|crowing|high|squeaky|horrible|funny|weird|"
                   r"strange|rasping)\s+(pitched\s+)?(noise|sound)\s+([\w']+\s+){0,2}?(when|as|"
                   r"while)\s+([\w']+\s+)?breathe?\w*|noisy\s+breathing",
    "inhaler_fail": r"(inhaler|puffer|nebuli[sz]er|ventolin|salbutamol|albuterol|"
                    r"reliever)\s+([\w']+\s+){0,3}?(not\s+work\w*|isn't\s+working|doesn't\s+work|didn't\s+work|"
                    r"not\s+help\w*|isn't\s+helping|doesn't\s+help|didn't\s+help|does\s+nothing|did\s+nothing|"
                    r"no\s+(help|use|difference)|making\s+no\s+difference|every\s+(few\s+)?minutes|"
                    r"every\s+(half\s+an\s+)?hour|([4-9]|\d{2,})\s+puffs)",
    "asthma_severe": r"asthma\s+attack|severe\s+asthma|status\s+asthmaticus",
    "wheeze": r"wheez\w*",
    "sob": r"breathless\w*|short\s+of\s+breath|shortness\s+of\s+breath|out\s+of\s+breath|winded|puffed\s+out|"
           r"breathing\s+(is\s+)?(bad|terrible|difficult|worse)|(can't|cannot)\s+catch\s+(my|his|her)\s+breath|"
           r"panting",
    "sob_mod": r"at\s+rest|resting|sitting\s+(still|down)|lying\s+(down|flat)|while\s+talking|getting\s+worse|worse|"
               r"severe\w*|really|very|so|extremely|badly|can't\s+(talk|speak|lie|walk|move|stand)|even\s+(sitting|"
               r"resting|lying|at\s+rest)|exhausted|scared|frightened|panick\w*",
    "choking": r"chok(ing|ed|es)|something\s+stuck\s+in\s+(his|her|my|the)\s+(throat|windpipe)|not\s+making\s+(any|"
               r"a)\s+(sound|noise)|(can't|cannot)\s+(cough|make\s+a\s+sound)|food\s+stuck|"
               r"went\s+down\s+the\s+wrong\s+way",
}


# Brain and nerves: stroke signs, seizures and collapse, a sudden or injured head, confusion, sudden loss of sight.
CONCEPTS |= {
    "face_droop": r"(face|mouth|smile|lip|eyelid|eye|cheek)\s+([\w']+\s+){0,3}?(droop\w*|lopsided|fallen|dropp\w*|"
                  r"sagg\w*|crooked|uneven|twisted|slump\w*|paraly\w*|down\s+on\s+one\s+side|"
                  r"pulled\s+to\s+one\s+side)|(droop\w*|lopsided|crooked|sagging|uneven|"
                  r"wonky)\s+([\w']+\s+){0,2}?(face|mouth|smile)|(one|left|right)\s+side\s+of\s+(?:my|his|her|their|"
                  r"the|our|your|a|an|one)\s+(face|mouth)\s+([\w']+\s+){0,3}?(down|droop\w*|numb|heavy|weak|fallen|"
                  r"dropped|not\s+moving|slack)|(face|mouth)\s+([\w']+\s+)?(gone|went|is)\s+(down|funny|"
                  r"wonky)\s+on\s+one\s+side|bell'?s\s+palsy",
    "limb_weak": r"(arm|arms|leg|legs|hand|hands|side|grip|foot)\s+([\w']+\s+){0,3}?(weak\w*|numb\w*|dead|heavy|"
                 r"limp|floppy|paraly\w*|useless|gave\s+way|not\s+working|won't\s+(move|work|grip|lift)|"
                 r"doesn't\s+(move|work)|dead\s+weight|keeps\s+(dropping|giving))|(weak\w*|numb\w*|paraly\w*|"
                 r"heaviness|tingl\w*)\s+(in|of|on|down)\s+([\w']+\s+){0,2}?(arm|leg|hand|side|face|body)|(can't|"
                 r"cannot|unable\s+to|couldn't)\s+(move|lift|raise|feel|use|grip|hold|"
                 r"squeeze)\s+([\w']+\s+){0,2}?(arm|leg|hand|side|fingers|cup)|dropp\w*\s+(things|everything|(?:my|"
                 r"his|her|their|the|our|your|a|an|one)\s+(cup|phone|fork|drink))|(won't|can't)\s+grip|(dropped|"
                 r"fell|slipped)\s+(straight\s+|right\s+)?out\s+of\s+(her|his|my)\s+hand|(can't|cannot|"
                 r"couldn't)\s+(hold|grip|lift|use|raise|move)\s+([\w']+\s+){0,5}?(arm|leg|hand|side|fingers|cup|"
                 r"fork|pen|phone|spoon|things)",
    "one_side": r"one\s+side\w*|one\s+sided|left\s+side|right\s+side|(left|right)\s+(arm|leg|hand|foot)|"
                r"half\s+(of\s+)?(my|his|her|the)\s+(face|body)|hemipleg\w*",
    "limb_benign": r"slept\s+on\s+it|sleeping\s+on\s+it|from\s+(sleeping|lying)|pins\s+and\s+needles|carpal|"
                   r"leg\s+day|after\s+(the\s+)?(gym|run|workout)|cramp\w*|sat\s+on\s+it|crossed\s+(my\s+)?legs",
    "speech": r"slurr?\w*|(can't|cannot|unable\s+to|trouble|difficulty|struggl\w*(\s+to)?|not\s+able\s+to|couldn't|"
              r"hard\s+to)\s+(speak\w*|talk\w*|get\s+(his|her|my|the|any)?\s*words\s+out|find\s+(his|her|my|"
              r"the)?\s*words|say\s+words|form\s+words)|words\s+([\w']+\s+)?(come|comes|coming|came)\s+out\s+(wrong|"
              r"jumbled|muddled|garbled|funny|weird|strange|mixed)|(speech|voice)\s+(is\s+|sounds\s+|went\s+|"
              r"seems\s+|has\s+gone\s+)?(slurred|garbled|jumbled|strange|weird|funny|drunk|off|muddled|wrong|odd|"
              r"slow)|sounds\s+drunk|talking\s+(like\s+)?(he's|she's|he\s+is|she\s+is)?\s*drunk|not\s+(speak\w*|"
              r"talk\w*)\s+(properly|right|normally|clearly|sense)|(not|no)\s+(speak|talk)\b|aphasi\w*|dysarthri\w*|"
              r"(can't|cannot)\s+understand\s+(me|us|what)|mixing\s+up\s+(his|her|my)\s+words|(said|saying|says|"
              r"talking)\s+([\w']+\s+){0,3}?(didn't|doesn't|don't|did\s+not)\s+make\s+(any\s+)?sense|"
              r"words\s+([\w']+\s+){0,2}?(wrong\s+order|mixed\s+up|jumbled)|words\s+(are\s+|"
              r"were\s+)?(all\s+)?(muddled|jumbled|mixed\s+up|garbled|slurred)|talking\s+(funny|strange|weird|oddly|"
              r"wrong|slow|slowly)",
    "after_stroke": r"(since|after)\s+(his|her|my|the)\s+stroke|stroke\s+([\w']+\s+){0,3}?(years?|months?)\s+ago|"
                    r"(old|previous|last)\s+stroke|stroke\s+(team|unit|rehab\w*|nurse)|discharged|rehab\w*|residual",
    "stroke_named": r"(a|having|had|another|mini|massive|suspected)\s+stroke|\btia\b|is\s+it\s+(a\s+)?stroke",
    "vision_loss": r"(lost|loss\s+of|losing|lose|can't\s+see|cannot\s+see|blind\w*|went\s+(dark|black|blurry)|"
                   r"gone\s+(dark|black))\s+([\w']+\s+){0,3}?(vision|sight|eye|eyes|see)|can't\s+see\s+(out\s+of|"
                   r"with|from)\s+(my|his|her|one)|curtain\s+([\w']+\s+){0,2}?(over|across|down|coming|came|"
                   r"falling)|shadow\s+(over|across|coming)|double\s+vision|seeing\s+double|(went|gone|"
                   r"going)\s+blind|(half|part)\s+of\s+(my|his|her)\s+vision|sudden\w*\s+([\w']+\s+)?blurr\w*|"
                   r"new\s+floaters\s+(and|with)\s+flash\w*|(can't|cannot)\s+vision\s+('s\s+|is\s+|"
                   r"has\s+)?(gone\s+)?(doubled|double)|see\s+(things\s+|anything\s+)?(over|on|to|out\s+of)\s+(that|"
                   r"the|her|his|my|one)\s+(left\s+|right\s+)?(way|side)|"
                   r"bump\w*\s+into\s+([\w']+\s+){0,3}?(on\s+(her|his|my|the)\s+(left|right))|(can't|"
                   r"cannot)\s+see\s+(properly|clearly|anything|at\s+all)",
    "ataxia": r"(can't|cannot|unable\s+to|couldn't)\s+(walk|stand)\s+(straight|properly|up\s+straight)|"
              r"unsteady\s+on\s+(his|her|my)\s+feet|off\s+balance|(falling|leaning|veering)\s+to\s+one\s+side|"
              r"room\s+(is\s+)?spinning",
    "eye_swollen": r"eyes?\s+([\w']+\s+){0,2}?(swollen\s+shut|swollen|bulging|sticking\s+out)|swollen\s+eye|(hurts|"
                   r"painful|pain)\s+to\s+move\s+(the|his|her|my)\s+eyes?",
    "eye_pain": r"eye\s+([\w']+\s+){0,3}?(really|super|very|extremely|so)\s+(painful|sore)|(painful|agonising|"
                r"agony)\s+(red\s+)?eye|halos?\s+(around|round)\s+([\w']+\s+)?lights|seeing\s+halos",
    "seizure": r"seiz\w*|convuls\w*|fitting|having\s+(a\s+)?fits?\b|(had|has|having|another|"
               r"keeps?\s+having)\s+(a\s+)?fits?\b|epileptic\s+fit|grand\s+mal|tonic\s+clonic|(shaking|jerking|"
               r"twitching|thrashing)\s+([\w']+\s+){0,3}?(floor|ground|uncontroll\w*|all\s+over|violently|arms|legs|"
               r"whole\s+body)|(arms|legs|body)\s+([\w']+\s+){0,2}?(jerking|shaking|twitching)|"
               r"eyes\s+([\w']+\s+)?(rolled|rolling)\s+(back|up)|foaming\s+at\s+the\s+mouth|status\s+epilepticus|"
               r"(went|gone|go|goes|going)\s+(all\s+|completely\s+)?(stiff|rigid)\s+(and|"
               r"then)\s+([\w']+\s+)?(twitch|jerk|shak)\w*|started\s+(twitching|jerking|shaking)\s+(all\s+over|and)|"
               r"on\s+the\s+(floor|ground)\s+([\w']+\s+){0,2}?(shaking|jerking|fitting|twitching|convulsing)|"
               r"shaking\s+and\s+(foaming|frothing)|(foaming|frothing)\s+(at|from)|(had|having)\s+another\s+(one|"
               r"fit|seizure)",
    "seizure_long": r"(\d+|five|six|seven|eight|ten|several|few)\s+(minutes|mins)|won't\s+stop|not\s+stopp\w*|"
                    r"another\s+one|again|without\s+waking|hasn't\s+woken|first\s+(ever\s+)?(seizure|fit)|"
                    r"in\s+water|back\s+to\s+back|one\s+after\s+(another|the\s+other)|cluster|still\s+(shaking|"
                    r"jerking|fitting)",
}


# The lexicon, continued: `unresponsive`, `arrest`, `resolved`, `baseline`…
CONCEPTS |= {
    "unresponsive": r"unconscious|unresponsive|unrousable|not\s+respond\w*|isn't\s+respond\w*|is\s+not\s+respond\w*|"
                    r"doesn't\s+respond|stopped\s+respond\w*|no\s+response|(won't|will\s+not|can't|cannot|couldn't|"
                    r"could\s+not|unable\s+to|hard\s+to|difficult\s+to)\s+([\w']+\s+){0,2}?(wake|rouse|waken)\b|"
                    r"not\s+waking|isn't\s+waking|(passed|blacked|knocked)\s+out|out\s+cold|lost\s+consciousness|"
                    r"loss\s+of\s+consciousness|collaps\w*|keeled\s+over|"
                    r"found\s+([\w']+\s+){0,3}?(on\s+the\s+(floor|ground)|unconscious|unresponsive|slumped)|slumped|"
                    r"barely\s+(conscious|responding|awake)|fainted|not\s+wak\w*\s+up|eyes\s+(are\s+)?(open\s+but|"
                    r"rolling)",
    "arrest": r"not\s+breathing|stopped\s+breathing|isn't\s+breathing|no\s+longer\s+breathing|no\s+pulse|(can't|"
              r"cannot)\s+find\s+(a|his|her|any)\s+pulse|cardiac\s+arrest|heart\s+stopped|doing\s+cpr|started\s+cpr|"
              r"(need|needs)\s+cpr|defib\w*|\baed\b",
    "resolved": r"(fine|ok|okay|alright|better|normal|himself|herself)\s+now|back\s+to\s+(normal|himself|herself|"
                r"myself)|recovered|seems\s+(fine|ok|okay|normal)|all\s+good\s+now|playing\s+(happily|normally)|"
                r"came\s+round\s+(straight\s+away|quickly|immediately)|(stopped|went\s+away)\s+(after|within)|(been|"
                r"is|was|seems?|looks?)\s+(totally\s+|completely\s+|absolutely\s+|perfectly\s+)?(fine|normal|ok|"
                r"okay|well|herself|himself)\s+(ever\s+)?since|no\s+symptoms|came\s+out\s+(straight\s+away|"
                r"right\s+away|immediately)|(completely|totally|perfectly)\s+(fine|normal|well)|back\s+to\s+(normal|"
                r"playing|his\s+usual|her\s+usual)|playing\s+(again|happily|normally|as\s+normal)|sorts\s+it|"
                r"fine\s+after|(he's|she's|he\s+is|she\s+is|i'm|they're|seems|seem)\s+(totally\s+|completely\s+|"
                r"absolutely\s+)?(fine|ok|okay|alright|normal)\b",
    "reassured": r"(feel|feels|feeling|felt)\s+(completely\s+|totally\s+)?(normal|fine|good|ok|okay|well)|"
                 r"no\s+problems?|everything\s+(is\s+|'s\s+)?(ok|okay|fine|normal|good)|(said|says|told\s+(me|"
                 r"us))\s+(it|she|he|they)\s+(was|is|'s|were|are)\s+(fine|normal|ok|okay|common|nothing)|"
                 r"nothing\s+(else|wrong)|all\s+(normal|fine|good)|(been|is|was)\s+(totally\s+|completely\s+)?(well|"
                 r"fine|normal)\s+since|doing\s+(fine|well|ok|okay|great)",
    "baseline": r"usually|normally|my\s+normal|(his|her|their)\s+normal|baseline|always\s+(is|sits|runs|around)|"
                r"sits\s+(around|at)|runs\s+(at|around)|that's\s+normal\s+for\s+(me|him|her)|always\s+sits?|(team|"
                r"doctor|nurse|gp|consultant|specialist)s?\s+(are|is)\s+(happy|fine|ok)",
    "headache": r"head\s?aches?|headache\w*|migraine\w*|head\s+([\w']+\s+){0,2}?(pain|hurts?|hurting|pounding|"
                r"throbbing|exploded|exploding|explosion|splitting|agony|killing\s+me)|"
                r"pain\s+in\s+([\w']+\s+){0,4}?head|(back|side)\s+of\s+(my|his|her|"
                r"the)\s+head\s+([\w']+\s+){0,2}?(pain|hurt\w*|explod\w*)",
    "thunderclap": r"thunder\s?clap|thunder\s?bolt|like\s+(being\s+)?(hit|struck|kicked|smacked|"
                   r"whacked)\s+([\w']+\s+){0,3}?(head|bat|hammer|brick)|head\s+([\w']+\s+)?(exploded|exploding|"
                   r"explode)|worst\s+([\w']+\s+){0,3}?headache|headache\s+([\w']+\s+){0,3}?(worst|ever\s+had|"
                   r"of\s+my\s+life)|never\s+(ever\s+)?had\s+a\s+headache\s+like|(came|come|"
                   r"comes)\s+on\s+([\w']+\s+){0,2}?(suddenly|instantly|in\s+seconds|like\s+a)|peak\w*\s+(in|"
                   r"within)\s+(seconds|a\s+minute)|explo\w*\s+(of\s+)?pain|pain\s+([\w']+\s+){0,2}?explo\w*",
    "head_hit": r"(hit|banged|bumped|knocked|bashed|smacked|struck|whacked|cracked|hurt|injured|landed\s+on|punched|"
                r"kicked|headbutted|stamped\s+on|attacked)\s+([\w']+\s+){0,4}?head\b|head\s+(injury|injuries|trauma|"
                r"wound|knock|bump|first)|concuss\w*|(fell|fall|fallen|slipped|tripped|"
                r"collapsed)\s+([\w']+\s+){0,4}?(on|onto|hit|and\s+hit|banged)\s+([\w']+\s+)?(head|face)|(fell|"
                r"fallen|slipped)\s+(down\s+the\s+stairs|off|from|out\s+of)|(car|bike|motorbike|motorcycle|road|"
                r"traffic|cycling|horse|skiing|rugby)\s+(crash|accident|collision|fall)|hit\s+by\s+(a|the)\s+(car|"
                r"ball|bat|bus|van)|(knock|bump|blow|bang)\s+(to|on)\s+(the|his|her|my)\s+head|fell\s+out\s+of\s+bed",
    "head_sign": r"vomit\w*|throw\w*\s+up|been\s+sick|being\s+sick|sick\s+(twice|again|\d+\s+times|three\s+times)|"
                 r"confus\w*|drows\w*|sleepy|unconscious|lost\s+consciousness|knocked\s+(out|unconscious)|"
                 r"blacked\s+out|passed\s+out|blurr\w*|double\s+vision|fluid\s+(from|out\s+of|coming)|"
                 r"bleeding\s+from\s+(the|his|her|my)\s+(ear|nose)|pupils?|seizure|fit\b|fitting|acting\s+(strange|"
                 r"odd|weird)\w*|not\s+making\s+sense|slurr\w*|(terrible|severe|worst|bad|getting\s+worse|worsening|"
                 r"awful)\s+headache|headache\s+([\w']+\s+){0,2}?(worse|worsening)|can't\s+remember|memory|(won't|"
                 r"hard\s+to)\s+wake|not\s+(himself|herself)|irritable|unsteady|can't\s+walk|weak\w*|numb\w*|dizz\w*",
    "stiff_neck": r"stiff\w*\s+neck|neck\s+([\w']+\s+){0,2}?(stiff\w*|rigid)|neck\s+hurts\s+to\s+(bend|move)|(can't|"
                  r"cannot)\s+(bend|touch|move|put)\s+([\w']+\s+){0,3}?(neck|chin)|chin\s+to\s+([\w']+\s+)?chest",
    "photophobia": r"(light|lights|brightness)\s+([\w']+\s+){0,2}?(hurts?|hurting|painful|unbearable|bothers?|"
                   r"bothering|too\s+bright)|(can't|cannot)\s+(look\s+at|stand|bear|handle)\s+(the\s+)?(light|"
                   r"lights|brightness)|photophobi\w*|(hates?|hating)\s+(the\s+)?light",
    "confusion": r"confus\w*|disorient\w*|delirious|delirium|not\s+making\s+(any\s+)?sense|doesn't\s+(know|"
                 r"recogni[sz]e)\s+(me|us|where|who)|(acting|behaving)\s+([\w']+\s+)?(strange\w*|weird\w*|odd\w*|"
                 r"drunk|out\s+of\s+character|bizarre)|talking\s+(nonsense|gibberish|rubbish|jibberish)|"
                 r"not\s+(himself|herself|themselves|with\s+it)|away\s+with\s+the\s+fairies|out\s+of\s+it|"
                 r"zoned\s+out|mumbl\w*",
    "drowsy": r"drows\w*|muddled|woozy|very\s+sleepy|so\s+sleepy|(hard|difficult)\s+to\s+wake|keeps\s+(falling|"
              r"nodding)\s+asleep|lethargic|listless|can't\s+stay\s+awake|floppy",
}


# Mental health, poisoning, allergy and bleeding.
CONCEPTS |= {
    "suicidal": r"suicid\w*|kill\w*\s+(my|him|her|them|your)\s?sel(f|ves)|end\w*\s+(it\s+all|my\s+life|his\s+life|"
                r"her\s+life|their\s+life|my\s+own\s+life|everything|things|it\s+(tonight|now|today|soon))|"
                r"(thinking|thought|think)\s+(about|of)\s+ending\s+(it|things)|tak\w*\s+(my|his|her|"
                r"their)\s+(own\s+)?life|(want|wants|wanted|wanting|going|gonna|ready|plan\w*|about|decided|"
                r"deserve)\s+to\s+die|wish\s+(i|he|she)\s+(was|were|could\s+be)\s+dead|wish\s+i\s+(wasn't|was\s+not|"
                r"weren't)\s+(alive|here|born|around)|(don't|do\s+not|doesn't|does\s+not|"
                r"no\s+longer)\s+want\s+to\s+(be\s+alive|live|exist|be\s+here|wake\s+up|go\s+on|be\s+around|"
                r"carry\s+on)|never\s+wake\s+up|self\s?harm\w*|(cut|cutting|hurt|hurting|harm|harming|burn|burning|"
                r"starve|starving)\s+(my|him|her|them)sel(f|ves)|no\s+reason\s+to\s+(live|go\s+on|keep\s+going)|(no|"
                r"any)\s+point\s+(in\s+)?(living|going\s+on|carrying\s+on|being\s+alive|to\s+(life|living))|"
                r"better\s+off\s+(dead|without\s+me)|(if|when)\s+i\s+(wasn't|was\s+not|weren't)\s+(around|here|"
                r"alive)|if\s+i\s+(was|were)\s+(gone|dead)|disappear\s+(for\s+good|forever)|(plan|plans|planning|"
                r"planned)\s+(to|how\s+to)\s+(kill|end|die|hang|overdose|jump)|(going|gonna|want|about|ready|"
                r"decided|plan\w*)\s+to\s+(jump|hang|shoot|drown|overdose|slit|throw\s+myself)|(jump|"
                r"throw\s+(myself|himself|herself))\s+(off|from|in\s+front\s+of|under)|(written|wrote|writing|left|"
                r"leaving)\s+(a|my|his|her)\s+(suicide\s+)?(note|letter)|(text\w*|sent|said|saying|"
                r"messag\w*)\s+([\w']+\s+){0,2}?goodbye|goodbye\s+(note|letter|message|text)|looking\s+up\s+(ways|"
                r"how)\s+to\s+(die|end|kill)|(ways|how)\s+to\s+(kill\s+myself|end\s+it|die\s+painlessly)|(pills|"
                r"tablets|rope|noose|gun|knife|razor|blades?)\s+([\w']+\s+){0,2}?(ready|lined\s+up|saved|stockpiled|"
                r"hidden|collected|in\s+front\s+of\s+me)|(can't|cannot)\s+(go\s+on|do\s+this|take\s+(it|"
                r"this))\s+(anymore|any\s+more|like\s+this)|tired\s+of\s+(living|being\s+alive)|(life|"
                r"living)\s+(isn't|is\s+not)\s+worth|(nothing|no\s+one|nobody)\s+to\s+live\s+for|"
                r"on\s+purpose\s+(overdos\w*|took)|overdos\w*\s+on\s+purpose|(can't|cannot|"
                r"don't\s+want\s+to)\s+(keep\s+)?(living|go\s+on|going\s+on)\s+like\s+this|(thinking\s+(of|about)|"
                r"want\s+to|going\s+to|gonna|plan\w*\s+to|tempted\s+to)\s+(taking|take|swallow\w*)\s+(all|"
                r"the\s+whole|a\s+whole|every)|(want|wish|need)\s+(it\s+all|everything|this|it|"
                r"life)\s+to\s+(be\s+over|end|stop)|(go|going)\s+to\s+sleep\s+and\s+(never|not)\s+wake|"
                r"better\s+off\s+(if|without)\s+(he|she|i|they|him|her|me)(\s+(was|were|wasn't|weren't))?\s+(gone|"
                r"dead|not\s+here|not\s+around)",
    "hopeless": r"(don't|do\s+not|can't|cannot)\s+(really\s+)?see\s+(the|any)\s+point(\s+(anymore|any\s+more|"
                r"in\s+(anything|living|life|going\s+on)))?|no\s+point\s+(in\s+)?(anything|anymore|any\s+more)|"
                r"what's\s+the\s+point|hopeless|no\s+way\s+out|(can't|cannot)\s+(cope|go\s+on)|"
                r"been\s+(really\s+)?(low|down|depressed)|burden\s+(to|on)\s+(everyone|everybody|my\s+family)|"
                r"nothing\s+left|(said|says|saying)\s+(she's|he's|they're|she\s+is|he\s+is)\s+done|(everyone|"
                r"everybody|they|we|you|the\s+family)\s+(would\s+be|'d\s+be|are|is)\s+better\s+off",
    "done_with_it": r"(want|wanna|going|gonna|ready)\s+to\s+end\s+it(\s+all)?\s*($|[.,!;]|\s+(all|now|tonight|today|"
                    r"already|for\s+good)\b)|(i'm|i\s+am|she's|he's|she\s+is|he\s+is)\s+done(\s+with\s+(life|"
                    r"everything|it\s+all))?\s*($|[.,!;])",
    "prep_note": r"(written|wrote|writing|write|word|leave|left)\s+([\w']+\s+){0,2}?(letters?|notes?|"
                 r"a\s+message)\s+(to|for)\s+(my|his|her|the)\s+([\w']+\s+)?(kids|children|parents|family|mum|dad|"
                 r"wife|husband|partner|sister|brother)|suicide\s+note|goodbye\s+(note|letter|message|text)|(sorted|"
                 r"sorting|put)\s+(out\s+)?(my|his|her)\s+affairs|affairs\s+in\s+order|giv(en|ing|"
                 r"e)\s+(away\s+)?(my|his|her|the)\s+(cat|dog|things|stuff|possessions|belongings)\s+(away|to)|"
                 r"said\s+(my|his|her|their)\s+goodbyes|sorry\s+for\s+everything|love\s+you\s+all|(text\w*|"
                 r"messag\w*|said|saying)\s+([\w']+\s+){0,2}?goodbye",
    "prep_means": r"(stash|stockpile\w*|hoard\w*|saved|saving|saving\s+up|collect\w*|"
                  r"hid\w*)\s+([\w']+\s+){0,4}?(meds|pills|tablets|medication|painkillers)|(pills|tablets|"
                  r"meds)\s+([\w']+\s+){0,3}?(saved|stockpiled|hidden|in\s+the\s+drawer|lined\s+up)|(know|picked|"
                  r"chosen|found)\s+(which|the)\s+(bridge|spot|place|building)|(top\s+floor|roof)\s+of\s+(the|"
                  r"a)\s+(multi\s?storey|car\s+park|building)|multi\s?storey|(on|at)\s+(the|a)\s+(bridge|ledge|"
                  r"cliff\s+edge|train\s+tracks|railway)|(tonight|today)('s|\s+is)\s+the\s+night|(going|"
                  r"doing\s+it)\s+(after\s+work|tonight|today)|(shot)?gun|rope|noose|(got|have|"
                  r"i've\s+got)\s+everything\s+(ready|prepared|sorted)|(photo|picture|"
                  r"pic)\s+of\s+([\w']+\s+){0,2}?(pills|tablets|a\s+rope|a\s+knife|blades?)",
    "prep_plan": r"(going|gonna|plan\w*|decided)\s+to\s+do\s+it\s+(tonight|today|now|soon|this\s+weekend|tomorrow)|"
                 r"this\s+is\s+goodbye|(tonight|today|tomorrow)\s+is\s+(when|the\s+night|the\s+day)|(tonight|"
                 r"today)'s\s+the\s+(night|day)",
    "unreachable": r"(won't|wont|not|isn't|can't|cannot|doesn't)\s+([\w']+\s+)?(answer\w*|pick\w*\s+up|reply\w*|"
                   r"get\s+hold\s+of|reach)\b",
    "psychosis": r"hearing\s+(things|voices)|seeing\s+(things|spiders|bugs|insects|people|snakes)|(thinks|believes|"
                 r"says|saying)\s+(the\s+)?baby\s+(isn't|is\s+not)\s+(hers|ours|mine|his|theirs|real)|delusion\w*|"
                 r"hallucinat\w*",
    "withdrawal": r"(stopped|quit|no)\s+(drinking|alcohol|booze)|alcohol\s+withdrawal|withdraw\w*|the\s+dts|"
                  r"delirium\s+tremens|(coming|came)\s+off\s+(the\s+)?(alcohol|booze|benzos|diazepam)",
    "harm_others": r"(kill|hurt|harm|stab|attack|strangle)\w*\s+(someone|somebody|people|others|"
                   r"my\s+([\w']+\s+)?(wife|husband|partner|kids?|children|baby|mum|dad|family|boss))|"
                   r"voices\s+([\w']+\s+){0,3}?(telling|tell|told|say|saying)|hearing\s+voices|thinks?\s+(people|"
                   r"someone|everyone|they|the\s+\w+)\s+(are|is)\s+(after|chasing|following|watching|"
                   r"trying\s+to\s+(kill|poison|hurt))|ran\s+into\s+(traffic|the\s+road)|threaten\w*\s+(to\s+(kill|"
                   r"hurt|stab)|with\s+a\s+(knife|gun|weapon))|(has|got|holding|waving)\s+(a|the)\s+(knife|gun|"
                   r"weapon|machete)|psychotic|psychosis|thoughts\s+of\s+(harming|hurting|killing)",
    "overdose": r"overdos\w*|poison(ed|ing)\b|toxic\s+(dose|amount)|took\s+an\s+overdose",
}


# The lexicon, continued: `took_many`, `ingested`, `pills_taken`, `double_dose`…
CONCEPTS |= {
    "took_many": r"(took|taken|swallowed|had|ate|eaten|necked|downed|popped|given|gave\s+(him|her)|chewed|'s\s+had|"
                 r"must\s+have\s+taken|injected|gave\s+myself)\s+([\w']+\s+){0,4}?((\d{2,}|"
                 r"\d+\s*x)\s+(of\s+)?([\w']+\s+){0,2}?(pills?|tablets?|capsules?|caps|meds|medicines?|medications?|"
                 r"paracetamol|ibuprofen|aspirin|codeine|co\s?codamol|tramadol|sleeping|diazepam|antidepressants?|"
                 r"painkillers?|gummies|edibles|sertraline|citalopram|amitriptyline|insulin)|\d{2,}\s+of\s+(my|his|"
                 r"her|the|their|them|those|these)|a\s+(bottle|packet|pack|box|strip|tub|jar|load|lot|bunch|heap|"
                 r"pile)\s+of|a\s+(whole|full)\s+(packet|pack|bottle|box|strip|tub|jar|blister)|"
                 r"the\s+whole\s+(packet|pack|bottle|box|strip|tub|jar|lot)|a\s+handful\s+of|all\s+(of\s+)?(my|his|"
                 r"her|the|their|grandma's|nan's|mum's|dad's)\s+([\w']+\s+)?(pills|tablets|meds|medicine|medication|"
                 r"capsules)|everything\s+in|twice\s+(my|his|her|the)\s+(usual|normal|prescribed)|"
                 r"twice\s+by\s+(mistake|accident)|(double|triple)\s+([\w']+\s+){0,2}?(doses?|dosage|amount|insulin|"
                 r"pills|tablets|meds))|(took|taken|take|taking|had)\s+([\w']+\s+){0,3}?(too\s+many|"
                 r"way\s+too\s+much|too\s+much\s+(insulin|medicine|medication|paracetamol|methotrexate|morphine|"
                 r"methadone|fentanyl|oxycodone|lithium|digoxin|warfarin|iron|of\s+(my|his|her)))",
    "ingested": r"(swallowed|drank|drunk|drinking|ate|eaten|eat|drink|licked|chewed|bit\s+into|ingested|inhaled|"
                r"sniffed|got\s+into|got\s+hold\s+of|sucking\s+on|in\s+(his|"
                r"her)\s+mouth)\s+([\w']+\s+){0,5}?(bleach|poison\w*|rat\s+(medicine|killer|bait)|anti\s?freeze|"
                r"detergent|dishwasher\s+(tablets?|pods?|liquid)|laundry\s+(pods?|capsules?|liquid|tablets?)|"
                r"washing\s+(pods?|capsules?|tablets?)|pods?|button\s+batter(y|ies)|batter(y|ies)|magnets?|"
                r"pesticide|weed\s?killer|slug\s+pellets|cleaner|cleaning\s+(stuff|products?|fluid|liquid|spray)|"
                r"drain\s+(cleaner|unblocker)|lye|caustic|paraffin|kerosene|petrol|gasoline|white\s+spirit|turps|"
                r"turpentine|lighter\s+fluid|lamp\s+oil|methanol|screen\s?wash|e\s?liquid|vape\s+(liquid|juice)|"
                r"nicotine|chemicals?|wild\s+mushrooms?|magic\s+mushrooms?|toadstools?|iron\s+tablets|(grandma's|"
                r"gran's|nan's|mum's|dad's|grandad's|grandpa's)\s+(pills|tablets|medicine|meds)|essential\s+oil|"
                r"superglue|something\s+(from|under)\s+the\s+sink)",
    "ingest_verb": r"swallow(ed|ing)|drank|drunk|drinking|licked|licking|ate|eaten|eating|chewed|chewing|sucked|"
                   r"sucking|bit\s+into|ingested|inhaled|sniffed|put\s+([\w']+\s+){0,2}?in\s+(his|her|their)\s+mouth",
    "toxic_substance": r"bleach|poison\w*|rat\s+(medicine|killer|bait|poison)|anti\s?freeze|detergent|"
                       r"dishwasher\s+(tablets?|pods?|liquid)|laundry\s+(pods?|capsules?|liquid|tablets?)|"
                       r"washing\s+(pods?|capsules?|tablets?)|button\s+batter(y|ies)|pesticide|weed\s?killer|"
                       r"slug\s+pellets|oven\s+cleaner|drain\s+(cleaner|unblocker)|toilet\s+cleaner|caustic|lye|"
                       r"paraffin|kerosene|petrol|gasoline|white\s+spirit|turps|turpentine|lighter\s+fluid|"
                       r"lamp\s+oil|methanol|screen\s?wash|e\s?liquid|vape\s+(liquid|juice)|nicotine|chemicals?|"
                       r"mushrooms?\s+(from|in|growing|off)|wild\s+mushrooms?|magic\s+mushrooms?|toadstools?|"
                       r"berries\s+(from|off)|essential\s+oil|superglue|ammonia|hydrochloric|sulphuric|acid",
    "pills_taken": r"(swallowed|ate|eaten|chewed|got\s+into|got\s+hold\s+of|"
                   r"found\s+([\w']+\s+){0,2}?with)\s+([\w']+\s+){0,4}?(pills|tablets|medicines?|medication|meds|"
                   r"capsules|gummies|edibles|vitamins)",
    "double_dose": r"(taken|took|had|given|gave|injected|gave\s+myself)\s+([\w']+\s+){0,4}?(twice|double|two\s+lots|"
                   r"two\s+doses)\b|(accidentally|by\s+mistake)\s+(took|taken|gave|given|had|"
                   r"injected)\s+([\w']+\s+){0,4}?(twice|again|double|extra|another)",
    "med_error": r"(gave|given|took|taken|had)\s+([\w']+\s+){0,6}?(adult|wrong|double|extra)\s+([\w']+\s+)?(dose|"
                 r"paracetamol|ibuprofen|medicine|tablets|insulin|calpol)|instead\s+of\s+([\w']+\s+){0,3}?(calpol|"
                 r"children's|kids|5\s?ml|the\s+child)|(wrong|adult)\s+(dose|strength|medicine)",
    "battery": r"(swallowed|ate|eaten|chewed|in\s+(his|her)\s+mouth|put\s+([\w']+\s+){0,2}?in\s+(his|her)\s+(mouth|"
               r"nose|ear))\s+([\w']+\s+){0,5}?(button\s+batter(y|ies)|batter(y|ies)|magnets?)|(put|pushed|stuck|"
               r"shoved)\s+([\w']+\s+){0,4}?(batter(y|ies)|magnets?)\s+(up|in|into)\s+(his|her|their|my)\s+(nose|"
               r"ear)",
    "toxic_drug": r"lithium|digoxin|theophylline|phenytoin|carbamazepine|methotrexate|valproate|colchicine",
    "toxic_signs": r"vomit\w*|diarrh\w*|trembl\w*|tremor|shak\w*|confus\w*|unsteady|wobbly|slurr\w*|drows\w*|"
                   r"(seeing|see)\s+(yellow|halos)|twitch\w*|level\s+(is\s+)?(high|toxic)|toxic",
    "empty_pack": r"empty\s+([\w']+\s+){0,2}?(pack|packet|bottle|box|blister|strip|tub|packets)|(pack|packet|bottle|"
                  r"box)\s+(is|was)\s+(now\s+)?empty",
    "drug_use": r"snort\w*|inject\w*|smoked\s+(something|a|some)|took\s+(something|some\s+pills|pills|drugs|"
                r"a\s+pill)|spiked|mdma|ecstasy|ketamine|heroin|fentanyl|opioids?|opiates?|cocaine|ghb|benzos|drugs",
    "drug_signs": r"breath\w*\s+([\w']+\s+){0,2}?(slow\w*|shallow)|pinpoint\s+pupils|pupils\s+(are\s+)?(tiny|"
                  r"pinpoint|huge)|won't\s+wake|foam\w*\s+(at|from|round|around)\s+(the|his|her)\s+mouth|"
                  r"turning\s+blue|lips\s+([\w']+\s+)?blue|gurgl\w*|snoring\s+and\s+(won't|can't)",
    "anaphylaxis": r"anaphyla\w*|epi\s?pens?|jext|emerade|auto\s?injector|adrenaline\s+(pen|shot|injection|injector)",
    "airway_swell": r"(throat|tongue|lips?|mouth|face|eyes?|eyelids?|airway|uvula)\s+([\w']+\s+){0,3}?(swell\w*|"
                    r"swollen|closing|closed|tight\w*|puff\w*|blow\w*\s+up|blown\s+up|thick\w*|huge)|(swollen|"
                    r"swelling|puffy)\s+(of\s+|in\s+)?([\w']+\s+)?(throat|tongue|lips?|face|eyes|mouth)|(hard|"
                    r"difficult|can't|cannot|struggl\w*)\s+(to\s+)?swallow\w*|(voice|speech)\s+([\w']+\s+)?(hoarse|"
                    r"croaky|funny|strange|muffled)|hoarse|(throat|chest)\s+([\w']+\s+)?closing",
    "throat_closing": r"(throat|airway)\s+([\w']+\s+){0,4}?(closing|closed|shut\w*)|(can't|"
                      r"cannot)\s+swallow\s+([\w']+\s+){0,3}?(saliva|spit|my\s+own)|drool\w*\s+and\s+(can't|cannot)",
    "allergen": r"allerg\w*|stung|sting\w*|wasp|bee|hornet|nuts?|peanut\w*|cashew\w*|satay|almond\w*|shellfish|"
                r"prawns?|shrimp|crab|lobster|sesame|penicillin|antibiotic\w*|amoxicillin|injection|contrast|latex|"
                r"hives|welts|wheals|urticaria|ate\s+(a|some|the)|after\s+eating|new\s+(medicine|medication|tablet|"
                r"pill)",
    "hives_all": r"hives\s+all\s+over|(rash|hives|welts|itch\w*|red|blotch\w*|lumps|"
                 r"bumps)\s+([\w']+\s+){0,2}?(all\s+over|everywhere|spreading|whole\s+body)|(whole|"
                 r"entire)\s+body\s+([\w']+\s+){0,3}?(covered|rash|hives|welts|itchy|blotch\w*)|"
                 r"covered\s+in\s+([\w']+\s+)?(hives|welts|lumps|bumps|blotches|spots)",
    "faint_like": r"dizz\w*|faint\w*|light\s*headed|pass(ing|ed)?\s+out|collaps\w*|black(ing|ed)\s+out|(going|"
                  r"went)\s+(grey|white)",
    "bleed": r"bleed\w*|bled|(gums|nose)\s+(are\s+|is\s+)?bleed\w*|blood|bloody\s+(nose|diarrh\w*|vomit|urine|wee|"
             r"stool|poo|discharge|mucus)|haemorrhag\w*|hemorrhag\w*",
}


# The lexicon, continued: `bleed_severe`, `gi_bleed`, `deep_wound`, `bleed_flow`…
CONCEPTS |= {
    "bleed_severe": r"(bleed\w*|blood)\s+([\w']+\s+){0,3}?(won't|will\s+not|doesn't|does\s+not|isn't|is\s+not|not|"
                    r"can't|cannot|hasn't|has\s+not)\s+(stop\w*|slow\w*|stopping)|(won't|can't|cannot|couldn't|"
                    r"unable\s+to)\s+stop\s+([\w']+\s+){0,2}?(bleed\w*|blood)|(severe|uncontroll\w*|massive|heavy|"
                    r"heavily|spurting|profuse\w*|lots\s+of|a\s+lot\s+of|so\s+much|loads\s+of|pool\s+of|puddle\s+of|"
                    r"litres?\s+of|cups?\s+of)\s+([\w']+\s+){0,2}?(bleed\w*|blood)|bleed\w*\s+([\w']+\s+)?(heavily|"
                    r"badly|profusely|a\s+lot|loads|everywhere|non\s?stop|so\s+much|very\s+much|too\s+much|"
                    r"like\s+crazy|through)|blood\s+([\w']+\s+){0,2}?(everywhere|pumping|spurting|gushing|pouring|"
                    r"squirting|puls\w*|all\s+over)|(pumping|spurting|gushing|pouring|squirting|pulsing|pulsating|"
                    r"jets?\s+of)\s+([\w']+\s+){0,2}?(blood|out)|soak\w*\s+(through\s+)?([\w']+\s+){0,3}?(towels?|"
                    r"bandages?|pads?|cloths?|dressings?|clothes|shirt|t\s+shirt|sheets?|bed|jeans|trousers)|"
                    r"(towels?|bandages?|dressings?|pads?|cloths?|clothes|shirt)\s+([\w']+\s+){0,2}?(soaked|soaking|"
                    r"drenched|red\s+through)|(losing|lost)\s+([\w']+\s+){0,3}?blood|pad\s+(every|an)\s+(hour|"
                    r"half\s+hour)|nose\s?bleed\w*\s+([\w']+\s+){0,3}?(hour|hours|[2-9]\d\s+min\w*|\d{3}\s+min\w*)",
    "gi_bleed": r"(vomit\w*|cough\w*|throw\w*|puk\w*|spit\w*|bring\w*)\s+(up\s+)?([\w']+\s+){0,3}?(blood|clots)|"
                r"blood\s+in\s+([\w']+\s+){0,2}?(vomit|sick|spit|phlegm)|coffee\s+grounds?|"
                r"black\s+([\w']+\s+)?(poo\w*|stools?|diarrhoea|tarry|tar)|tarry\s+(poo\w*|stools?)|mela?ena|"
                r"(poo\w*|stools?)\s+([\w']+\s+){0,2}?(black|like\s+tar|tarry)|(poo\w*|passing\s+stools?|"
                r"bowel\s+movements?)\s+([\w']+\s+){0,3}?(blood|clots)|bright\s+red\s+blood\s+(from|in|when)|"
                r"(lots\s+of|a\s+lot\s+of|passing|full\s+of)\s+blood\s+(from|in)\s+([\w']+\s+){0,2}?(bum|bottom|"
                r"back\s+passage|rectum|poo|stool|toilet)|haematemesis|hematemesis|haemoptysis|hemoptysis",
    "deep_wound": r"(deep|gaping|huge|big|large|bad)\s+(cut|gash|wound|laceration)|cut\s+([\w']+\s+){0,3}?(open|"
                  r"deep|to\s+the\s+bone)|(can\s+)?see\s+(the\s+)?(bone|fat|tendon)|sliced\s+([\w']+\s+){0,2}?open|"
                  r"severed|amputat\w*|chopped\s+off|cut\s+off\s+(his|her|my)|de\s?gloved|arterial|artery",
    "bleed_flow": r"(pouring|gushing|spurting|pumping|streaming|squirting|pulsing)\s+(out|everywhere|for|all\s+over|"
                  r"through)|(still|keeps?)\s+(coming|soaking|seeping)\s+through|(changed|"
                  r"changing)\s+([\w']+\s+){0,2}?(dressings?|bandages?|towels?|pads?)\s+(\d+|several|many|three|"
                  r"four|five)\s+times",
    "wound": r"cut|wound|gash|shin|dressings?|bandages?|pressed\s+on\s+it|pressure\s+on\s+it|stitches|bite|graze",
    "spont_bleed_risk": r"dengue|platelets?|leuk(a)?emia|on\s+chemo\w*|haemophilia|hemophilia|(bit|"
                        r"bitten)\s+by\s+(a\s+)?snake|snake\s?bite",
    "minor_wound": r"paper\s+cut|(small|tiny|little|minor)\s+(cut|graze|scratch|nick)|shaving\s+cut|"
                   r"nicked\s+(myself|my)|graze|(brushing|flossing)\s+(my\s+|his\s+|her\s+)?teeth|gums?\s+(are\s+|"
                   r"is\s+)?(a\s+bit\s+)?(sore|bleed\w*)",
    "wont_stop": r"(won't|will\s+not|doesn't|does\s+not|isn't|is\s+not|not|can't)\s+(stop\w*|slow\w*)|"
                 r"still\s+(bleed\w*|going|pouring)|(for|over)\s+(an|\d+|half\s+an)\s+(hour|hours)",
    "anticoag": r"warfarin|apixaban|eliquis|rivaroxaban|xarelto|edoxaban|lixiana|dabigatran|pradaxa|heparin|clexane|"
                r"enoxaparin|clopidogrel|plavix|ticagrelor|blood\s+thinners?|anticoagul\w*|thinners|haemophilia|"
                r"hemophilia",
}


# Pregnancy, babies and children, infection and sepsis, and diabetes.
CONCEPTS |= {
    "pregnant": r"pregnan\w*|expecting\s+(a\s+baby|twins)|\d{1,2}\s+(weeks?|wks?)\s+(pregnant|along|gone|gestation)|"
                r"\d{1,2}\s?\+\s?\d\s+(weeks)?|at\s+\d{1,2}\s+weeks|^\W*\d{1,2}\s+weeks\b|"
                r"\d{1,2}\s+weeks\s+and\s+(the\s+|my\s+)?(baby|bump|bleeding|waters)|my\s+bump|"
                r"positive\s+(pregnancy\s+)?test|period\s+([\w']+\s+){0,3}?(late|overdue)|(missed|"
                r"late)\s+(my\s+)?period|ivf|antenatal|(gave|giving|given)\s+birth|after\s+(the\s+|my\s+|"
                r"a\s+)?(birth|delivery|labour|c\s?section|caesarean)|post\s?partum|postnatal|just\s+had\s+(a|my|"
                r"the|our)\s+baby|(had|delivered)\s+(my|the|our|a|her)\s+(baby|son|"
                r"daughter)\s+([\w']+\s+){0,2}?(days?|weeks?)\s+ago|(days?|weeks?)\s+(after|"
                r"since)\s+(giving\s+)?birth|trimester|miscarr\w*|midwife|in\s+labour|contractions|(is|am|i'm|she's|"
                r"at|now|currently)\s+\d{1,2}\s+(weeks|wks)\b|waters?\s+([\w']+\s+)?(broke|broken|went|gone|leaking)",
    "preg_danger": r"bleed\w*|bled|blood|clots|(severe|bad|sharp|intense|strong|awful|really\s+bad|terrible|"
                   r"constant|stabbing)\s+([\w']+\s+)?(pain|cramp\w*|stomach|abdominal)|"
                   r"pain\s+([\w']+\s+){0,3}?(one\s+side|right\s+side|left\s+side|on\s+the\s+(right|left))|"
                   r"one\s+sided\s+([\w']+\s+)?pain|shoulder\s+(tip\s+)?pain|faint\w*|pass(ed|ing)?\s+out|dizz\w*|"
                   r"collaps\w*|(bad|severe|terrible|awful|really\s+bad|pounding|splitting|massive|huge|horrendous|"
                   r"blinding)\s+headache|headache\s+([\w']+\s+){0,3}?(won't|not|isn't)\s+(go|going|shift)|"
                   r"flashing\s+lights|seeing\s+(spots|stars|flashes|flashing)|blurr\w*|vision|(face|hands|"
                   r"fingers)\s+([\w']+\s+){0,3}?(swollen|swelling|swell\w*|puffy|puffed\s+up|blown\s+up)|(swollen|"
                   r"swelling|puffy)\s+([\w']+\s+){0,2}?(face|hands)|sudden\s+swelling|waters?\s+([\w']+\s+)?(broke|"
                   r"broken|breaking|went|gone|leaking|leak)|fluid\s+leaking|gush\s+of\s+(fluid|water)|fits?\b|"
                   r"seizure|convuls\w*|fever|high\s+temperature|itch\w*\s+([\w']+\s+){0,3}?(palms|hands|feet|"
                   r"soles)|breathless|chest\s+pain|can't\s+breathe|cord\s+([\w']+\s+){0,2}?(coming|out|visible|"
                   r"hanging)|(see|feel)\s+(the\s+)?cord|(head|feet|foot|arm|bottom)\s+(is\s+)?(coming\s+out|out|"
                   r"showing)|baby\s+is\s+coming|crowning|(can't|cannot)\s+stop\s+pushing|regular\s+(tightening|"
                   r"pains|cramps)|(contractions|pains)\s+every\s+\d+\s+min\w*",
    "preg_bleed": r"bleed\w*|bled|blood|clots|waters?\s+([\w']+\s+)?(broke|broken|breaking|went|gone|leaking)",
    "brief": r"(lasts?|lasting)\s+([\w']+\s+){0,2}?seconds|for\s+a\s+(few\s+)?seconds|then\s+(it\s+)?(goes|stops|"
             r"passes)|only\s+when\s+(i|she)\s+(stand|move|sneeze|cough)|when\s+(i|she)\s+(stand\s+up|sneeze|cough|"
             r"turn|roll\s+over)|round\s+ligament",
    "fetal_move": r"bab(y|y's)\s+([\w']+\s+){0,2}?(hasn't|has\s+not|isn't|is\s+not|stopped|not|"
                  r"haven't)\s+(been\s+)?(mov\w*|kick\w*)|(reduced|less|fewer|decreased|no|slower)\s+(foetal\s+|"
                  r"baby\s+)?(movements?|kicks|kicking|moving)|bab(y|y's)\s+([\w']+\s+)?(moving|kicking|"
                  r"moved)\s+(much\s+)?less|(haven't|have\s+not|not)\s+felt\s+([\w']+\s+){0,2}?(baby|him|her|"
                  r"it)\s+(move|kick|moving)|movements\s+(have\s+)?(stopped|slowed|reduced)|(baby|"
                  r"bump)\s+([\w']+\s+)?(quiet|quieter|still)\s+(all\s+day|today|since)|(haven't|have\s+not|not|"
                  r"didn't|hasn't)\s+(felt|had|noticed)\s+(anything|any\s+(movements?|kicks?)|a\s+(kick|movement))|"
                  r"(not|isn't|hasn't\s+been)\s+moving\s+(as\s+much|like\s+(usual|normal))|(haven't|hadn't|"
                  r"have\s+not|had\s+not|not|didn't|hasn't)\s+(really\s+|actually\s+)?(felt|had|noticed|"
                  r"seen)\s+(the\s+|my\s+)?(baby|him|her|any\s+movements?|anything)\s+(move|moving|kick|kicking)",
    "baby_young": r"new\s?born|neonat\w*|new\s+baby|([1-9]|1[0-2])\s+(days?|weeks?|wks?)\s+old|(one|two|three|four|"
                  r"five|six|seven|eight|nine|ten|eleven|twelve)\s+(days?|weeks?)\s+old|[12]\s+months?\s+old|(one|"
                  r"two)\s+months?\s+old|3\s+months?\s+old|three\s+months?\s+old|(is|he's|she's|aged|age|"
                  r"only)\s+([1-3]|one|two|three)\s+months?\b|bab(y|ies)\s+(is\s+)?(\d|one|two|three|four|five|six|"
                  r"seven|eight|nine|ten|eleven|twelve)\s+(days?|weeks?)|just\s+born|few\s+(days|weeks)\s+old|"
                  r"(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten)\s+(day|week)\s+old|(day|week|"
                  r"weeks)\s+old\s+(baby|son|daughter|boy|girl)",
    "baby_3to6": r"([3-6]|three|four|five|six)\s+(months?|mo)\s+old|(is|he's|she's|aged)\s+([3-6]|three|four|five|"
                 r"six)\s+months?\b",
    "baby": r"bab(y|ies|y's)|infant\w*|toddler\w*|new\s?born|(\d{1,2}|one|two|three|six|nine|ten|eleven)\s+(months?|"
            r"mo)\s+old|little\s+one|my\s+(son|daughter)\s+is\s+\d+\s+months",
    "child": r"bab(y|ies|y's)|infant\w*|toddler\w*|child\w*|kids?|son|daughter|boy|girl|grand(son|daughter|child)|"
             r"niece|nephew|\d+\s+(year|yr)s?\s+old|\d+\s?yo\b|(\d{1,2}|one|two|three|four|five|six|seven|eight|"
             r"nine|ten)\s+(months?|years?)\s+old|little\s+one|teen\w*",
    "baby_unwell": r"floppy|limp|lethargic|listless|unresponsive|(hard|difficult|impossible)\s+to\s+wake|"
                   r"won't\s+wake|not\s+waking|very\s+sleepy|unusually\s+(sleepy|drowsy|quiet)|(sleepier|drowsier|"
                   r"quieter)\s+than\s+(usual|normal)|drowsy|(not|won't|isn't|refus\w*\s+to|"
                   r"refusing)\s+([\w']+\s+)?(feed\w*|eat\w*|drink\w*|breastfeed\w*|take\s+(a|the|his|"
                   r"her)\s+bottle)|off\s+(his|her|their)\s+(feeds?|milk)|weak\s+([\w']+\s+)?cry|"
                   r"high\s+pitched\s+cr(y|ying)|moaning|mottled|blotchy|(grey|gray|blue|pale)\s+([\w']+\s+)?(skin|"
                   r"lips|colour|color)|(turned|turning|looks|went)\s+(grey|gray|blue|pale)|(cold|blue)\s+(hands|"
                   r"feet|lips)|breath\w*\s+([\w']+\s+){0,2}?(fast|rapid\w*|hard|weird|funny|strange)|grunt\w*|"
                   r"bulging\s+(soft\s+spot|fontanell?e)|sunken\s+(soft\s+spot|fontanell?e|eyes)|fit\b|fitting|"
                   r"seizure|jerk\w*|stiff\s+neck|very\s+(unwell|ill|sick|poorly)|projectile|green\s+(vomit|sick)|"
                   r"vomit\w*\s+([\w']+\s+)?green|pauses\s+in\s+([\w']+\s+)?breath\w*|stops?\s+breathing|"
                   r"yellow\w*\s+and\s+(sleepy|drowsy)|won't\s+(stop\s+)?(crying|settle)\s+and",
    "no_urine": r"(not|hasn't|haven't|hasnt|no|hardly|barely|didn't)\s+([\w']+\s+){0,2}?(weed|peed|wee|pee|"
                r"urinat\w*|passed\s+(urine|water)|wet\s+nappies|wet\s+nappy)|no\s+wet\s+nappy|dry\s+nappies",
    "fever": r"fever\w*|(is|she's|he's|i'm|feels|feel|felt|really|so|very)\s+hot\b|(a|has\s+a|have\s+a|got\s+a|"
             r"running\s+a|with\s+a|high|raised)\s+temp(erature)?|burning\s+up|febrile|pyrexi\w*|"
             r"hot\s+to\s+(the\s+)?touch|roasting|boiling\s+hot|shiver\w*|rigou?rs|shaking\s+chills|"
             r"hot\s+and\s+cold|chills|very\s+hot",
}


# The lexicon, continued: `nonblanching`, `sepsis_named`, `immunosuppressed`, `skin_danger`…
CONCEPTS |= {
    "nonblanching": r"(rash|spots|marks|blotches|dots|bruises)\s+([\w']+\s+){0,6}?(doesn't|does\s+not|don't|"
                    r"do\s+not|won't|will\s+not|not|isn't|aren't|didn't|did\s+not)\s+(fad\w*|blanch\w*|disappear\w*|"
                    r"go\s+away|change|go\s+white|go\s+pale|go)|non\s?blanching|(purple|purpuric|purplish|"
                    r"dark\s+red|bruise\s+like|pin\s?prick)\s+([\w']+\s+)?(rash|spots|dots|marks|blotches)|"
                    r"petechi\w*|purpura|(still\s+)?(visible|see\s+them|there)\s+(through|under)\s+(the\s+|"
                    r"a\s+)?glass|(don't|doesn't|didn't|won't|do\s+not|does\s+not)\s+(fade|disappear|go\s+away|"
                    r"blanch|go\s+white)",
    "sepsis_named": r"meningit\w*|meningococ\w*|sepsis|septic\w*|neutropeni\w*|septicaemia|septicemia",
    "immunosuppressed": r"chemo\w*|neutropeni\w*|immuno\s?(suppress\w*|compromised)|on\s+steroids|transplant|"
                        r"cancer\s+(treatment|drugs)|leuk(a)?emia|lymphoma|radiotherapy|biologics?|methotrexate|"
                        r"no\s+spleen|splenectomy|sickle\s+cell",
    "skin_danger": r"(skin|it|area|wound|redness|swelling|arm|leg)\s+([\w']+\s+){0,3}?(dark\s+purple|purple|black|"
                   r"blistering|dusky|dying)|(spreading|spreads|spread)\s+(really\s+)?(fast|quickly|rapidly|"
                   r"by\s+the\s+hour)|pain\s+([\w']+\s+){0,3}?(out\s+of\s+proportion|way\s+worse\s+than|"
                   r"much\s+worse\s+than)",
    "cold_hands": r"(hands|feet)\s+([\w']+\s+){0,2}?(cold|icy|freezing)|cold\s+(hands|feet)",
    "shock_signs": r"(grey|gray|ashen|pale|white|blue|mottled)\s+(colour|color|and\s+(cold|clammy|sweaty|floppy))|"
                   r"cold\s+and\s+clammy|clammy\s+and\s+(cold|pale|grey|gray)|(gone|went|turned|turning|"
                   r"looks?)\s+(a\s+)?([\w']+\s+)?(grey|gray|ashen|deathly\s+pale|white\s+as\s+a\s+sheet)",
    "infection": r"infect\w*|\buti\b|water\s+infection|urine\s+infection|pneumonia|cellulitis|wound|abscess|flu|"
                 r"covid|bite|red\s+and\s+spreading|spreading\s+redness|red\s+streaks?|kidney\s+infection|"
                 r"chest\s+infection",
    "sepsis_signs": r"confus\w*|mottled|blotchy\s+skin|breath\w*\s+([\w']+\s+){0,2}?(fast|rapid\w*)|(heart|"
                    r"pulse)\s+([\w']+\s+){0,2}?(racing|pounding|fast)|(racing|fast|pounding)\s+(heart\w*|pulse)|"
                    r"(feel\w*|felt)\s+like\s+(i'm|i\s+am|he's|she's)\s+(dying|going\s+to\s+die)|worst\s+(i've|"
                    r"i\s+have|he's|she's)\s+ever\s+felt|(can't|cannot)\s+(stand|get\s+up|stay\s+awake)|"
                    r"shaking\s+(chills|uncontroll\w*)|rigou?rs|uncontroll\w*\s+shiver\w*|very\s+(unwell|ill|sick|"
                    r"poorly)|drows\w*|slurr\w*|clammy|(pale|cold)\s+and\s+(cold|clammy)|low\s+bp|"
                    r"bp\s+([\w']+\s+)?low|sepsis|spreading\s+(fast|quickly)",
    "post_op": r"after\s+(my|his|her|the|a|an)\s+([\w']+\s+)?(operation|surgery|op|procedure|c\s?section|caesarean)|"
               r"post\s?op\w*|(days?|weeks?)\s+after\s+([\w']+\s+)?(surgery|operation|delivery|birth)",
    "diabetic": r"diabet\w*|type\s+(1|one|2|two)\b|t1d|t2d|t1|insulin|gliclazide|sulfonylurea|libre|dexcom|cgm|"
                r"hypos?\b|\bbg\b|\bbm\b",
    "hypo_named": r"hypo\b|hypoglyc\w*|low\s+sugar|sugar\s+(is\s+|was\s+)?([\w']+\s+)?(low|dropping|crashed|falling|"
                  r"plummet\w*)|(sugar|glucose|bg|bm)\s+(crash\w*|drop\w*|tank\w*)",
    "hypo_strong": r"confus\w*|drows\w*|talking\s+(rubbish|nonsense|gibberish|funny)|not\s+making\s+sense|"
                   r"aggressive|(acting|behaving)\s+([\w']+\s+)?(drunk|strange\w*|weird\w*|odd\w*)|slurr\w*|(can't|"
                   r"cannot)\s+(wake|get\s+(him|her)\s+to)|won't\s+(wake|eat|drink|swallow)|unresponsive|"
                   r"barely\s+respond\w*|not\s+respond\w*|pass(ed|ing)\s+out|unconscious|fitting|seizure|collaps\w*|"
                   r"(gave|given|used|needed)\s+(him|her|them|me|his|her)?\s*glucagon|(can't|cannot)\s+swallow|"
                   r"not\s+with\s+it|sweat\w*\s+and\s+shak\w*|shak\w*\s+and\s+sweat\w*",
    "hyper_named": r"dka|ketoacidosis|hhs|hyperosmolar|ketones\s+([\w']+\s+){0,2}?(high|large)|high\s+ketones|"
                   r"(pear\s+drops|nail\s+varnish|fruity|acetone)\s+([\w']+\s+){0,2}?(breath|smell\w*)|"
                   r"breath\s+([\w']+\s+){0,2}?(pear\s+drops|fruity|acetone|nail\s+varnish)|(meter|reading|monitor|"
                   r"libre|dexcom|glucometer|sugar)\s+([\w']+\s+){0,2}?(hi|off\s+the\s+(scale|charts))\b|says\s+hi\b",
    "hyper_signs": r"vomit\w*|throw\w*\s+up|being\s+sick|breath\w*\s+([\w']+\s+){0,2}?(deep\w*|fast|heav\w*|hard)|"
                   r"deep\s+breath\w*|drows\w*|confus\w*|(stomach|abdominal)\s+pain|ketones|dehydrat\w*",
}


# Burns, the belly and the testicles, the aorta and the lungs' arteries, heat, carbon monoxide, injuries,
# cold and water, and the body's numbers.
CONCEPTS |= {
    "burn": r"burns?|burnt|burned|scald\w*|(pulled|spilt|spilled|knocked|tipped|poured|"
            r"dropped)\s+([\w']+\s+){0,4}?(tea|coffee|kettle|boiling|hot\s+water|soup|oil|"
            r"pan)\s+([\w']+\s+){0,2}?(on|onto|over|down)|boiling\s+(water|oil|kettle|fat)|hot\s+(water|oil|fat|tea|"
            r"coffee|kettle)|caught\s+fire|on\s+fire|flames?|fire|chemical\s+(burn|splash)|acid\s+(attack|burn|"
            r"splash)",
    "burn_severe": r"(large|big|huge|massive|wide|deep|whole|entire|bad|serious|severe)\s+([\w']+\s+){0,2}?(burns?|"
                   r"area|blisters?|patch)|all\s+over|(skin|it)\s+([\w']+\s+){0,2}?(peel\w*|com\w*\s+off|came\s+off|"
                   r"white|leathery|charred|black|waxy|grey|gray|melted|raw)|(doesn't|does\s+not|didn't|don't|"
                   r"no\s+longer)\s+hurt|(face|hands?|feet|genitals|groin|airway|mouth|throat|neck|eyes?|chest)\b|"
                   r"(voice|breath\w*|cough\w*)\s+([\w']+\s+){0,2}?(hoarse|wheez\w*|soot|black)|hoarse|soot|"
                   r"smoke\s+inhal\w*|inhaled\s+smoke|bigger\s+than\s+([\w']+\s+){0,2}?(hand|palm)|\d+\s?%|percent|"
                   r"electr\w*|chemical|acid|bleach|cement",
    "chem_eye": r"(chemical|bleach|acid|alkali|drain\s+cleaner|oven\s+cleaner|cement|lime|caustic|ammonia|detergent|"
                r"pod|liquid|spray)\s+([\w']+\s+){0,3}?(in|into)\s+(my|his|her|their|the)\s+eyes?|(splash\w*|"
                r"squirt\w*|spray\w*|got)\s+([\w']+\s+){0,3}?(chemical|bleach|acid|cleaner|"
                r"cement)\s+([\w']+\s+){0,2}?eyes?|eyes?\s+([\w']+\s+){0,3}?(chemical|bleach|acid|cleaner)|(metal|"
                r"glass|firework|stick)\s+([\w']+\s+){0,3}?(in|into|hit)\s+(my|his|her)\s+eye|(something|a\s+bit|"
                r"a\s+piece|a\s+shard|a\s+splinter|metal|glass|wood|a\s+chip)\s+([\w']+\s+){0,3}?(flew|went|got|"
                r"shot|flicked)\s+(in|into)\s+(my|his|her)\s+eye",
    "abdomen": r"stomach|abdom\w*|gut|tum|lower\s+right|right\s+(lower\s+)?side|(low|"
               r"lower)\s+(down\s+)?on\s+the\s+(right|left)|side|groin|pelvi\w*|belly\s?button|navel|appendix|"
               r"upper\s+(stomach|abdomen)|lower\s+(stomach|abdomen)|flank",
    "abd_severe": r"rock\s+hard|hard\s+as\s+(a\s+)?(board|rock)|rigid|(can't|cannot)\s+(stand|straighten|move|walk|"
                  r"stand\s+up\s+straight|lie\s+still|sit\s+still)|curled\s+up|doubled\s+over|hurts\s+to\s+(walk|"
                  r"move|cough|breathe|jump)|(walking|moving|coughing)\s+hurts",
    "bilious": r"(vomit\w*|throw\w*\s+up|sick|puk\w*)\s+([\w']+\s+){0,2}?(green|bile|yellow\s+green|poo|faec\w*|"
               r"fec\w*)|green\s+(vomit|sick|bile|stuff)|bilious",
    "obstruction": r"(haven't|hasn't|not|can't|cannot|unable\s+to|no)\s+([\w']+\s+){0,2}?(pooed|pooped|poo|"
                   r"passed\s+(wind|gas|stool|a\s+stool)|fart\w*|had\s+a\s+(poo|bowel\s+movement)|opened\s+(my|his|"
                   r"her)\s+bowels)|(swollen|distended|bloated|hard)\s+([\w']+\s+)?(stomach|abdomen)|(stomach|"
                   r"abdomen)\s+([\w']+\s+){0,2}?(swollen|distended|huge|hard)",
    "abd_named": r"appendicitis|appendix\s+([\w']+\s+)?(burst|rupture\w*)|burst\s+appendix|pancreatitis|perforat\w*|"
                 r"peritonitis|bowel\s+obstruction|twisted\s+bowel|volvulus|ruptured\s+(spleen|appendix)|"
                 r"intussusception|red\s?currant\s+jelly|jelly\s+([\w']+\s+)?(poo|stool)|"
                 r"pulling\s+([\w']+\s+){0,2}?legs\s+up|drawing\s+([\w']+\s+){0,2}?legs\s+up|(started|"
                 r"began)\s+([\w']+\s+){0,3}?(belly\s?button|navel|middle)\s+([\w']+\s+){0,4}?(moved|moving|now|"
                 r"went|shifted)\s+([\w']+\s+){0,3}?(right|lower)",
    "hernia": r"(hernia|lump|bulge)\s+([\w']+\s+){0,4}?(hard|tender|painful|red|won't\s+go\s+back|stuck\s+out)|"
              r"(can't|cannot|won't)\s+(push|pop|get)\s+(it\s+)?back\s+in",
    "retention": r"(haven't|hasn't|have\s+not|has\s+not|not)\s+(been\s+able\s+to|managed\s+to)\s+(pee|wee|urinate|"
                 r"pass\s+urine)|(can't|cannot|unable\s+to)\s+(pee|wee|urinate|pass\s+urine|"
                 r"pass\s+water)\s+([\w']+\s+){0,3}?(hours|all\s+day|since)|bladder\s+([\w']+\s+){0,4}?(burst|"
                 r"bursting|huge|swollen)",
    "testis": r"testic\w*|testes|testis|scrot\w*|(my|his|one|left|right|a)\s+(ball|balls|nut|nuts)\b",
    "testis_flag": r"swollen|swelling|higher\s+than|(sitting|sits|riding)\s+higher|vomit\w*|throw\w*\s+up|"
                   r"woke\s+([\w']+\s+)?(up\s+)?with|turned\s+([\w']+\s+)?(purple|blue|black)|twist\w*|torsion",
    "tearing": r"tearing|ripping|ripped|like\s+([\w']+\s+){0,2}?(ripping|tearing|torn|ripped)",
    "back_through": r"(through|go\w*|went|straight|radiat\w*|spread\w*|shoot\w*)\s+([\w']+\s+){0,2}?(to|into|"
                    r"through)\s+(my|his|her|the)\s+back|between\s+(my|his|her|the)\s+shoulder\s?blades",
    "aorta_risk": r"marfan\w*|ehlers|aneurysm|aortic|aorta|(different|differs|difference)\s+([\w']+\s+){0,2}?(each|"
                  r"both|two|the\s+two)\s+arms?|(arms?)\s+([\w']+\s+){0,3}?(different|differ)",
    "back_site": r"back|shoulder\s?blades?|spine",
    "pe_risk": r"surgery|operation|post\s?op|(knee|hip)\s+replacement|c\s?section|caesarean|"
               r"long\s+(haul\s+)?(flight|drive|journey|car\s+journey|bus)|flight|plane|immobil\w*|bed\s?(rest|"
               r"bound|ridden)|plaster\s+cast|on\s+the\s+pill|contracepti\w*|birth\s+control|hrt|cancer|dvt|clot\w*|"
               r"pregnan\w*|post\s?partum",
    "calf": r"(calf|calves|leg|thigh)\s+([\w']+\s+){0,3}?(swollen|swelling|swell\w*|red|hot|tender|pain\w*|hurt\w*|"
            r"sore|tight)|(swollen|painful|red|hot|tender)\s+([\w']+\s+)?(calf|leg|thigh)|dvt|clot\s+in\s+(my|his|"
            r"her)\s+leg",
    "pleuritic": r"(sharp|stabbing)\s+([\w']+\s+){0,2}?pain\s+([\w']+\s+){0,3}?(breath\w*|inhal\w*)|"
                 r"pain\s+([\w']+\s+){0,3}?(when|on|as)\s+(i\s+|he\s+|she\s+)?(breath\w*|inhal\w*)|"
                 r"hurts?\s+([\w']+\s+){0,3}?(to\s+breathe|when\s+(i|he|she)\s+breathe|breathing\s+in|"
                 r"deep\s+breath)|pleuri\w*",
    "cough_blood": r"cough\w*\s+([\w']+\s+){0,3}?blood|blood\s+([\w']+\s+){0,3}?cough\w*|haemoptysis|hemoptysis",
    "tachy": r"heart\s+([\w']+\s+){0,2}?(racing|pounding|going\s+(really\s+|so\s+)?fast|beating\s+(really\s+|"
             r"so\s+)?fast)|racing\s+heart|palpitations|pulse\s+([\w']+\s+)?(racing|fast)",
    "caffeine": r"coffees?|caffeine|energy\s+drinks?|red\s+bull|espresso|pre\s?workout",
    "heat": r"heat\w*|hot\s+(day|weather|car|room|flat|sun|house|outside)|sun|sunny|sunshine|festival|marathon|"
            r"running|race|sauna|heatwave|like\s+an\s+oven|(3[5-9]|4\d|5\d)\s?(c|degrees?|deg)\b|desert|hiking|"
            r"(working|worked|was|been)\s+([\w']+\s+){0,3}?(outside|outdoors|in\s+the\s+sun)|construction|"
            r"building\s+site|farm|field",
    "hot_dry": r"(skin|he|she|body|he's|she's)\s+([\w']+\s+){0,3}?(hot\s+and\s+dry|dry\s+and\s+hot|burning\s+hot|"
               r"very\s+hot)|(not|stopped|isn't|no\s+longer)\s+sweating",
    "heat_signs": r"collaps\w*|confus\w*|(not|stopped|isn't)\s+sweating|no\s+sweat|dry\s+(hot\s+)?skin|"
                  r"hot\s+([\w']+\s+)?dry|(hot|burning)\s+to\s+(the\s+)?touch|boiling\s+hot|burning\s+up|mumbl\w*|"
                  r"fitting|seizure|pass(ed|ing)\s+out|unconscious|head\s+([\w']+\s+)?spinning|delirious|slurr\w*|"
                  r"not\s+making\s+sense",
}


# The lexicon, continued: `heat_named`, `co`, `fuel`, `co_signs`…
CONCEPTS |= {
    "heat_named": r"heat\s?stroke|sun\s?stroke|hyperthermi\w*|(left|locked|trapped|stuck)\s+([\w']+\s+){0,3}?(in|"
                  r"inside)\s+(a|the)\s+(hot\s+)?car",
    "co": r"carbon\s+monoxide|co\s+(alarm|detector|poison\w*|leak|monitor|sensor|levels?)",
    "low_battery": r"low\s+battery|battery\s+(chirp|warning|beep|low)|chirp\w*|needs?\s+(a\s+)?new\s+batter(y|ies)|"
                   r"end\s+of\s+life\s+warning",
    "fuel": r"boiler|gas\s+(fire|heater|stove|cooker|appliance|leak|smell)|heater|generator|bbq|barbecue|charcoal|"
            r"exhaust|fumes|chimney|(wood|log)\s+burner|stove|fireplace|furnace|engine\s+running",
    "co_signs": r"head\s?aches?|headache\w*|dizz\w*|drows\w*|sleepy|sick|nause\w*|vomit\w*|confus\w*|faint\w*|"
                r"pass(ed|ing)\s+out|collaps\w*|alarm\s+([\w']+\s+){0,2}?(beep\w*|going\s+off|went\s+off|sounding|"
                r"keeps)",
    "co_group": r"(whole|all\s+the|the)\s+family|everyone|all\s+of\s+us|the\s+kids|both\s+of\s+us|we\s+(all|both)|"
                r"(worse|better)\s+(when|at\s+home|indoors|inside|outside|away)|smell\w*|fumes|tent|caravan|garage|"
                r"boat|cabin",
}


# Injuries, cold and water, the spine, and a few words that mark how a message is meant: a knowledge
# question, an exam or a story, something past or hypothetical, someone real, now.
CONCEPTS |= {
    "trauma": r"(hit|knocked\s+(down|over|off)|run\s+over|struck)\s+by\s+(a|the)\s+(car|bus|lorry|truck|van|train|"
              r"motorbike|vehicle)|knocked\s+off\s+(his|her|my)\s+(bike|motorbike|scooter)|(car|motorbike|"
              r"motorcycle|road|traffic|head\s+on)\s+(crash|accident|collision|smash)|stabbed|stab\s+wound|"
              r"knife\s+wound|(been|got|was|is)\s+shot|gunshot|shot\s+(in|through)\s+(the|his|her|my)|impaled|"
              r"fell\s+([\w']+\s+){0,2}?(off|from|out\s+of)\s+(a\s+|the\s+|his\s+|her\s+|my\s+)?(roof|balcony|"
              r"window|scaffold\w*|cliff|building|bridge|height|first\s+floor|second\s+floor)|(bone|"
              r"bones)\s+([\w']+\s+){0,2}?(sticking|poking|stuck)\s+out|(open|compound)\s+fracture|(leg|arm|ankle|"
              r"wrist|knee|shoulder|finger|hip)\s+([\w']+\s+){0,2}?(bent|twisted|"
              r"pointing)\s+([\w']+\s+){0,2}?(wrong\s+way|backwards|sideways)|at\s+(a|an)\s+(weird|funny|odd|"
              r"strange|unnatural|awful)\s+angle|(can't|cannot)\s+(feel|move)\s+(his|her|my|their)\s+(legs|arms|"
              r"feet|toes|neck|body)|crush\w*\s+(under|by|beneath)|(trapped|pinned)\s+under|electrocut\w*|"
              r"electric\s+shock|shock\s+from\s+(the\s+|a\s+)?(mains|socket|wire|cable|power\s+line|fence|outlet)|"
              r"struck\s+by\s+lightning|(nearly|almost)\s+drown\w*|near\s+drown\w*|"
              r"pulled\s+([\w']+\s+){0,3}?out\s+of\s+(the\s+)?(pool|water|sea|river|lake|bath|pond|canal)|"
              r"went\s+under\s+(the\s+)?water|face\s+down\s+in\s+(the\s+|a\s+)?([\w']+\s+)?(water|pool|bath|pond|"
              r"river|sea)|(came|come|fell|thrown)\s+off\s+(his|her|my|the|a)\s+(motor\s?bike|motorcycle|horse|"
              r"scooter|quad)|mauled|snake\s?bite|(bit|bitten)\s+by\s+(a\s+)?(snake|adder|cobra|viper)|adder\s+bite|"
              r"(lying|lay|been)\s+on\s+the\s+floor\s+(for|all)|strangl\w*|choked\s+(me|her|him)|(hands?)\s+(round|"
              r"around)\s+(my|his|her)\s+(neck|throat)|(bit|bitten)\s+by\s+(a\s+)?(stray|wild|rabid|unknown)\s+(dog|"
              r"cat|monkey|animal|fox)|bat\s+bite|rabies|deep\s+(puncture|bite)|(bit|bitten|"
              r"stung)\s+([\w']+\s+){0,4}?by\s+(a\s+|an\s+)?([\w']+\s+)?(snake|adder|cobra|viper|taipan|rattlesnake|"
              r"spider|funnel\s?web|redback|scorpion|box\s+jellyfish|stonefish)|(snake|spider|scorpion)\s+(bit|"
              r"bite)|funnel\s?web",
}


# The lexicon, continued: `drowning`, `cold`, `back`, `saddle`, limbs, and the words that mark how a message is meant.
CONCEPTS |= {
    "drowning": r"drown\w*",
    "cold": r"hypothermi\w*|(freezing|ice|icy|stone)\s+cold|(stopped|stopping)\s+shivering|"
            r"shivering\s+(has\s+)?stopped|found\s+([\w']+\s+){0,3}?(outside|in\s+the\s+(snow|cold|garden|street))|"
            r"frostbite|(fell|fallen)\s+(in|into)\s+([\w']+\s+)?(icy|freezing|cold)",
    "back": r"back\s?(pain|ache)|sciatica|slipped\s+disc|lower\s+back|lumbar|back\s+([\w']+\s+){0,2}?(hurts|pain|"
            r"agony)",
    "saddle": r"numb\w*\s+([\w']+\s+){0,3}?(between\s+([\w']+\s+)?legs|bum|buttocks?|bottom|genitals|groin|privates|"
              r"saddle|inner\s+thighs|down\s+below|back\s+passage)|(can't|cannot)\s+feel\s+([\w']+\s+){0,2}?(bum|"
              r"bottom|buttocks|genitals|groin|privates|when\s+(i|he|she)\s+wipe)|saddle\s+(anaesthesia|numbness|"
              r"area)|(wet|soiled|pooed)\s+(my|him|her|them)sel(f|ves)|(lost|losing|"
              r"no)\s+control\s+of\s+([\w']+\s+)?(bladder|bowels?|pee|wee)|(can't|cannot|unable\s+to|"
              r"struggling\s+to)\s+(pee|wee|urinate|pass\s+urine|pass\s+water|empty\s+(my|his|her)\s+bladder)|"
              r"incontinen\w*|cauda\s+equina|(bum|buttocks?|bottom|genitals|groin|between\s+(my|his|her|the)\s+legs|"
              r"saddle|privates)\s+([\w']+\s+){0,5}?(numb\w*|tingl\w*|no\s+feeling)|(can't|"
              r"cannot)\s+feel\s+(\w+\s+)?(properly\s+)?when\s+(i'm\s+|i\s+am\s+)?(wee\w*|pee\w*|wip\w*)",
    "limb_ischaemia": r"(leg|foot|arm|hand|toes|fingers)\s+([\w']+\s+){0,3}?(cold|white|pale|blue|mottled|"
                      r"purple)\s+([\w']+\s+){0,3}?(numb\w*|painful|pain|no\s+pulse|can't\s+feel|dead|tingl\w*)|"
                      r"no\s+pulse\s+in\s+(his|her|my|the)\s+(foot|feet|leg|wrist|arm)|(can't|cannot)\s+feel\s+(a|"
                      r"the|any)\s+pulse\s+in",
    "cast": r"(cast|plaster|splint|pot)\b",
    "numb_extremity": r"(toes|fingers|foot|hand)\s+([\w']+\s+){0,2}?(numb\w*|pale|white|blue|cold|tingl\w*|purple)",
    "priapism": r"priapism|erection\s+([\w']+\s+){0,3}?(hours?|won't\s+go|not\s+going)|(won't|"
                r"can't)\s+get\s+rid\s+of\s+(an|the|my|his)\s+erection",
    "adrenal": r"addison\w*|adrenal\s+(insufficiency|crisis|failure)|hydrocortisone|steroid\s+dependent|"
               r"on\s+steroids|congenital\s+adrenal",
    "knowledge": r"symptoms?\s+of|signs?\s+of|causes?\s+of|treatment\s+(of|for)|treated|managed|management\s+of|"
                 r"mechanism|pathophysiology|pathogenesis|risk\s+factors?|prognosis|definition|define|"
                 r"classification|differential|complications?\s+of|epidemiology|incidence|prevalence|guidelines?|"
                 r"criteria|first\s+line|drug\s+of\s+choice|antidote|dose\s+of|dosage|warning\s+signs|red\s+flags?|"
                 r"how\s+(do|does|can|could|would|should|is|are)\s+(you|one|someone|people|a\s+person|doctors|"
                 r"paramedics|it|they)|how\s+(do|can|would|will|should)\s+(i|we)\s+(know|tell|recogni[sz]e|spot|do|"
                 r"perform|give|use|learn|check|prepare|prevent|help)\b|(^|[.?!\n])\s*(what|which|why|how|when|"
                 r"where|who|define|describe|explain|list|name|compare|outline|discuss|differentiate|distinguish|"
                 r"mechanism|pathophysiology|true\s+or\s+false)\b|(^|[.?!\n])\s*(is|are|can|could|does|do|would|"
                 r"will|should|may|might)\s+(a|an|the|you|someone|people|one|there|stress|anxiety|\w+ing)\b|"
                 r"difference\s+between|normal\s+range|lethal\s+dose|how\s+(long|much|many|often)|in\s+(general|"
                 r"adults|children|women|men|infants|pregnancy|the\s+elderly)|(always|usually|normally|typically|"
                 r"commonly|ever)\s+(a|an)\b|a\s+sign\s+of|a\s+real\s+thing|actually\s+(a|true|real|dangerous)|"
                 r"how\s+(do\s+(i|you|we)|to)\s+use|where('s|\s+is)\s+the\s+best|what\s+temperature|"
                 r"when\s+should\s+(i|we)|first\s+aid|do\s+you\s+(put|give|do|call|need|move|use|have\s+to)|"
                 r"should\s+you|what\s+(number|level|reading|value|temperature)\s+(counts|is|should)|"
                 r"at\s+what\s+(point|level|number|reading|temperature|sugar|oxygen|heart\s+rate|bp|age)|"
                 r"what\s+(level|number|reading)\s+(of|should|is)",
    "textbook": r"(my|the|a|in\s+the|from\s+the|our)\s+textbooks?|textbook\s+(says|question|case|answer|example)|"
                r"(for|in|on|revising\s+for|studying\s+for)\s+(my|an|the|our)\s+(exams?|finals|test|osce|boards|"
                r"quiz)|exams?\s+(question|tomorrow|revision|prep|paper)|finals|usmle|plab|mrcp|nclex|osce|mcqs?|"
                r"quiz\w*|flashcards?|revision\s+(question|notes)|for\s+(my\s+)?revision|studying\s+(for|medicine|"
                r"nursing|pharmacy)|(my|for)\s+homework|homework\s+question|(my|an|this)\s+(essay|assignment|"
                r"dissertation)|essay\s+on|(my|the|in\s+the|from\s+the|our|in\s+a|in\s+my)\s+lectures?\b|"
                r"lecture\s+(notes|slides|today|said)|syllabus|curriculum|(my|the|our)\s+(professor|tutor|lecturer)|"
                r"case\s+(study|report|scenario)|vignette|nursing\s+(course|school|student|degree)|"
                r"med(ical)?\s+school|(medical|nursing|paramedic|pharmacy)\s+students?|question\s+bank|\d+\s+(year|"
                r"yr)s?\s+old\s+(man|woman|male|female|patient|boy|girl|child|gentleman|lady)\s+(presents|presented|"
                r"is\s+brought|comes|came)|presents?\s+with|presented\s+with|is\s+brought\s+(in|to)|most\s+likely|"
                r"next\s+(best\s+)?step|investigation\s+of\s+choice|(a|the)\s+patient\s+(presents|who)|mnemonic|"
                r"case\s*:|what\s+is\s+the\s+(most\s+likely\s+)?diagnosis|station",
    "fiction": r"(in|from)\s+(the|a|my)\s+(film|movie|show|series|book|novel|game|play|episode|story|comic|anime)|"
               r"(my|the|a|our)\s+(novel|story|screenplay|script|book\s+i'm\s+writing|plot|fanfic\w*)|(my|the|a|"
               r"main|fictional)\s+characters?|characters?\s+(in|who)|writing\s+a\s+(book|story|novel|script|scene|"
               r"play)|fiction\w*|screenplay|d&d|dnd|(rpg|tabletop)\s+campaign|roleplay|grey's\s+anatomy|house\s+md|"
               r"on\s+tv|tv\s+(show|series)",
}


# The lexicon, continued: `personal`, `generic_who`, `urgent`…
CONCEPTS |= {
    "personal": r"i|i'm|i've|i'd|i'll|me|my|mine|myself|we|we're|we've|us|our|ours|he|she|he's|she's|him|his|her|"
                r"hers|himself|herself|(mum|dad|father|mother|son|daughter|husband|wife|partner|boyfriend|"
                r"girlfriend|baby|toddler|kid|grandma|grandpa|granny|gran|nan|nana|grandad|granddad|grandfather|"
                r"grandmother|friend|mate|flatmate|roommate|neighbour|neighbor|colleague|brother|sister|uncle|aunt|"
                r"auntie|cousin|fiance|fiancee|patient)('s)?",
    "generic_who": r"(a|an|any|your|every|each|one's|some)\s+([\w']+\s+)?(mum|dad|father|mother|son|daughter|"
                   r"husband|wife|partner|baby|toddler|kid|child|friend|patient|person|pregnant|woman|man|diabetic)",
    "urgent": r"right\s+now|just\s+now|(called|calling|rang|phoned|ringing)\s+(an\s+|the\s+)?(ambulance|911|999|112|"
              r"000|paramedics)|ambulance\s+(is\s+)?(on\s+(its|the)\s+way|coming)|waiting\s+for\s+(an\s+|"
              r"the\s+)?ambulance|asap|urgent\w*|hurry|^\W*help\b|help\s+(me|us|him|her|please)|please\s+help|"
              r"help\s*!|!\s*!|what\s+do\s+(i|we)\s+do\s+now",
}


# Vital signs written as numbers become concepts: *SpO₂ 84 %* → `spo2_low`, *bp 165/112* → `bp_raised`
# (`bp_crisis` from 180/120), a temperature of 38 °C or more → `temp_fever` (40 → `temp_very_high`, 35 or
# less → `temp_low`; Fahrenheit too), a blood sugar below 3.5 mmol/L (63 mg/dL) → `glucose_low`, from 20 mmol/L
# (360 mg/dL) → `glucose_high` (a number without a unit is read as mmol/L up to 25, as mg/dL from 40, and as
# dangerous either way in between), ketones from 1.5 → `ketones_high`, a pulse of 150 or more or 40 or less
# → `hr_high` / `hr_low` (120 → `hr_raised`), a breathing rate of 30 or more → `rr_high`.
VITAL_PATTERNS = {
    "spo2": (r"\b(spo2|sp02|sats?|saturations?|o2|oxygen|pulse\s?ox\w*|oximeter)\b[^0-9\n]{0,40}?(\d{2,3})\b|"
             r"\b(\d{2,3})\s?%\s?(sats?|o2|oxygen|spo2|saturation)"),
    "bp": r"\b(\d{2,3})\s?(?:/|over)\s?(\d{2,3})\b",
    "temp": (r"\b(temp\w*|fever\w*|febrile|thermometer)\b[^0-9\n]{0,25}?(\d{2,3}(?:[.,]\d{1,2})?)\s?(c|f|deg\w*)?\b|"
             r"\b(\d{2,3}(?:[.,]\d{1,2})?)\s?(c|f|deg\w*|celsius|fahrenheit)\b(\s+(outside|out|today|in\s+the))?"),
    "glucose": (r"\b(sugars?|glucose|bgl?|bm|cbg|bsl|libre|dexcom|glucometer|meter)\b(?:\s?(?:levels?|readings?|is|"
                r"was|of|at|=|:|says|reads|read|showing|shows|dropped\s+to|down\s+to|went\s+to|up\s+to|only|just|"
                r"now|'s|are|were|on\s+(?:the|my|his|her)\s+(?:meter|monitor|machine|libre|"
                r"sensor))){0,4}\s?(\d{1,3}(?:[.,]\d)?)\s?(mmol|mg)?|\b(\d{1,3}(?:[.,]\d)?)\s?(mmol|mg\s?/?\s?dl)"),
    "ketones": r"\bketones?\b[^0-9\n]{0,25}?(\d{1,2}(?:[.,]\d)?)",
    "hr": (r"\b(pulse|heart\s?rate|hr|heart\s?beat|heart)\b[^0-9\n]{0,25}?(\d{2,3})\b|\b(\d{2,3})\s?(bpm|"
           r"beats\s+(per|a)\s+min\w*)"),
    "rr": (r"\b(resp\w*\s+rate|rr|breathing\s+rate|resps)\b[^0-9\n]{0,20}?(\d{1,2})\b|\b(\d{2})\s+(breaths|"
           r"times)\s+(a|per|each)\s+min\w*"),
    "platelets": r"\b(platelets?|plt)\b[^0-9\n]{0,15}?(\d{1,3}(?:,\d{3}|\d{3})?)\b",
    "gcs": r"\b(gcs|glasgow(\s+coma\s+scale)?)\b[^0-9\n]{0,15}?(\d{1,2})\b",
}


def number(text):
    """A number written with a dot or a comma as its decimal mark."""
    return float(text.replace(",", "."))


def vital_concepts(kind, match, infant):
    """The vital-sign concepts one matched reading implies (an empty list when the value is unremarkable)."""
    groups = [g for g in match.groups() if g is not None]
    values = [number(g) for g in groups if g[0].isdigit()]
    if not values:
        return []
    value = values[0]
    if kind == "spo2":
        return ["spo2_low"] if 50 <= value <= 91 else []
    if kind == "bp":
        high, low = values[0], values[1]
        if not (60 <= high <= 300 and 30 <= low <= 200 and high > low):
            return []
        return ([*(["bp_crisis"] if high >= 180 or low >= 120 else []), "bp_raised"] if high >= 140 or low >= 90
                else ["bp_low"] if high < 90 else [])
    if kind == "temp":
        if any(g.strip() in ("outside", "out", "today", "in the") for g in groups):
            return []  # the weather, not a body
        unit = next((g for g in groups if g in ("f", "fahrenheit")), None)
        celsius = (value - 32) * 5 / 9 if unit or value >= 90 else value
        if not 30 <= celsius <= 45:
            return []
        if celsius >= 38:
            return ["temp_fever", *(["temp_high"] if celsius >= 39 else []),
                    *(["temp_very_high"] if celsius >= 40 else [])]
        return ["temp_low"] if celsius <= 35 else ["temp_normal"]
    if kind == "glucose":
        unit = "mg" if any(g.startswith("mg") for g in groups) else "mmol" if "mmol" in groups else None
        mmol = value / 18 if unit == "mg" or (unit is None and value >= 40) else value
        if unit is None and 25 <= value < 40:
            return ["glucose_high"]  # dangerous in either unit
        return ["glucose_low"] if mmol < 3.5 else ["glucose_high", "glucose_raised"] if mmol >= 20 else \
            ["glucose_raised"] if mmol >= 14 else []
    if kind == "ketones":
        return ["ketones_high"] if value >= 1.5 else []
    if kind == "hr":
        if infant:
            return ["hr_high"] if value >= 220 else ["hr_low"] if value < 60 else []
        return ["hr_high", "hr_raised"] if value >= 150 else ["hr_raised"] if value >= 120 else \
            ["hr_low"] if 20 <= value <= 40 else []
    if kind == "rr":
        return ["rr_high"] if value >= (60 if infant else 30) else []
    if kind == "platelets":
        count = value if value < 1000 else value / 1000  # 18 or 18,000 (per microlitre)
        return ["platelets_low"] if count < 50 else []
    if kind == "gcs":
        return ["gcs_low"] if 3 <= value <= 12 else []
    return []


# The red-flag table, one row per emergency: heart, breathing, stroke and the brain first. In a trigger,
# `a & b` means both occur in the message, `a|b` either one, `a ~4 b` the two at most 4 words apart in one
# sentence, and `!c` "not when c occurs" (a veto).
class RedFlag(NamedTuple):
    """One red flag: a name, its triggers (any one fires it) and the notice shown before the answer."""

    name: str
    triggers: tuple
    notice: str


EMERGENCY = "**Call your local emergency number now** (112 EU, 911 US, 999 UK)"
RED_FLAG_RULES = [
    RedFlag("chest pain", ("chest ~6 pain !msk !mild", "chest ~6 pain & autonomic|radiate|arm_jaw|severe|sudden",
                           "acs_named", "chest_clutch", "radiate & pain|chest", "arm_jaw & autonomic",
                           "hr_raised & chest|sob|faint_like",
                           "epigastric & pain|autonomic & diaphoresis"),
            "🚨 **Chest pain can be a heart attack**, especially with breathlessness, sweating or pain spreading to "
            f"the arm or jaw. {EMERGENCY}; do not drive yourself."),
    RedFlag("breathing", ("cant_breathe", "few_words", "cyanosis", "retractions", "inhaler_fail", "asthma_severe",
                          "choking !resolved", "sob ~4 sob_mod !mild", "sob & sudden", "wheeze ~5 severe|sob_mod",
                          "wheeze & cyanosis|few_words", "spo2_low !baseline", "rr_high", "arrest"),
            f"🚨 **Severe difficulty breathing is an emergency.** {EMERGENCY}."),
    RedFlag("stroke signs", ("face_droop !after_stroke", "speech !limb_benign !after_stroke", "limb_weak & "
                             "one_side|sudden|speech|face_droop !limb_benign !chest !after_stroke", "stroke_named",
                             "vision_loss & limb_weak|speech|face_droop", "confusion & sudden",
                             "face_droop|speech|limb_weak & sudden", "ataxia & sudden|vision_loss|speech"),
            f"🚨 **Face drooping, arm weakness or slurred speech can be a stroke.** {EMERGENCY} and note the time "
            "the symptoms started."),
    RedFlag("very fast or slow pulse", ("hr_high", "hr_low", "tachy & faint_like|chest|sob|cant_breathe !caffeine"),
            "🚨 **A very fast or very slow pulse, especially with fainting, chest pain or breathlessness, needs help "
            f"now.** {EMERGENCY}."),
    RedFlag("seizure or unconscious", ("seizure !resolved", "seizure & seizure_long", "unresponsive !resolved",
                                       "arrest", "gcs_low"),
            f"🚨 **A seizure, or someone who cannot be woken, needs help now.** {EMERGENCY}."),
    RedFlag("sudden severe headache or head injury", (
        "headache & thunderclap", "thunderclap", "headache ~4 sudden", "headache ~5 severe & vomit_any|stiff_neck|"
        "photophobia|confusion|fever|vision_loss|limb_weak|speech|bp_raised", "headache & stiff_neck|photophobia",
        "head_hit & head_sign", "head_hit & anticoag", "head_hit & baby !resolved"),
            "🚨 **A sudden, severe headache — or a head injury with vomiting, drowsiness, confusion or blood "
            f"thinners — can be bleeding in the brain.** {EMERGENCY}."),
    RedFlag("sudden loss of sight or eye emergency", ("vision_loss", "chem_eye", "eye_pain & vomit_any|vision_loss|"
                                                      "headache", "eye_swollen & fever|vision_loss"),
            "🚨 **Sudden loss of sight, a chemical in the eye, or a very painful red eye with blurred vision needs "
            f"urgent care.** Rinse a chemical out with running water for 20 minutes and {EMERGENCY}."),
]


# Mental health, poisoning, allergy, bleeding and injuries.
RED_FLAG_RULES += [
    RedFlag("self-harm", ("suicidal", "done_with_it & prep_means|hopeless|prep_plan|prep_note",
                          "prep_note & prep_means|hopeless|unreachable", "prep_means & hopeless",
                          "prep_plan & prep_means|prep_note|hopeless"),
            "🚨 **You are not alone.** If you might act on thoughts of suicide or self-harm, call your local "
            "emergency number now, or talk to a crisis line today (988 in the US, 116 123 in the UK and Ireland)."),
    RedFlag("mental health crisis or withdrawal", ("harm_others", "psychosis",
                                                   "withdrawal & toxic_signs|seizure|confusion"),
            "🚨 **Someone who may harm others, who hears or sees things that are not there, or who is in severe "
            f"alcohol withdrawal (shaking, confusion, fits) needs help now.** Keep yourself safe and {EMERGENCY}."),
    RedFlag("overdose or poisoning", (
        "overdose", "took_many !hangover", "ingested !resolved", "ingest_verb ~10 toxic_substance !resolved",
        "battery", "empty_pack",
        "child & pills_taken !resolved", "toxic_drug & toxic_signs", "med_error & child",
        "double_dose & drowsy|confusion|faint_like|unresponsive|vomit_any|hr_low|toxic_signs",
        "drug_use & drug_signs|unresponsive|seizure|confusion"),
            f"🚨 **Possible overdose or poisoning.** {EMERGENCY} or a poison control centre, even if the person "
            "seems well; keep the package."),
    RedFlag("anaphylaxis", ("anaphylaxis !resolved", "throat_closing", "airway_swell & allergen",
                            "allergen & cant_breathe|wheeze|cyanosis",
                            "allergen & hives_all & faint_like|vomit_any|sob"),
            "🚨 **Throat or tongue swelling or breathing trouble after a sting, food or medicine can be "
            f"anaphylaxis.** Use an adrenaline auto-injector if there is one; {EMERGENCY}."),
    RedFlag("severe bleeding", ("bleed_severe !minor_wound !resolved", "gi_bleed !mild !minor_wound",
                                "deep_wound & bleed", "bleed & wont_stop & anticoag",
                                "bleed_flow & wound|anticoag|bleed"),
            f"🚨 **Severe bleeding is an emergency.** Press firmly on the wound and {EMERGENCY}."),
    RedFlag("serious injury", ("trauma", "drowning", "cold & confusion|drowsy|unresponsive|speech|baby", "temp_low",
                               "back & saddle", "saddle & limb_weak", "limb_ischaemia", "cast & severe|numb_extremity"),
            "🚨 **A serious injury (a crash, a fall from height, a stab wound, a bone through the skin, water, "
            "electricity, a spine that may be hurt), a cold, pale, numb limb, numbness between the legs with back "
            "pain, or a body that is too cold needs emergency care.** Do not move someone who may have hurt their "
            f"neck or back; {EMERGENCY}."),
    RedFlag("severe burn", ("burn & burn_severe !mild", "burn & child !mild", "burn & sob|cant_breathe"),
            "🚨 **A large or deep burn, a burn to the face, hands, genitals or airway, a chemical or electrical "
            "burn, or any burn on a baby needs emergency care.** Cool it under running water for 20 minutes (not "
            f"ice) and {EMERGENCY}."),
]


# Pregnancy and babies, infection, diabetes, and the emergencies of the belly, the testicles, the aorta,
# the lungs' arteries, heat and carbon monoxide.
RED_FLAG_RULES += [
    RedFlag("pregnancy", ("pregnant & preg_danger !mild !brief", "pregnant & preg_bleed !mild", "fetal_move",
                          "pregnant & bp_raised"),
            "🚨 **Bleeding, severe or one-sided pain, fainting, a bad headache with blurred vision, waters breaking "
            "early or a baby that moves less in pregnancy needs urgent care.** "
            f"{EMERGENCY} or your maternity unit now."),
    RedFlag("sepsis, meningitis or a very ill baby", (
        "sepsis_named", "nonblanching", "stiff_neck & fever|headache|photophobia|vomit_any|nonblanching",
        "fever & sepsis_signs", "infection & sepsis_signs", "fever & drowsy|confusion|unresponsive",
        "baby_young & fever|temp_fever", "baby_3to6 & temp_high", "baby & baby_unwell !resolved",
        "baby_young & baby_unwell|no_urine !resolved", "baby & no_urine !resolved",
        "immunosuppressed & fever|temp_fever", "temp_very_high", "post_op & fever|temp_fever",
        "skin_danger & infection|wound|fever|pain"),
            "🚨 **Fever with confusion, a rash that does not fade under a glass, a stiff neck, a fever in a baby "
            "under 3 months or during chemotherapy, or a floppy, drowsy baby can be sepsis or meningitis.** "
            f"{EMERGENCY}."),
    RedFlag("shock or dangerous bleeding risk", (
        "bp_low & faint_like|sepsis_signs|vomit_any|drowsy|confusion|bleed|fever",
        "adrenal & vomit_any|faint_like|drowsy", "platelets_low", "spont_bleed_risk & bleed|vomit_any|cold_hands",
        "shock_signs"),
            "🚨 **Very low blood pressure (faint, cold, clammy, confused), an adrenal crisis (use the emergency "
            "hydrocortisone injection if there is one), or bleeding with dengue or very low platelets is an "
            f"emergency.** {EMERGENCY}."),
    RedFlag("diabetic emergency", ("diabetic & hypo_strong", "hypo_named & hypo_strong", "glucose_low",
                                   "hyper_named", "glucose_high", "glucose_raised & hyper_signs|ketones_high",
                                   "ketones_high", "diabetic & vomit_any & hyper_signs"),
            "🚨 **A very low or very high blood sugar is an emergency**: confusion, drowsiness, vomiting, deep "
            "breathing or fruity breath. If the person can swallow and the sugar is low, give sugar now; "
            f"{EMERGENCY} if they are drowsy, confused or vomiting."),
    RedFlag("acute abdomen, testicles or bladder", (
        "abdomen ~6 severe|abd_severe !mild", "bilious", "obstruction & vomit_any|pain", "abd_named",
        "testis & severe|sudden|testis_flag !mild", "priapism", "hernia & vomit_any|severe|pain", "retention"),
            "🚨 **Severe belly pain (a hard belly, green vomit, pain that stops you standing), a hernia that will "
            "not go back, sudden pain in a testicle, an erection that will not go down or a bladder that cannot "
            f"empty needs emergency care** — torsion can cost the testicle within hours. {EMERGENCY}."),
    RedFlag("aortic dissection or pulmonary embolism", (
        "tearing ~5 pain|chest|back_site", "tearing & aorta_risk", "back_through & sudden|severe|tearing",
        "aorta_risk & pain & sudden|severe", "pe_risk & sob|cant_breathe|pleuritic|cough_blood",
        "calf & sob|cant_breathe|pleuritic|cough_blood", "pleuritic & sob|sudden", "cough_blood & sob"),
            "🚨 **A tearing pain through to the back, or sudden breathlessness with chest pain, a swollen calf or "
            "coughing blood (after surgery, a flight, the pill) can be a torn aorta or a clot in the lungs.** "
            f"{EMERGENCY}."),
    RedFlag("very high blood pressure", ("bp_crisis",),
            "🚨 **A blood pressure of 180/120 or more, especially with a headache, chest pain, confusion or blurred "
            "vision, is an emergency.** Sit down, measure again in 5 minutes, and if it stays that high "
            f"{EMERGENCY}."),
    RedFlag("heat stroke or carbon monoxide", (
        "heat_named", "heat & heat_signs", "hot_dry & confusion|unresponsive|faint_like", "co & co_signs !low_battery",
        "fuel & co_signs & co_group", "fuel & unresponsive"),
            "🚨 **Heat stroke (hot, confused, not sweating) or carbon monoxide (headache, dizziness, sickness in "
            "several people, worse indoors) is an emergency.** Cool the person or get everyone into fresh air; "
            f"{EMERGENCY}."),
]


# The context around a match (NegEx/ConText in miniature). A message is cut into sentences and clauses
# (at punctuation and at *but, and, because…*). A concept is **negated** when a negation (*no, not, without,
# didn't, denies*) stands at most five words before it in its clause, or an ending (*stopped, went away,
# has gone*) at most four words after it — phrases such as *not getting better*, *can't stop* or *no relief*
# are not negations. It is **historical** when its clause says so (*years ago, last year, as a child, used to,
# history of*, or *had a stroke* in a sentence with nothing current) and **hypothetical** after *if, in case,
# suppose, when someone…* (not *as if*, *not sure if*); both last until the sentence says *now, today, still,
# again, for 20 minutes…*. It is **mild** after *mild, slight, a bit, a small* (or before *a little*).
CONCEPTS |= {
    "vomit_any": r"vomit\w*|throw\w*\s+up|being\s+sick|been\s+sick|puk\w*|sick\s+(twice|again|all\s+night)",
    "hangover": r"hang\s?over|hungover|night\s+out|drinking\s+last\s+night",
}
CLAUSE_BREAK = (r"\.(?:\s|$)|[,;:!?()\n]|\b(?:but|however|although|though|except|yet|and|so|because|then|while|"
                r"whereas|which|who|apart\s+from)\b")
SENTENCE_BREAK = r"\.(?:\s|$)|[!?;\n]|\b(?:but|however|although|though)\b"
NEGATION = (r"\b(?:no|not|never|without|nobody|no\s+one|noone|denies|denied|deny|nor|neither|none|nothing|free\s+of|"
            r"absence\s+of|negative\s+for|ruled\s+out|don't|doesn't|didn't|do\s+not|does\s+not|did\s+not|isn't|"
            r"aren't|wasn't|weren't|haven't|hasn't|hadn't)\b")
PSEUDO_NEGATION = (r"\b(?:no\s+(?:better|change|improvement|relief|idea|longer|matter|doubt|way|"
                   r"sign\s+of\s+stopping)|not\s+(?:only|sure|certain|getting\s+better|improving|stopping|stopped|"
                   r"going\s+away|gone|easing|helping|working|better|normal|like|just|even|much|settling)|(?:doesn't|"
                   r"don't|didn't|isn't|won't|can't|hasn't|haven't)\s+(?:stop\w*|help\w*|work\w*|go\s+away|gone|"
                   r"ease\w*|improv\w*|get\w*\s+better|know|think|seem\w*|look\s+right|matter|settle\w*|want|"
                   r"feel\s+right)|nothing\s+(?:helps|works|is\s+helping|has\s+helped))\b")
POST_NEGATION = (r"\b(?:stopped|went\s+away|gone\s+away|resolved|settled|cleared\s+up|eased\s+off|(?:has|have|is|"
                 r"it's)\s+gone)(?:\s+(?:now|completely|since))?\s*(?:$|[.,;!?]|\s+(?:and|but|now|since|after|within|"
                 r"with|on\s+its\s+own|by\s+itself)\b)")
MILD = (r"\b(?:mild\w*|slight\w*|a\s+(?:bit|little|tad)(?:\s+of)?|minor|small|tiny|barely|occasional\w*|"
        r"on\s+and\s+off|comes\s+and\s+goes|niggl\w*|bit\s+of\s+a|light|odd\s+bit\s+of|spotting)\b")
MILD_AFTER = r"\b(?:a\s+(?:bit|little|tad)|slightly|mildly|(?:now\s+)?(?:light|lighter|brown|spotting))\b"
PAST = (r"\b(?:(?:years|months|decades)\s+ago|(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
        r"twelve|several|few|many|couple\s+of|some)\s+(?:years?|yrs?|months?|decades?)\s+ago|last\s+(?:year|month|"
        r"summer|winter|spring|autumn|fall|christmas|easter)|in\s+(?:19|20)\d\d|as\s+a\s+(?:child|kid|teenager|teen|"
        r"baby|toddler|youngster|student)|when\s+(?:i|he|she|we)\s+(?:was|were)\s+(?:a\s+)?(?:kid|child|teen\w*|"
        r"younger|little|small|young|baby|toddler|student|\d+)|used\s+to|history\s+of|previously|previous|"
        r"in\s+the\s+past|once\s+(?:had|passed|got|went|fainted|collapsed|was)|years\s+back|ages\s+ago|back\s+in|"
        r"childhood|a\s+(?:long\s+)?while\s+ago|long\s+time\s+ago|recover(?:ed|ing|y)|survived|rehab\w*|scars?|"
        r"(?:first|last|previous|earlier|other)\s+(?:pregnancy|baby|child|labour|birth)|turned\s+out\s+(?:fine|ok|"
        r"okay|well)|with\s+(?:my|her)\s+(?:first|older|eldest|last)|when\s+(?:i|he|she|we)\s+(?:was|"
        r"were)\s+(?:first\s+)?diagnosed|(?:was|were)\s+in\s+(?:icu|itu|intensive\s+care|hospital)\s+(?:with|for)|"
        r"last\s+week|ended\s+up\s+in\s+(?:hospital|a&e|icu|the\s+er)|(?:was|were|got|been)\s+(?:admitted|"
        r"discharged)|(?:came|come|been)\s+home\s+from\s+(?:hospital|a&e))\b")
CURRENT = (r"\b(?:now|right\s+now|currently|at\s+the\s+moment|atm|today|tonight|this\s+(?:morning|afternoon|evening|"
           r"week)|still|again|keeps?|ongoing|happening|started|starting|began|is\s+having|am\s+having|are\s+having|"
           r"(?:am|is|are)\s+(?:i|he|she|they|we|you)\s+having|be\s+having|'s\s+having|'m\s+having|(?:hours?|"
           r"minutes?|mins?)\s+ago|an\s+hour\s+ago|since|for\s+(?:the\s+(?:last|past)\s+|over\s+|about\s+|"
           r"around\s+)?(?:\d+|a|an|one|two|three|few|several|couple\s+of)\s+(?:minutes?|mins?|hours?|hrs?|days?|"
           r"weeks?)|yesterday|last\s+night|getting\s+worse|worse)\b")
HYPOTHETICAL = (r"\b(?:if|in\s+case|what\s+if|suppose|supposing|imagine|hypothetical\w*|whenever|let's\s+say|"
                r"in\s+the\s+event|when\s+(?:someone|somebody|a\s+person|people|you|one|a\s+child|a\s+baby|your)|"
                r"should\s+(?:someone|a\s+person|people|you)|could\s+(?:someone|a\s+person|you))\b")
WORRY = (r"\b(?:scared|afraid|worried|worry|worrying|fear|frightened|terrified|anxious|paranoid|nervous|"
         r"concerned)\s+(?:of|about)\s+(?:having|getting|developing|catching|a|an|another)\b|\b(?:scared|afraid|"
         r"worried|worry|frightened|terrified|anxious|nervous|concerned)\s+(?:that\s+)?(?:i|he|she|we|they|it|"
         r"my\s+\w+|the\s+\w+)\s+(?:might|could|will|would|may|'ll)\b|\b(?:risk|chance|odds)\s+of\b|\bprevent\w*\b|"
         r"\blower\s+(?:my|his|her|the)\s+risk\b|\b(?:next\s+(?:week|month|year)|tomorrow|later\s+this\s+(?:week|"
         r"month)|(?:will|'ll|going\s+to)\s+(?:be\s+)?(?:born|start|get|have)|due\s+(?:in|next))\b|\b(?:read|reading|"
         r"heard|saw|seen|watched|watching)\s+(?:about|an?|that|on|of|online|somewhere|this)\b|\b(?:post|article|"
         r"story|video|documentary)\s+(?:about|on|said|saying)\b|\bon\s+(?:facebook|tiktok|instagram|twitter|reddit|"
         r"the\s+news|youtube)\b")
PSEUDO_HYPOTHETICAL = (r"\b(?:not\s+sure|unsure|don't\s+know|do\s+not\s+know|no\s+idea|wonder\w*|asking|as|even|like|"
                       r"only)\s+(?:if|whether)\b")
EVENT_PAST = (r"\b(?:had|after|since|previous|history\s+of|survived|recovered\s+from|diagnosed\s+with|treated\s+for|"
              r"hospitali[sz]ed\s+(?:for|with)|admitted\s+(?:for|with))\b")
EVENTS = frozenset({"acs_named", "stroke_named", "seizure", "overdose", "sepsis_named", "anaphylaxis", "hyper_named",
                    "hypo_named", "abd_named", "heat_named", "asthma_severe"})
FIRST_PERSON_WORD = r"\b(?:i|i'm|i've|me|my|myself|we|us|our)\b"


def spans(pattern, text):
    """(start, end) of every match of a pattern."""
    return [match.span() for match in compile_rx(pattern).finditer(text)]


def outside(found, excluded):
    """The spans of found that overlap none of the excluded spans."""
    return [(s, e) for s, e in found if not any(s < xe and xs < e for xs, xe in excluded)]


# Finding the concepts: every concept's pattern runs once over the message; each match gets its word
# position, its sentence and the context above. Vital signs are read from the same text.
class Hit(NamedTuple):
    """One concept matched in a message: where, in which sentence, and whether it counts (valid) or is mild."""

    concept: str
    start: int
    end: int
    word: int
    sentence: int
    valid: bool
    mild: bool


class Layout:
    """Word, clause and sentence positions of a (normalised) message, to place each match in its context."""

    def __init__(self, text):
        """Find the words, the clause breaks and the sentence breaks."""
        self.text = text
        self.words = [s for s, _ in spans(r"[a-z0-9']+", text)] or [0]
        self.clauses = [0, *(e for _, e in spans(CLAUSE_BREAK, text))]
        self.sentences = [0, *(e for _, e in spans(SENTENCE_BREAK, text)), len(text) + 1]

    def word(self, position):
        """Index of the word at (or before) a position."""
        return bisect.bisect_right(self.words, position) - 1

    def clause(self, position):
        """Index of the clause a position lies in."""
        return bisect.bisect_right(self.clauses, position) - 1

    def sentence(self, position):
        """Index of the sentence a position lies in."""
        return bisect.bisect_right(self.sentences, position) - 1

    def before(self, marks, start, reach):
        """True when a mark (marks: sorted spans) ends before start, in start's clause, at most reach words earlier."""
        index = bisect.bisect_left(marks, (start, -1))
        return any(e <= start and self.clause(s) == self.clause(start) and self.word(start) - self.word(s) <= reach
                   for s, e in marks[max(0, index - 2):index])  # the nearest marks are the only candidates

    def after(self, marks, end, reach):
        """True when a mark (marks: sorted spans) starts after end, in the same clause, at most reach words later."""
        index = bisect.bisect_left(marks, (end, -1))
        return any(self.clause(s) == self.clause(end - 1) and self.word(s) - self.word(end - 1) <= reach
                   for s, _ in marks[index:index + 1])

    def states(self):
        """Per clause: (historical, hypothetical before it, its own if-words), carried on within a sentence."""
        past = outside(spans(PAST, self.text), spans(r"\bsince\s+(?:last|the\s+last)\s+\w+", self.text))
        current = spans(CURRENT, self.text)
        hypothetical = outside(spans(HYPOTHETICAL, self.text), spans(PSEUDO_HYPOTHETICAL, self.text))
        worries = spans(WORRY, self.text)  # "scared of having a heart attack": only its own clause
        by_clause = {}  # clause index -> {"now": [...], "then": [...], "if": [...], "own": [...]}: one pass per mark
        for key, marks in (("now", current), ("then", past), ("if", hypothetical), ("own", [*hypothetical, *worries])):
            for s, _ in marks:
                by_clause.setdefault(self.clause(s), {}).setdefault(key, []).append(s)
        states, intro_past, maybe = [], False, False
        for index, start in enumerate(self.clauses):
            if index and self.sentence(start) != self.sentence(self.clauses[index - 1]):
                intro_past = maybe = False
            marks = by_clause.get(index, {})
            now, then = max(marks.get("now", [-1])), max(marks.get("then", [-1]))
            if now >= 0:  # a current clause ends what came before it (a past word after "now" still counts)
                intro_past = maybe = False
            historical = intro_past or then > now
            states.append((historical, maybe, marks.get("own", [])))
            end = self.clauses[index + 1] if index + 1 < len(self.clauses) else len(self.text)
            intro_past = then > now and self.word(end - 1) - self.word(start) < 6  # "two years ago, I had…"
            maybe = maybe or "if" in marks
        return states


# Every concept's pattern and every vital-sign pattern runs once; each match is then placed: negated, mild,
# historical or hypothetical.
OPEN_ENDED = frozenset({"done_with_it"})  # patterns that end on punctuation ("i'm done.") carry no closing \b


MAX_MATCHES = 64  # per concept: enough for any real message, and a bound on the work a pasted wall of text costs


def raw_matches(text):
    """(concept, start, end) of the first MAX_MATCHES matches of each concept and vital sign in a normalised text."""
    found = []
    for name, pattern in CONCEPTS.items():
        matches = compile_rx(rf"\b(?:{pattern})" + ("" if name in OPEN_ENDED else r"\b")).finditer(text)
        found += [(name, *match.span()) for match in itertools.islice(matches, MAX_MATCHES)]
    infant = any(name == "baby" for name, _, _ in found)
    for kind, pattern in VITAL_PATTERNS.items():
        for match in itertools.islice(compile_rx(pattern).finditer(text), MAX_MATCHES):
            found += [(name, *match.span()) for name in vital_concepts(kind, match, infant)]
    return found


def knowledge_sentences(text, layout, found):
    """Sentences that ask general knowledge about nobody in particular and nothing current ("what are the signs
    of sepsis?"): a match there does not count, whatever the rest of the message says."""
    by_sentence = {}
    for name, start, end in found:
        by_sentence.setdefault(layout.sentence(start), []).append((name, start, end))
    action, current = spans(ACTION, text), spans(CURRENT, text)
    asking = {layout.sentence(m.start(1)) for m in compile_rx(AUX_QUESTION).finditer(text)
              if m.group(2) not in PERSON_WORDS}
    result = set()
    for sentence, matches in by_sentence.items():
        spans_of = lambda wanted: [(s, e) for n, s, e in matches if n == wanted]  # noqa: E731
        knowledge = outside(spans_of("knowledge"), action) or sentence in asking
        person = outside(spans_of("personal"), spans_of("generic_who"))
        now = any(layout.sentence(s) == sentence for s, _ in current) or spans_of("urgent") or any(
            name.startswith(VITAL_PREFIXES) for name, _, _ in matches)
        if knowledge and not person and not now:
            result.add(sentence)
    return result


@functools.lru_cache(maxsize=64)  # the rules and the learned model's checks read the same message
def concept_hits(text):
    """Every concept match in a (normalised) message, with its position and context: {concept: [Hit, ...]}."""
    layout = Layout(text)
    states = layout.states()
    negations = outside(spans(NEGATION, text), spans(PSEUDO_NEGATION, text))
    posts, milds, milds_after = spans(POST_NEGATION, text), spans(MILD, text), spans(MILD_AFTER, text)
    event_past, current = spans(EVENT_PAST, text), spans(CURRENT, text)
    found = raw_matches(text)
    asking = knowledge_sentences(text, layout, found)
    hits = {}
    for name, start, end in found:
        sentence = layout.sentence(start)
        historical, maybe, own = states[layout.clause(start)]
        hypothetical = maybe or any(not start <= s < end for s in own)  # an "if" inside the match is its own
        if name in EVENTS and layout.before(event_past, start, 3):  # "had a stroke": past unless its clause is current
            historical = historical or not any(layout.clause(s) == layout.clause(start) for s, _ in current)
        negated = layout.before(negations, start, 5) or layout.after(posts, end, 4)
        mild = layout.before(milds, start, 3) or layout.after(milds_after, end, 2)
        hits.setdefault(name, []).append(Hit(name, start, end, layout.word(start), sentence,
                                             not (negated or historical or hypothetical or sentence in asking), mild))
    if "temp_normal" in hits and not hits.keys() & {"temp_fever", "temp_low"}:  # a temperature given, and normal
        hits["fever"] = [h for h in hits.get("fever", []) if not text.startswith("temp", h.start)]
    return hits


# Evaluating the table, then the message as a whole. A rule's trigger holds when each of its parts has a
# valid match (near each other where it says `~N`) and no veto occurs. Then the message decides: an exam
# question or a story raises no notice unless the match itself is in the first person (*"I'm revising and I
# want to die"*); a knowledge question raises none when it is about nobody in particular and nothing
# current. Urgent words (*help!, right now, the ambulance is coming*) always count as current.
NAMED = frozenset({"acs_named", "stroke_named", "anaphylaxis", "sepsis_named", "hyper_named", "hypo_named", "abd_named",
                   "heat_named", "co", "overdose", "asthma_severe", "drowning", "priapism", "adrenal"})
ACTION = (r"(^|[.?!\n])\s*(what|how)\s+(should|do|can|shall|must)\s+(i|we)\b|\bwhat\s+(do|should|can)\s+(i|"
          r"we)\s+do\b|\bwhat\s+to\s+do\b|\bshould\s+(i|we)\s+(call|go|ring|take|phone)\b")

AUX_QUESTION = r"(?:^|[.?!\n])\s*(is|are|can|could|does|do|would|will|should|may|might|was|were|has|have)\s+([a-z']+)"
PERSON_WORDS = frozenset("i i'm we my our me he she his her him they their you your this that it it's there".split())


class Finding(NamedTuple):
    """A red flag a message raised, with the words (quoted from the normalised message) that raised it."""

    rule: RedFlag
    evidence: tuple


@functools.lru_cache(maxsize=None)
def parse_trigger(trigger):
    """A trigger string as (parts, vetoes); each part is (concepts, distance or None, other concepts or None)."""
    tokens = trigger.split()
    vetoes = tuple(token[1:] for token in tokens if token.startswith("!"))
    parts, current = [], []
    for token in [*(t for t in tokens if not t.startswith("!")), "&"]:
        if token != "&":
            current.append(token)
            continue
        if len(current) == 3 and current[1].startswith("~"):
            parts.append((tuple(current[0].split("|")), int(current[1][1:]), tuple(current[2].split("|"))))
        elif len(current) == 1:
            parts.append((tuple(current[0].split("|")), None, None))
        else:
            raise ValueError(f"Malformed red-flag trigger {trigger!r}")
        current = []
    return tuple(parts), vetoes


def overlaps(hit, others):
    """True when a hit shares characters with any of the other hits."""
    return any(hit.start < other.end and other.start < hit.end for other in others)


def part_candidates(part, hits, allow_mild, taken, limit=8):
    """Up to limit ways to satisfy one part of a trigger (one hit, or a near pair) apart from the hits taken."""
    names, distance, others = part
    usable = [h for name in names for h in hits.get(name, ())
              if h.valid and (allow_mild or not h.mild) and not overlaps(h, taken)]
    if distance is None:
        return [(h,) for h in usable[:limit]]
    partners = [h for name in others for h in hits.get(name, ())
                if h.valid and (allow_mild or not h.mild) and not overlaps(h, taken)]
    pairs = ((a, b) for a in usable for b in partners
             if a.sentence == b.sentence and abs(a.word - b.word) <= distance and not overlaps(a, (b,)))
    return list(itertools.islice(pairs, limit))


def evidence_search(parts, hits, allow_mild, taken=()):
    """Hits for each remaining part, each part with its own words (a small search over the first candidates)."""
    if not parts:
        return taken
    for found in part_candidates(parts[0], hits, allow_mild, taken):
        result = evidence_search(parts[1:], hits, allow_mild, (*taken, *found))
        if result is not None:
            return result
    return None


def trigger_evidence(trigger, hits):
    """The hits that make a trigger hold in a message (each part its own words), or None."""
    parts, vetoes = parse_trigger(trigger)
    if any(hits.get(veto) for veto in vetoes if veto != "mild"):  # a veto counts wherever it stands
        return None
    return evidence_search(parts, hits, allow_mild="mild" not in vetoes)


# The message as a whole: a story or exam question, a knowledge question about nobody in particular, or a
# named condition asked about with nothing happening now (*"can I take my EpiPen on a plane?"*) raises no
# notice.
def aux_question(text):
    """True when a sentence opens like a general yes/no question: "are babies…", "can stress…" (not "can I…")."""
    return any(match.group(2) not in PERSON_WORDS for match in compile_rx(AUX_QUESTION).finditer(text))


def about_someone_now(text, hits, evidence):
    """True unless the message is a story, an exam question or a general knowledge question (see above)."""
    if hits.get("urgent") or text.rstrip().endswith("!"):
        return True
    first_person = any(compile_rx(FIRST_PERSON_WORD).search(text[h.start:h.end]) for h in evidence)
    if (hits.get("textbook") or hits.get("fiction")) and not first_person:
        return False
    generic = [(h.start, h.end) for h in hits.get("generic_who", ())]
    personal = outside([(h.start, h.end) for h in hits.get("personal", ())], generic)
    current = bool(spans(CURRENT, text)) or any(name.startswith(VITAL_PREFIXES) for name in hits)
    knowledge = outside([(h.start, h.end) for h in hits.get("knowledge", ())], spans(ACTION, text))
    knowledge = knowledge or aux_question(text)
    layout, named = Layout(text), {h.sentence for h in evidence if h.concept in NAMED}
    current_there = any(layout.sentence(s) in named for s, _ in spans(CURRENT, text))
    if (knowledge or "?" in text) and not current_there and evidence and all(h.concept in NAMED for h in evidence):
        return False  # "how do I use an EpiPen? my son has one": a named condition in a question, nothing current
    return bool(personal) or current or not knowledge


# A second opinion: a small learned model
#
# Rules miss wordings nobody wrote a pattern for. So a message the rules let through is also scored by a
# logistic regression on its words, word pairs and 4–5-letter pieces of words (*"welts"*, *"swelled"*,
# *"floppy"*), fitted with scikit-learn on the benchmark's development and validation messages
# (`tools/fit_red_flag_model.py`; never on the frozen part). Above its threshold — chosen so that the model
# alone raises at most 2 % false alarms out of fold — and when the message passes the same checks as a rule
# (not a story, exam or general knowledge question), it adds a general notice naming the words that weighed
# most. Its non-zero weights are below as plain data: scoring is a few dictionary look-ups, no scikit-learn.
MODEL_TOKEN = r"[a-z0-9']+"
# BEGIN red-flag model weights (tools/fit_red_flag_model.py)
RED_FLAG_MODEL = {"threshold": 0.86, "intercept": 0.5489,
 "weights": {
    'c: 30 ': 0.183, 'c: 38.': 1.408, 'c: 4 ': 0.645, 'c: ; ': -1.842, 'c: a ': -0.594, 'c: ache': -0.349,
    'c: act': -0.216, 'c: ago': 0.442, 'c: all ': 0.174, 'c: and': 0.546, 'c: and ': 0.177, 'c: any': -0.993,
    'c: any ': -4.447, 'c: bar': 0.235, 'c: bat': 0.156, 'c: bit ': -0.657, 'c: blu': 0.935, 'c: bru': -0.613,
    'c: brui': -0.123, 'c: but ': -0.297, 'c: can ': -0.92, 'c: cau': -0.7, 'c: caus': -1.021, 'c: cho': 1.784,
    'c: cold': -0.433, 'c: conf': 0.108, 'c: cou': -1.434, 'c: doe': -0.173, 'c: dra': 0.86, 'c: dri': -0.824,
    'c: eye': 0.597, 'c: fee': 0.138, 'c: fin': -0.848, 'c: fit': 0.572, 'c: flo': 1.069, 'c: for': -0.28,
    'c: fro': 0.479, 'c: from': 0.193, 'c: get': -0.305, 'c: goi': 0.348, 'c: goin': 0.364, 'c: gra': 0.271,
    'c: han': 0.802, 'c: hap': -0.351, 'c: has': 0.511, 'c: hav': 0.39, 'c: havi': 0.318, "c: he's": 0.069,
    'c: hea': 0.188, 'c: head': 0.551, 'c: his ': 0.408, 'c: hou': 0.342, 'c: hour': 0.547, 'c: how': -2.041,
    'c: how ': -0.457, 'c: i ': -0.414, 'c: if ': -0.133, 'c: in ': -0.229, 'c: is ': -0.374, 'c: it ': -0.915,
    'c: kid ': 0.508, 'c: lat': -0.188, 'c: lol ': -0.171, 'c: loo': 1.301, 'c: los': 0.463, 'c: lot': 0.158,
    'c: lot ': 1.274, 'c: mil': -0.967, 'c: min': 0.178, 'c: mov': -0.626, 'c: nec': 0.052, 'c: nee': -0.931,
    'c: need': -0.756, 'c: no ': -3.184, 'c: norm': -0.344, 'c: not ': 0.403, 'c: now ': 0.36, 'c: numb': 0.159,
    'c: nurs': -0.092, 'c: off ': 0.78, 'c: old ': 0.073, 'c: ope': 0.537, 'c: pap': -0.237, 'c: pill': 0.204,
    'c: play': -0.545, 'c: red ': -0.285, 'c: run': -0.207, 'c: runn': -0.068, 'c: saf': -0.116, 'c: safe': -0.279,
    'c: say': 1.705, 'c: sca': -0.857, 'c: sho': -0.494, 'c: sic': 0.355, 'c: sick': 0.096, 'c: sign': -0.622,
    'c: slig': -0.417, 'c: sma': -1.09, 'c: so ': 0.159, 'c: son': 0.352, 'c: sor': -0.369, 'c: sta': -0.407,
    'c: star': -0.167, 'c: stop': -0.106, 'c: stu': -0.955, 'c: sud': 0.069, 'c: sudd': 0.411, 'c: swe': 1.005,
    'c: the': -1.012, 'c: thi': 0.929, 'c: thr': 0.604, 'c: tod': 0.349, 'c: toda': 0.117, 'c: ton': 0.151,
    'c: too ': -0.239, 'c: took': 0.275, 'c: ver': 0.121, 'c: very': 0.199, 'c: well': -2.549, 'c: wha': -0.991,
    'c: what': -1.407, 'c: when': -0.065, 'c: whi': -0.097, 'c: whic': -0.152, 'c: why': -0.183, 'c: word': 1.22,
    'c: wors': 0.679, 'c: yea': -0.18, 'c: year': -0.27, 'c: you': -1.243, 'c:ache': -1.147, 'c:ack ': -0.413,
    'c:al? ': -1.514, 'c:alf ': 0.245, 'c:alway': -0.055, 'c:and ': 0.646, 'c:ank ': 0.122, 'c:ant ': 0.297,
    'c:aper': -1.329, 'c:appi': -1.169, 'c:ard ': 0.516, 'c:are ': -0.506, 'c:arin': -0.215, 'c:ars ': -0.793,
    'c:art ': -0.544, 'c:atch': -0.121, 'c:atchi': -0.071, 'c:ate ': 0.205, 'c:ation': -0.79, 'c:ayin': -1.038,
    'c:aying': -0.437, 'c:back ': -0.096, 'c:band': 0.666, 'c:bit ': -0.567, 'c:breat': 0.604, 'c:bruis': -0.712,
    'c:but ': -0.104, 'c:chan': -0.391, 'c:cide': 0.279, 'c:cold': -0.108, 'c:conf': 0.101, 'c:confu': 0.115,
    'c:cons': 0.276, 'c:dden': 0.078, 'c:der ': 0.43, 'c:does ': -0.266, 'c:eall': 0.542, 'c:eally': 0.524,
    'c:east': 0.134, 'c:eath': 0.822, 'c:eck ': 0.118, 'c:eep ': 0.104, 'c:ell ': -0.682, 'c:ement': -0.247,
    'c:end ': 1.561, 'c:ening': -0.1, 'c:eone': -0.059, 'c:eone ': -0.26, 'c:epin': -0.639, 'c:erio': -0.723,
    'c:ever': 0.702, 'c:ever,': 0.084, 'c:fain': 0.125, 'c:feel': 0.101, 'c:fine': -0.496, 'c:from': 0.104,
    'c:from ': 0.283, 'c:fter ': -0.812, 'c:ful ': 0.96, 'c:fuse': 0.608, 'c:fused': 0.217, 'c:gain': -0.327,
    'c:goin': 0.644, 'c:going': 0.404, 'c:hat ': -0.738, 'c:heav': 0.27, 'c:hed ': 0.061, 'c:hen ': -0.353,
    'c:her ': 1.526, 'c:here': -0.808, 'c:hich': -0.18, 'c:hich ': -0.385, 'c:hing': -0.616, 'c:hink ': 0.806,
    'c:hole': 0.784, 'c:hour': 0.3, 'c:how ': -0.762, 'c:hurt': -0.142, 'c:ich ': -0.215, 'c:ifti': -0.16,
    'c:iftin': -0.164, 'c:ike ': 1.01, 'c:ikel': -0.09, 'c:ild ': -0.544, 'c:ine ': -1.186, 'c:ing ': 0.767,
    'c:ion ': -0.211, 'c:ious': -0.614, 'c:itch': -0.103, 'c:itchy': -0.89, 'c:itin': 0.272, 'c:iting': 0.47,
    'c:ive ': 0.321, 'c:ken ': 0.945, 'c:kid ': 0.055, 'c:know ': -0.332, 'c:life': 0.076, 'c:like ': 0.291,
    'c:ling ': 0.264, 'c:llowe': 0.252, 'c:long ': -1.224, 'c:low ': -0.637, 'c:lowe': 0.791, 'c:lowed': 0.227,
    'c:ment': -1.279, 'c:miti': 0.157, "c:n't ": 2.339, 'c:nce ': -0.267, 'c:neck ': 0.329, 'c:need': -1.095,
    'c:nfus': 0.176, 'c:ngue ': 0.072, 'c:ning': -0.708, 'c:nkin': -0.063, 'c:nly ': 1.632, 'c:norm': -1.684,
    'c:norma': -0.136, 'c:nose': -1.169, 'c:not ': 0.758, 'c:numb': 0.118, 'c:oday': 0.207, 'c:oes ': -0.375,
    'c:off ': 0.436, 'c:old ': 0.275, 'c:ome ': 0.686, 'c:one ': 0.903, 'c:ones': 0.231, 'c:ore ': -1.356,
    'c:ough': 0.465, 'c:ould ': -1.157, 'c:ound': 1.301, 'c:oup ': -1.434, 'c:ous ': -1.716, 'c:ous?': -0.134,
    'c:out ': 1.335, 'c:over ': 0.113, 'c:pain ': 0.473, 'c:pape': -0.351, 'c:pill': 0.112, 'c:pills': 0.489,
    'c:play': -1.124, 'c:press': 0.661, 'c:reall': 0.278, 'c:reath': 0.519, 'c:ribl': 0.153, 'c:ring': 0.102,
    'c:rmal': -0.707, 'c:rnin': 0.877, 'c:rning': 0.346, 'c:rribl': 0.122, 'c:ruis': -0.191, 'c:runn': -0.056,
    'c:safe': -0.244, 'c:se? ': -0.529, 'c:ses ': -0.531, 'c:sick': 0.302, 'c:skin': 0.621, 'c:slig': -1.002,
    'c:sligh': -0.171, 'c:someo': -0.136, 'c:son ': 0.524, 'c:sore': -0.067, 'c:star': -0.127, 'c:stro': -0.485,
    'c:sudd': 0.094, "c:t's ": -0.779, 'c:take ': -0.274, 'c:ten ': 0.062, 'c:th, ': -1.971, 'c:the ': 0.09,
    'c:ther': -0.244, 'c:thro': 0.726, 'c:ting,': -1.94, 'c:tion': -0.236, 'c:tion ': -0.058, 'c:toda': 0.155,
    'c:today': 0.069, 'c:too ': -0.648, 'c:took': 0.291, 'c:took ': 0.537, 'c:troke': -0.347, 'c:ts, ': 0.061,
    'c:tten': 0.192, 'c:ttin': 0.459, 'c:tting': 0.509, 'c:tty ': -1.701, 'c:uall': -0.378, 'c:ually': -0.066,
    'c:udde': 0.132, 'c:uld ': -0.887, 'c:unde': 0.091, 'c:under': 0.104, 'c:ver ': 0.864, 'c:ving': 0.356,
    'c:watc': -0.167, 'c:watch': -0.471, 'c:what': -1.016, 'c:when': -0.341, 'c:which': -0.205, 'c:wing': -0.527,
    'c:wors': 0.756, 'c:xpla': -0.182, 'c:xplai': -0.079, 'c:year': -0.215, 'c:zing': 0.108, 'w:30': 0.166,
    'w:a': -0.566, 'w:after': -0.067, 'w:and': 0.499, 'w:and a': -1.3, 'w:and i': 1.386, 'w:and it': 0.516,
    'w:and my': 0.646, 'w:blood': 0.259, 'w:but': -0.184, 'w:but is': -0.851, 'w:can': -0.441, 'w:can i': -0.485,
    'w:cold': -0.76, 'w:cold and': -1.188, 'w:do': -0.691, 'w:does': -0.839, 'w:explain': -0.09, 'w:from': 0.293,
    'w:get': -1.348, 'w:going': 0.469, 'w:had a': -0.303, 'w:having': 0.066, 'w:he': 0.247, "w:he's": 0.272,
    'w:head on': -0.497, 'w:heart attack': -0.314, 'w:help': -0.308, 'w:his': 0.603, 'w:how': -1.475, 'w:i': -0.13,
    'w:i feel': -0.065, 'w:i have': 0.07, 'w:i just': 0.859, 'w:if': -0.519, 'w:in the': 1.647, 'w:is': -0.183,
    'w:is a': -0.658, 'w:is it': -0.125, 'w:is that': -1.919, 'w:itchy': -0.365, 'w:know': -0.951, 'w:left': 0.112,
    'w:lol': -0.331, 'w:no wet': 1.231, 'w:not': 0.114, 'w:of the': 0.235, 'w:on the': 0.945, 'w:out': 0.441,
    'w:paracetamol and': -0.531, 'w:really': 0.809, 'w:red and': -0.257, 'w:she': 0.34, 'w:sick': 0.254,
    'w:since this': 0.261, 'w:so': 0.077, 'w:sore': -1.608, 'w:stroke': -0.129, 'w:swallowed': 0.583,
    'w:symptoms after': 1.054, 'w:take': -0.184, 'w:think': 0.505, 'w:today': 0.083, 'w:took': 0.342, 'w:up': 1.576,
    'w:very': 0.894, 'w:vomiting': 0.232, 'w:week': -0.415, 'w:which': -0.465, 'w:why': -0.828, 'w:with a': 0.475,
}}
# END red-flag model weights


# Scoring: the message's features (as scikit-learn's word and `char_wb` analysers build them — a test checks
# they are identical), the sum of their weights, a logistic function; and the words that weighed most.
def model_features(text):
    """The model's binary features of a matching-form message: word 1-2-grams, within-word character 4-5-grams."""
    words = compile_rx(MODEL_TOKEN).findall(text)
    features = {f"w:{w}" for w in words} | {f"w:{a} {b}" for a, b in zip(words, words[1:])}
    for word in text.split():
        padded = f" {word} "
        for n in (4, 5):  # as scikit-learn's char_wb analyser: a word shorter than n counts once, whole
            features.update(f"c:{padded[offset:offset + n]}" for offset in range(max(1, len(padded) - n + 1)))
            if len(padded) <= n:
                break
    return features


def model_probability(text, model=None):
    """The model's probability that a matching-form message reports an emergency."""
    model = model or RED_FLAG_MODEL
    score = model["intercept"] + sum(model["weights"].get(f, 0.0) for f in model_features(text))
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, score))))


MODEL_QUIET_WORDS = frozenset("that this with have from they their them what when where your been were will would "
                              "could should about there then than just very really into over after before because "
                              "while since also some much more like it's he's she's i'm won't can't don't "
                              "isn't".split())


def model_words(text, model=None, top=3):
    """The words of a message that raised the model's score most (their own and their pieces' weights)."""
    weights = (model or RED_FLAG_MODEL)["weights"]
    totals = {}
    for word in dict.fromkeys(w.strip(".,;:!?") for w in text.split()):
        if len(word) >= 4 and word not in MODEL_QUIET_WORDS:
            totals[word] = sum(weights.get(f, 0.0) for f in model_features(word))
    return tuple(w for w, v in sorted(totals.items(), key=lambda kv: -kv[1])[:top] if v > 0)


EXPLAINED = ("reassured", "resolved", "limb_benign", "caffeine", "low_battery", "hangover", "after_stroke",
             "minor_wound", "brief")
CONTEXT_CONCEPTS = frozenset({
    *EXPLAINED, "msk", "baseline", "knowledge", "textbook", "fiction", "personal", "generic_who", "urgent", "child",
    "baby", "baby_young", "baby_3to6", "pregnant", "sudden", "severe", "one_side", "diabetic", "allergen",
    "immunosuppressed", "anticoag", "pe_risk", "heat", "fuel", "co_group"})
MODEL_FLAG = RedFlag("possible emergency (learned model)", (),
                     "🚨 **This may be an emergency.** Messages worded like yours were emergencies in the examples "
                     f"these rails learned from. If someone is seriously unwell or getting worse, {EMERGENCY}.")


# The public functions: `red_flag_findings` returns what fired and why, `red_flag_notices` the notices shown
# in the chat — each one ends with the words it matched, so a reader can see why it appeared.
VITAL_PREFIXES = ("spo2_", "bp_", "temp_", "glucose_", "ketones_", "hr_", "rr_", "gcs_", "platelets_")


def findings_in(text):
    """The red flags a normalised message raises, in table order, each with the quoted words that raised it."""
    hits = concept_hits(text)
    findings = []
    for rule in RED_FLAG_RULES:
        for trigger in rule.triggers:
            evidence = trigger_evidence(trigger, hits)
            if evidence and about_someone_now(text, hits, evidence):
                findings.append(Finding(rule, quotes(text, evidence)))
                break
    return findings


def quotes(text, evidence):
    """The words of the evidence hits, in message order and each once; hits a few words apart as one quote."""
    spans_ = sorted({(h.start, h.end) for h in evidence})
    merged = []
    for start, end in spans_:
        if merged and start - merged[-1][1] <= 25:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(dict.fromkeys(text[s:e].strip() for s, e in merged))


def model_allowed(text):
    """True when the learned model may speak for a matching-form message: nothing explains it away or denies it."""
    hits = concept_hits(text)
    if any(hits.get(name) for name in EXPLAINED) or not about_someone_now(text, hits, ()):
        return False  # "she's been totally well since", "it's the low-battery chirp": the words are explained away
    symptoms = [h for name, found in hits.items() if name not in CONTEXT_CONCEPTS for h in found]
    return sum(not h.valid for h in symptoms) < max(1, sum(h.valid for h in symptoms))  # not mostly denials


def model_finding(text):
    """The learned model's finding for a matching-form message the rules let through, or []."""
    if model_probability(text) < RED_FLAG_MODEL["threshold"] or not model_allowed(text):
        return []
    return [Finding(MODEL_FLAG, model_words(text))]


@functools.lru_cache(maxsize=256)  # a turn asks twice (red flags, then off-topic)
def red_flag_findings(message):
    """The red flags a message raises: (Finding(rule, quoted words), ...); typos fixed, then the model, if none."""
    plain = normalize_for_rules(message, correct=False)
    findings = findings_in(plain)
    corrected = normalize_for_rules(message)
    if not findings and corrected != plain:
        findings = findings_in(corrected)
    return tuple(findings or model_finding(plain))


def red_flag_notices(message):
    """Notices of the red flags a message raises, in table order, each naming the words it matched."""
    return [f"{found.rule.notice}\n\n*Why this notice: " + ", ".join(f"“{q}”" for q in found.evidence) + ".*"
            for found in red_flag_findings(message)]


# The off-topic table and its check.
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
    if compile_rx(MEDICAL_TERMS).search(text) or red_flag_findings(message):
        return None
    matches = lambda rule: any(compile_rx(pattern).search(text) for pattern in rule.patterns)  # noqa: E731
    return next((rule.notice for rule in OFF_TOPIC_RULES if matches(rule)), None)
