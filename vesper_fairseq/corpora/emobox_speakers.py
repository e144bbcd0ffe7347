"""Speakers of EmoBox records, which carry no speaker field: read from the audio path.

Each rule is a regular expression searched in the record's ``wav`` path (as written in the
jsonl, ``/`` separated); the speaker is its capture groups joined. The patterns follow the
corpora's documented file naming. A record's own ``speaker`` field, when present, wins;
``--speaker-regex`` replaces the table. Corpora not listed have no speaker in their names
(or one we could not confirm), and their validation split is carved by class instead.
"""

import re

SPEAKER_RULES = {
    # Ses01F_impro01_M003: the speaker is session 1's male actor (last field's letter)
    "iemocap": r"/(Ses\d\d)[FM]_[^/]*_([FM])\d+\.wav$",
    "cremad": r"/(\d{4})_[A-Z]{3}_[A-Z]{3}_[A-Z]{2}\.wav$",  # 1001_DFA_ANG_XX.wav
    "ravdess": r"/Actor_(\d+)/",
    "emodb": r"/(\d\d)[a-z]\d\d[A-Za-z]{2}\.wav$",  # 03a01Wa.wav: speaker 03
    "esd": r"/(\d{4})/[^/]+/\d{4}_\d+\.wav$",  # 0005/Neutral/0005_000001.wav
    "savee": r"/([A-Z]{2})_[a-z]+\d+\.wav$",  # DC_a01.wav
    "tess": r"/([OY]AF)_[^/]+\.wav$",
    "casia": r"casia/([^/]+)/[^/]+/[^/]+\.wav$",  # casia/{speaker}/{emotion}/201.wav
    "emovo": r"/([fm]\d)/[^/]+\.wav$",
    "subesco": r"/([FM]_\d+)_[^/]+\.wav$",  # F_10_FAHMEE_S_6_FEAR_5.wav
    "shemo": r"/([FM]\d\d)S\d+\.wav$",  # F02S05.wav
    "asvpesd": r"/actor_(\d+)/",
    "enterface": r"/subject (\d+)/",
    "polish": r"/([fm]\d)\.[^/]+\.wav$",  # m2.n_podaj_2.wav
    "cafe": r"/(\d\d)-[A-Z]-\d-\d\.wav$",  # 12-P-2-5.wav
    "jlcorpus": r"/((?:fe)?male\d)_[^/]+\.wav$",
    "emovdb": r"/([a-z]+)_[A-Za-z]+/[^/]+\.wav$",  # jenie_Amused/amused_85-94_0089.wav
}


def speaker_rule(corpus: str, regex: str | None = None) -> re.Pattern | None:
    """The compiled rule for ``corpus`` (``regex`` overrides the table), or None."""
    text = regex if regex is not None else SPEAKER_RULES.get(corpus)
    if not text:
        return None
    try:
        rule = re.compile(text)
    except re.error as exc:
        raise ValueError(f"--speaker-regex {text!r} is not a regular expression: {exc}") from None
    if rule.groups == 0:
        raise ValueError(f"--speaker-regex {text!r} needs a capture group (the speaker)")
    return rule


def speaker_of(record: dict, wav: str, rule: re.Pattern | None) -> str | None:
    own = record.get("speaker", record.get("spk"))
    if own is not None and str(own).strip():
        return str(own).strip()
    if rule is None:
        return None
    m = rule.search("/" + wav.replace("\\", "/").lstrip("/"))
    return "".join(g for g in m.groups() if g) if m else None
